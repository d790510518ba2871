# known: all | patched code holds hook functions and loop descriptions as constants
"""r06: marshal.dumps of a function's code object (what pyc writers and some RPC tools do)."""
import marshal


def f():
    for i in range(3):
        pass


print(len(marshal.dumps(f.__code__)) > 0)
