#!/usr/bin/env bash
# The main job end to end on a bundled example, in a temp folder: record examples/char_lm.py for 12 epochs,
# add a hindsight log line to it, replay (every epoch's blocks come back from memos, so replay takes a small
# part of the recording's time: its summary says how long each took), and print the hindsight values.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$here/char_lm.py" "$work/train.py"
cd "$work"
echo "== record: python -m flortrace train.py --epochs 12 --steps 80"
python3 -m flortrace train.py --epochs 12 --steps 80
echo "== edit: log the read-out layer's weight norm at the end of every epoch (a statement we forgot)"
python3 - <<'PY'
from pathlib import Path
p = Path("train.py")
src = p.read_text().replace("import argparse\n", "import argparse\n\nimport flortrace\n", 1)
src = src.replace(
    "        val_ppl = evaluate(model, val_data, args.seq_len)\n",
    "        val_ppl = evaluate(model, val_data, args.seq_len)\n"
    "        flortrace.log(\"head_norm\", model.head.weight.norm().item())\n",
    1,
)
p.write_text(src)
PY
grep -n "flortrace" train.py
echo "== which epochs got which snapshots, and why: python -m flortrace show 1"
python3 -m flortrace show 1 | sed -n '/^epochs:/,$p'
echo "== replay: python -m flortrace replay train.py --epochs 12 --steps 80"
python3 -m flortrace replay train.py --epochs 12 --steps 80
echo "== the hindsight values: python -m flortrace logs --name head_norm"
python3 -m flortrace logs --name head_norm
