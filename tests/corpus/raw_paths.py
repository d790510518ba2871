"""__file__, sys.path[0] and a traceback's file name exactly as Python gives them for `python ./x.py`,
`python ../dir/x.py` and with -P/-I (3.11+: no script folder on sys.path)."""

import sys
import traceback

print("file", __file__)
print("path0", sys.path[0].replace(sys.base_prefix, "<base>"))
print("safe", getattr(sys.flags, "safe_path", None), "first two", [p.replace(sys.base_prefix, "<base>") for p in sys.path[:2]])
try:
    raise ValueError("where")
except ValueError:
    print(traceback.format_exc().splitlines()[1])
