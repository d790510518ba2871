# known: all | r01, the runtime part of issue 14: len() of a range over sys.maxsize
"""r01: an outermost loop over range(1, 2**64) (more-itertools' factor())."""
for i in range(1, 2**64):
    print("first", i)
    break
print("done")
