"""An epoch loop whose state holds awkward objects: unpicklable, unhashable, cyclic, mock-like, NaN."""

import array
import collections
import dataclasses
import datetime
import decimal
import enum
import fractions
import functools
import itertools
import os
import re
import threading
import types
import weakref
from unittest import mock


class Color(enum.Enum):
    RED = 1
    BLUE = 2


@dataclasses.dataclass(frozen=True)
class Frozen:
    a: int
    b: tuple


class NoEquality:
    __hash__ = None

    def __init__(self):
        self.value = 0

    def __eq__(self, other):
        raise TypeError("NoEquality cannot be compared")


class Ambiguous:
    def __init__(self):
        self.items = [1, 2]

    def __bool__(self):
        raise ValueError("truth value is ambiguous")

    def __len__(self):
        raise ValueError("length is ambiguous")


class Refuses:
    def __init__(self):
        self.count = 0

    def __reduce__(self):
        raise TypeError("Refuses cannot be pickled")


class Anything:
    def __init__(self):
        self.__dict__["log"] = []

    def __getattr__(self, name):
        self.log.append(name)
        return self

    def __call__(self, *args):
        self.log.append(args)
        return self


class Slotted:
    __slots__ = ("x", "y")

    def __init__(self):
        self.x, self.y = 0, []


Pair = collections.namedtuple("Pair", "left right")
data_path = os.path.join(os.path.dirname(__file__), "data", "lines.txt")
handle = open(data_path)
lock = threading.Lock()
buffer = bytearray(b"abcd")
view = memoryview(buffer)
numbers = array.array("d", [0.5, 1.5])
counter = itertools.count(100)
stream = (c for c in "streaming")
scale = functools.partial(pow, 2)
tracker = mock.MagicMock()
anything = Anything()
cycle = [1]
cycle.append(cycle)
keep_alive = Frozen(1, (2,))
refs = {"frozen": weakref.ref(keep_alive)}
cache = weakref.WeakValueDictionary()
nan, neg_zero, inf = float("nan"), -0.0, float("inf")
money = decimal.Decimal("0.1")
ratio = fractions.Fraction(1, 3)
z = complex(1, -1)
big = 2**200
counts = collections.Counter()
default = collections.defaultdict(lambda: [0])
window = collections.deque(maxlen=3)
ns = types.SimpleNamespace(step=0, module=os, kind=Color.RED)
noeq, amb, refuses, slotted = NoEquality(), Ambiguous(), Refuses(), Slotted()
pattern = re.compile(r"(\w+) (\d+)")
when = datetime.date(2024, 1, 1)
pairs = frozenset({Pair(1, 2), Pair(3, 4)})

for epoch in range(4):
    for step in range(3):
        line = handle.readline() or "eof 0\n"
        match = pattern.match(line)
        counts[match.group(1) if match else "blank"] += 1
        window.append(step)
        default[epoch % 2][0] += step
        buffer[step] = ord("A") + epoch
        numbers[step % 2] *= 1.5
        money += decimal.Decimal("0.1")
        ratio += fractions.Fraction(1, 7)
        z *= 1j
        big += step
        nan = nan + 1
        neg_zero = neg_zero * 1.0
        with lock:
            ns.step += 1
    tracker.log(epoch, loss=1.0 / (epoch + 1))
    tracker.metrics["acc"] = epoch
    anything.record(epoch).flush()
    noeq.value += epoch
    amb.items.append(epoch)
    refuses.count += 1
    slotted.x += epoch
    slotted.y.append(next(counter))
    cycle.append(epoch)
    cache[epoch] = keep_alive
    ns.kind = Color.BLUE if epoch % 2 else Color.RED
    when += datetime.timedelta(days=epoch)
    print("epoch", epoch, next(stream), scale(epoch), bytes(view), numbers.tolist(), str(money), ratio)
handle.close()
print(dict(counts), list(window), dict(default), z, big % 1000, nan != nan, str(neg_zero), inf)
print(tracker.mock_calls)
print(anything.log, noeq.value, amb.items, refuses.count, slotted.x, slotted.y, len(cycle), cycle[1] is cycle)
print(refs["frozen"]() is keep_alive, sorted(cache.keys()), ns.step, ns.module.__name__, ns.kind, when)
print(sorted(pairs), "".join(stream), handle.closed, lock.locked())
