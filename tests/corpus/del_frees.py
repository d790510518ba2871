"""r03: `del m` frees m at once (weakref callbacks, __del__, closing files)."""
import weakref


class Model:
    pass


def train():
    m = Model()
    r = weakref.ref(m)
    for epoch in range(2):
        for step in range(2):
            pass
    del m
    print("collected:", r() is None)


train()
