"""r14: threading.active_count() and enumerate() while snapshots are written in the background."""

import threading


class Model:
    def __init__(self):
        self.w = [0.0] * 10000


def train():
    m = Model()
    for epoch in range(4):
        for step in range(2):
            m.w[step] += 1
        print(epoch, threading.active_count(), [t.name for t in threading.enumerate()])


train()
