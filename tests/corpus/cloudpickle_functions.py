"""r07: cloudpickle ships local functions by value, their code's constants included (joblib, Ray, Dask):
they run in this process, and in another one that has no flortrace session (plain loops there)."""

import pickle
import subprocess
import sys

import cloudpickle


def make():
    def total(xs):
        s = 0
        for x in xs:
            s += x
        k = 0
        while k < 2:
            k += 1
        return s + k

    return total


blob = cloudpickle.dumps(make())
print(pickle.loads(blob)([1, 2, 3]))
child = "import pickle, sys; print(pickle.loads(sys.stdin.buffer.read())([4, 5]))"
print(subprocess.run([sys.executable, "-c", child], input=blob, capture_output=True).stdout.decode().strip())
for epoch in range(2):  # a main loop whose block is an unpickled function's loop
    print("epoch", epoch, pickle.loads(blob)(range(epoch + 3)))
