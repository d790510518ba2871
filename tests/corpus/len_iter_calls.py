"""Datasets that count how they are used: __len__, __iter__ and __getitem__ must be called as in Python."""


class Dataset:
    def __init__(self, n):
        self.n = n
        self.calls = {"len": 0, "iter": 0, "getitem": 0}

    def __len__(self):
        self.calls["len"] += 1
        return self.n

    def __iter__(self):
        self.calls["iter"] += 1
        for i in range(self.n):
            yield i * 2


class Legacy:
    """Iterable through the old __getitem__ protocol only."""

    def __init__(self, items):
        self.items = items
        self.calls = 0

    def __getitem__(self, i):
        self.calls += 1
        return self.items[i]


class Stream:
    """An iterator without __len__; asking for its length would be an error."""

    def __init__(self, n):
        self.n = 0
        self.limit = n

    def __iter__(self):
        return self

    def __next__(self):
        if self.n >= self.limit:
            raise StopIteration
        self.n += 1
        return self.n

    def __length_hint__(self):
        raise RuntimeError("__length_hint__ must not be called by a for loop")


train_set, legacy = Dataset(5), Legacy("abc")
total = 0
for epoch in range(3):
    for x in train_set:
        total += x
    for ch in legacy:
        total += ord(ch)
    for v in Stream(2):
        total += v
    print("epoch", epoch, total, train_set.calls, legacy.calls)
print("batches per epoch", len(train_set), train_set.calls)
