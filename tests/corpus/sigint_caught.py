"""A real SIGINT (Ctrl-C) during training, caught to stop early and save: handlers must be Python's."""

import os
import signal
import time

print("handler is default:", signal.getsignal(signal.SIGINT) is signal.default_int_handler)
weights = [0.0]
try:
    for epoch in range(10):
        for step in range(3):
            weights[0] += 1
        if epoch == 2:
            os.kill(os.getpid(), signal.SIGINT)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:  # the handler raises here, whichever thread got the signal
                pass
        print("finished epoch", epoch)
except KeyboardInterrupt:
    print("interrupted in epoch", epoch, "saving", weights)
print("after training")
