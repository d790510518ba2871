"""Objects die when their last reference goes, not later: recording must not keep them alive."""

import gc
import weakref

gc.disable()


class Tensor:
    alive = 0

    def __init__(self, tag, size):
        self.tag = tag
        self.data = [0.0] * size
        Tensor.alive += 1

    def __del__(self):
        Tensor.alive -= 1
        print("  freed", self.tag)


def batches(epoch):
    try:
        for i in range(3):
            yield Tensor(f"batch{epoch}.{i}", 4)
    finally:
        print("  batch generator closed in epoch", epoch)


model = Tensor("model", 8)
for epoch in range(3):
    activations = Tensor(f"act{epoch}", 16)
    ref = weakref.ref(activations)
    for batch in batches(epoch):
        batch.data[0] = epoch
        if epoch == 1:
            break
    del batch
    del activations
    print("epoch", epoch, "activations dead:", ref() is None, "alive:", Tensor.alive)
    for view in [Tensor(f"tmp{epoch}", 1)]:
        pass
    del view
    print("after temp loop alive:", Tensor.alive)
print("end of loop alive:", Tensor.alive)
del model
print("after del model alive:", Tensor.alive)
kept = Tensor("at interpreter shutdown", 1)
