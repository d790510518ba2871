# known: all | the script runs above flortrace's frames
"""r05: the frames below the script: inspect.stack(), the module frame's f_back, RecursionError depth."""
import inspect
import sys

sys.setrecursionlimit(200)


def depth(n):
    try:
        return depth(n + 1)
    except RecursionError:
        return n


print(len(inspect.stack()), sys._getframe().f_back is None, depth(0))
