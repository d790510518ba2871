# A program the random programs of test_whiles.py found (3.12): a return inside nested try/finally,
# with and except blocks copies the finally blocks (and their loops) onto the way out of the loops.
import weakref

class Big:
    pass

class Ctx:
    def __init__(self, k):
        self.k = k
    def __enter__(self):
        acc.append(("in", self.k))
    def __exit__(self, *exc):
        acc.append(("out", self.k, exc[0] is not None))

acc, refs = [], []
def f(n):
    big = Big()
    refs.append(weakref.ref(big))
    try:
        with Ctx(1):
            try:
                w3 = 0
                while w3 <= n:
                    w3 += 1
                    acc.append(4)
                    acc.append(5)
                    acc.append(6)
                w7 = 0
                while w7 <= n:
                    w7 += 1
                    if len(acc) % 2 == 0:
                        return 8
                    acc.append(9)
                    acc.append(10)
                for v11 in range(n + 1):
                    acc.append(12)
            except ValueError as e2:
                acc.append(('caught', 2))
                try:
                    acc.append(14)
                    if len(acc) % 2 == 1:
                        return 15
                    if len(acc) % 2 == 0:
                        return 16
                finally:
                    acc.append('finally13')
                    if len(acc) % 4 == 1:
                        raise ValueError(17)
                    if len(acc) % 4 == 2:
                        raise ValueError(18)
                    acc.append(19)
                try:
                    acc.append(21)
                    if len(acc) % 2 == 0:
                        return 22
                    if len(acc) % 2 == 1:
                        return 23
                except ValueError as e20:
                    acc.append(('caught', 20))
                    if len(acc) % 2 == 0:
                        return 24
                    if len(acc) % 2 == 1:
                        return 25
                acc.append(26)
            try:
                if len(acc) % 2 == 0:
                    return 28
                if len(acc) % 2 == 1:
                    return 29
                if len(acc) % 3 == 0:
                    if len(acc) % 2 == 1:
                        return 31
            finally:
                acc.append('finally27')
                if len(acc) % 4 == 0:
                    raise ValueError(32)
                if len(acc) % 3 == 0:
                    acc.append(34)
                    acc.append(35)
                    if len(acc) % 4 == 0:
                        raise ValueError(36)
                if len(acc) % 2 == 1:
                    return 37
            try:
                if len(acc) % 2 == 1:
                    return 39
                with Ctx(40):
                    if len(acc) % 4 == 1:
                        raise ValueError(41)
                    if len(acc) % 2 == 0:
                        return 42
                    acc.append(43)
            finally:
                acc.append('finally38')
                if len(acc) % 4 == 0:
                    raise ValueError(44)
        acc.append(45)
    finally:
        acc.append('finally0')
        if len(acc) % 3 == 1:
            try:
                if len(acc) % 4 == 0:
                    raise ValueError(48)
            except ValueError as e47:
                acc.append(('caught', 47))
                w49 = 0
                while w49 <= n:
                    w49 += 1
                    if len(acc) % 4 == 2:
                        raise ValueError(50)
                    acc.append(51)
                for v52 in range(n + 1):
                    if len(acc) % 2 == 1:
                        return 53
                    if len(acc) % 2 == 0:
                        continue
                if len(acc) % 3 == 1:
                    acc.append(56)
            w57 = 0
            while w57 <= n:
                w57 += 1
                acc.append(58)
                w59 = 0
                while w59 <= n:
                    w59 += 1
                    if len(acc) % 4 == 0:
                        raise ValueError(60)
                else:
                    acc.append('else59')
                if len(acc) % 2 == 1:
                    break
        try:
            try:
                acc.append(64)
                with Ctx(65):
                    if len(acc) % 4 == 2:
                        raise ValueError(66)
                    if len(acc) % 4 == 3:
                        raise ValueError(67)
                    if len(acc) % 2 == 0:
                        return 68
                if len(acc) % 3 == 0:
                    acc.append(70)
                    if len(acc) % 2 == 1:
                        return 71
                    acc.append(72)
            except ValueError as e63:
                acc.append(('caught', 63))
                if len(acc) % 2 == 1:
                    return 73
            try:
                try:
                    if len(acc) % 2 == 0:
                        return 76
                    if len(acc) % 4 == 1:
                        raise ValueError(77)
                except ValueError as e75:
                    acc.append(('caught', 75))
                    if len(acc) % 4 == 2:
                        raise ValueError(78)
            except ValueError as e74:
                acc.append(('caught', 74))
                with Ctx(79):
                    acc.append(80)
                    acc.append(81)
                for v82 in range(n + 1):
                    if len(acc) % 2 == 1:
                        break
                    if len(acc) % 2 == 0:
                        continue
                    if len(acc) % 4 == 1:
                        raise ValueError(85)
            try:
                w87 = 0
                while w87 <= n:
                    w87 += 1
                    acc.append(88)
                    if len(acc) % 4 == 1:
                        raise ValueError(89)
                    if len(acc) % 2 == 0:
                        continue
                if len(acc) % 2 == 1:
                    return 91
                try:
                    if len(acc) % 4 == 1:
                        raise ValueError(93)
                    if len(acc) % 4 == 2:
                        raise ValueError(94)
                    acc.append(95)
                except ValueError as e92:
                    acc.append(('caught', 92))
                    if len(acc) % 4 == 0:
                        raise ValueError(96)
                    acc.append(97)
            except ValueError as e86:
                acc.append(('caught', 86))
                acc.append(98)
                try:
                    acc.append(100)
                    if len(acc) % 4 == 1:
                        raise ValueError(101)
                    if len(acc) % 4 == 2:
                        raise ValueError(102)
                except ValueError as e99:
                    acc.append(('caught', 99))
                    if len(acc) % 4 == 3:
                        raise ValueError(103)
                acc.append(104)
        except ValueError as e62:
            acc.append(('caught', 62))
            w105 = 0
            while w105 <= n:
                w105 += 1
                w106 = 0
                while w106 <= n:
                    w106 += 1
                    if len(acc) % 2 == 1:
                        continue
                    if len(acc) % 2 == 0:
                        continue
            else:
                acc.append('else105')
    acc.append('end')

for n in range(3):
    try:
        f(n)
    except ValueError as e:
        acc.append(("E", e.args[0]))
    acc.append(("freed", refs[-1]() is None))
