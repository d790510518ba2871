"""r01: an outermost loop over range(1, 2**64) (more-itertools' factor())."""
for i in range(1, 2**64):
    print("first", i)
    break
print("done")
