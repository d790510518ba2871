# needs: executing
# known: 3.10 | executing matches 3.10 bytecode against the source compiled again
"""r12: `executing` (icecream, stack_data, varname) maps a frame to the AST node being run."""
import ast
import sys

import executing


def name_of_call():
    node = executing.Source.executing(sys._getframe(1)).node
    return ast.unparse(node) if node is not None else None


def f():
    out = []
    for i in range(2):
        out.append(name_of_call())
    return out


print(f())
