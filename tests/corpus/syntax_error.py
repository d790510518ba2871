# exit: 1
"""A script with a syntax error inside a loop: Python prints it without running anything."""

print("never printed")
for epoch in range(3):
    if epoch = 2:
        print(epoch)
