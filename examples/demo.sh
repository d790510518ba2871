#!/usr/bin/env bash
# The main job end to end on a bundled example, in a temp folder:
# record examples/digits_cnn.py, add a hindsight log line to it, replay, and print the hindsight values.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$here/digits_cnn.py" "$work/train.py"
cd "$work"
echo "== record: python -m flortrace train.py --quick --epochs 6"
python3 -m flortrace train.py --quick --epochs 6
echo "== edit: log the classifier's weight norm at the end of every epoch (a statement we forgot)"
python3 - <<'PY'
from pathlib import Path
p = Path("train.py")
src = p.read_text().replace("import argparse\n", "import argparse\n\nimport flortrace\n", 1)
src = src.replace(
    "        scheduler.step()\n",
    "        scheduler.step()\n        flortrace.log(\"fc2_weight_norm\", model.fc2.weight.norm().item())\n",
    1,
)
p.write_text(src)
PY
grep -n "flortrace" train.py
echo "== replay: python -m flortrace replay train.py --quick --epochs 6"
python3 -m flortrace replay train.py --quick --epochs 6
echo "== the hindsight values: python -m flortrace logs --name fc2_weight_norm"
python3 -m flortrace logs --name fc2_weight_norm
