"""stdout and stderr interleaving, replaced streams, and output that does not end in a newline."""

import io
import sys

for epoch in range(3):
    print("out", epoch)
    print("err", epoch, file=sys.stderr)
    sys.stdout.write(f"write {epoch};")
    sys.stderr.write(f"errwrite {epoch};")
print()
real = sys.stdout
sys.stdout = io.StringIO()
for step in range(3):
    print("hidden", step)
captured, sys.stdout = sys.stdout.getvalue(), real
print("captured", captured.splitlines())
print("unicode ✓ é", "tab\tend")
print("encoding", sys.stdout.encoding, sys.stderr.encoding)
sys.stdout.write("no trailing newline")
