# exit: 4
"""os._exit(4) from inside an epoch, after printing and flushing: no finally, no atexit."""

import atexit
import os
import sys

atexit.register(print, "atexit must not run")
total = 0
for epoch in range(5):
    try:
        for step in range(3):
            total += epoch * step
        print("epoch", epoch, "total", total)
        if epoch == 2:
            print("leaving with os._exit(4)")
            print("stderr note", file=sys.stderr)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(4)
    finally:
        print("finally must not run at epoch 2")
