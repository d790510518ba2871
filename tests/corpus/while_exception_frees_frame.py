"""A while loop left by an exception (r04), or by break/return in an except block (r19: 3.12+ place the
handler after the function's code), lets the function's frame and locals go when the function ends."""

import weakref


class Big:
    pass


refs = []


def raises():
    b = Big()
    refs.append(weakref.ref(b))
    i = 0
    while True:
        i += 1
        if i > 2:
            raise ValueError(i)


def breaks_in_except(limit):
    b = Big()
    refs.append(weakref.ref(b))
    n = 0
    while n < 10:
        n += 1
        try:
            if n > limit:
                raise KeyError(n)
        except KeyError:
            if limit == 2:
                return n
            break
    return -n


def train():
    for epoch in range(3):
        w = 0
        while w < 3:  # a block: the recorder tracks it
            w += 1
            if epoch == 1 and w == 2:
                try:
                    raise ValueError("skip")
                except ValueError:
                    break
        print("epoch", epoch, w)


try:
    raises()
except ValueError as e:
    print("raised", e)
print("freed after the exception:", refs[-1]() is None)
for limit in (2, 3):
    print(breaks_in_except(limit), "freed after return:", refs[-1]() is None)
train()
