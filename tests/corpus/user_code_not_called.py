"""r10: fingerprints and checkpoints of a main loop call no user code (__iter__, __getstate__)."""


class Tracked(list):
    def __iter__(self):
        print("Tracked.__iter__ called")
        return super().__iter__()


class Model:
    def __init__(self):
        self.w = 0

    def __getstate__(self):
        print("__getstate__ called")
        return dict(self.__dict__)

    def __setstate__(self, s):
        self.__dict__.update(s)


def train():
    t, m = Tracked([1, 2]), Model()
    for epoch in range(3):
        for step in range(2):
            m.w += 1
    print(m.w, len(t))


train()
