# known: all | a class's own __getstate__/__setstate__ pair says what its state is (Lightning's Strategy rebuilds its optimizer wrappers in __setstate__): snapshots call it
"""r10: a class with its own __getstate__/__setstate__ pair is captured through it."""


class Model:
    def __init__(self):
        self.w = 0

    def __getstate__(self):
        print("__getstate__ called")
        return dict(self.__dict__)

    def __setstate__(self, s):
        self.__dict__.update(s)


def train():
    m = Model()
    for epoch in range(3):
        for step in range(2):
            m.w += 1
    print(m.w)


train()
