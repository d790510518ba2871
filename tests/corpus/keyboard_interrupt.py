# exit: -2
"""KeyboardInterrupt raised explicitly inside an epoch loop and not caught."""

for epoch in range(3):
    for step in range(2):
        print("epoch", epoch, "step", step, flush=True)
        if epoch == 1 and step == 1:
            raise KeyboardInterrupt
