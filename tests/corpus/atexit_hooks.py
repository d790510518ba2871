# argv: ok
# argv: fail => 1
"""atexit handlers registered in a loop run after the script, in reverse order, also after an error."""

import atexit
import sys


def report(name, state):
    print("atexit", name, state)


state = {"epochs": 0}
for epoch in range(3):
    atexit.register(report, f"handler{epoch}", state)
    for step in range(2):
        state["epochs"] = epoch + 1
print("training done")
if sys.argv[1] == "fail":
    for attempt in range(2):
        if attempt == 1:
            raise RuntimeError("failed after training")
