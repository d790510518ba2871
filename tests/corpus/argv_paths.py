# argv:
# argv: --help
# argv: -h
# argv: -q --quiet
# argv: --store elsewhere --name label --overhead 0.5
# argv: -m module --version
# argv: -- --epochs=3 ''
# argv: 'with space' ünïcode
"""sys.argv, __file__ and sys.path[0] as the script sees them; argv may look like flortrace's own options."""

import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
print("argv", sys.argv)
print("argv0 basename", os.path.basename(sys.argv[0]))
print("file", __file__, os.path.isabs(__file__))
print("path0", sys.path[0], sys.path[0] == here)
print("cwd is script folder", os.getcwd() == here)
print("name", __name__)
for pos, arg in enumerate(sys.argv[1:], 1):
    print(pos, repr(arg), arg.startswith("-"))
