"""r10: fingerprints and checkpoints of a main loop call no user code of container subclasses (__iter__,
__len__, items)."""


class Tracked(list):
    def __iter__(self):
        print("Tracked.__iter__ called")
        return super().__iter__()

    def __len__(self):
        print("Tracked.__len__ called")
        return super().__len__()


class Table(dict):
    def items(self):
        print("Table.items called")
        return super().items()


def train():
    t, table, w = Tracked([1, 2]), Table(a=1), [0]
    for epoch in range(3):
        for step in range(2):
            w[0] += 1
            table["a"] += 1
    print(w[0], list.__len__(t), dict.__getitem__(table, "a"))


train()
