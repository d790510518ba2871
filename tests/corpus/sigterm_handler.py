# argv: handled
# argv: default => -15
"""SIGTERM during training (a cluster preempting the job): the script's own handler runs, or the default kills."""

import os
import signal
import sys
import time

stop = []


def on_term(signum, frame):
    stop.append(signum)


if sys.argv[1] == "handled":
    signal.signal(signal.SIGTERM, on_term)
for epoch in range(6):
    for step in range(3):
        pass
    if epoch == 2:
        print("epoch 2 done, sending SIGTERM", flush=True)
        os.kill(os.getpid(), signal.SIGTERM)
        deadline = time.monotonic() + 10
        while not stop and time.monotonic() < deadline:  # until the handler has run in the main thread
            pass
    if stop:
        print("preempted after epoch", epoch, "- saving")
        break
print("handler still ours:", signal.getsignal(signal.SIGTERM) is on_term)
