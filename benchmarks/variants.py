"""Variants of the example scripts, made by inserting lines into a copy of their source.

Editing a copy keeps a variant identical to its example apart from the inserted lines, even as the example
changes; when an anchor line is no longer in the example, the benchmark stops with a message saying so.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from harness import BENCHMARKS, EXAMPLES


class AnchorMissing(RuntimeError):
    """The line a variant inserts after is not (or not once) in the example."""


def insert_after(source: str, anchor: str, line: str, what: str) -> str:
    """Insert ``line`` (indented like ``anchor``) after the only line of ``source`` that equals ``anchor``."""
    lines = source.splitlines(keepends=True)
    hits = [i for i, text in enumerate(lines) if text.strip() == anchor]
    if len(hits) != 1:
        raise AnchorMissing(f"{what}: expected one line {anchor!r} in the example, found {len(hits)}")
    text = lines[hits[0]]
    indent = text[: len(text) - len(text.lstrip())]
    lines.insert(hits[0] + 1, f"{indent}{line}\n")
    return "".join(lines)


def copy_example(name: str, folder: str | Path, as_name: str | None = None) -> Path:
    """Copy ``examples/NAME.py`` into ``folder``; returns the copy's path."""
    dest = Path(folder) / f"{as_name or name}.py"
    shutil.copyfile(EXAMPLES / f"{name}.py", dest)
    return dest


def digits_torch_save(folder: str | Path) -> Path:
    """digits_cnn.py with a synchronous torch.save of model, optimizer and scheduler after every epoch."""
    path = copy_example("digits_cnn", folder, "digits_cnn_torch_save")
    state = '{"model": model.state_dict(), "opt": opt.state_dict(), "scheduler": scheduler.state_dict()}'
    save = f'torch.save({state}, "checkpoint.pt")'
    path.write_text(insert_after(path.read_text(), "scheduler.step()", save, "digits_cnn torch.save variant"))
    return path


def finetune_torch_save(folder: str | Path, save_dir: str | Path) -> Path:
    """finetune_frozen.py saving model and optimizer with torch.save to ``save_dir`` after every epoch.

    Files are named ``pretrain-E.pt`` and ``finetune-E.pt`` with E the epoch of each loop."""
    path = copy_example("finetune_frozen", folder, "finetune_frozen_torch_save")
    source = path.read_text()
    for phase, model in (("pretrain", "pre_model"), ("finetune", "model")):
        anchor = f'print(f"{phase} epoch {{epoch}}: loss={{loss:.4f}} acc={{acc:.4f}}")'
        save = (
            f'torch.save({{"model": {model}.state_dict(), "opt": opt.state_dict()}},'
            f' f"{save_dir}/{phase}-{{epoch}}.pt")'
        )
        source = insert_after(source, anchor, save, "finetune_frozen torch.save variant")
    path.write_text(source)
    return path


# (example, level) -> (anchor line, hindsight statement inserted after it)
HINDSIGHT = {
    ("digits_cnn", "epoch"): (
        "scheduler.step()",
        'flortrace.log("fc2_weight_norm", model.fc2.weight.norm().item())',
    ),
    ("digits_cnn", "batch"): ("opt.step()", 'flortrace.log("batch_loss", loss.item())'),
    ("char_lm", "epoch"): (
        "val_ppl = evaluate(model, val_data, args.seq_len)",
        'flortrace.log("head_norm", model.head.weight.norm().item())',
    ),
    ("char_lm", "batch"): ("opt.step()", 'flortrace.log("batch_loss", loss.item())'),
    ("pure_python", "batch"): ("scale = lr / len(batch)", 'flortrace.log("rows_updated", len(grads))'),
    ("pure_python", "epoch"): (
        "lr *= args.decay",
        'flortrace.log("max_weight", max(max(row) for row in weights))',
    ),
    ("mlp_train", "epoch"): (
        "loss = train_epoch()",
        'flortrace.log("head_norm", model[4].weight.norm().item())',
    ),
    ("mlp_train", "batch"): ("opt.step()", 'flortrace.log("batch_loss", loss.item())'),
}


def source(example: str) -> Path:
    """An example script, or a workload kept with the benchmarks (``mlp_train``)."""
    path = EXAMPLES / f"{example}.py"
    return path if path.exists() else BENCHMARKS / f"{example}.py"


def hindsight(example: str, path: str | Path, level: str | None) -> str | None:
    """Write ``examples/EXAMPLE.py`` to ``path`` with a hindsight log statement at ``level`` ('epoch',
    'batch'; None leaves it unedited). Returns the name the statement logs (None for the unedited script)."""
    text = source(example).read_text()
    if level is None:
        Path(path).write_text(text)
        return None
    anchor, line = HINDSIGHT[example, level]
    text = insert_after(text, "import argparse", "import flortrace", f"{example} hindsight edit")
    text = insert_after(text, anchor, line, f"{example} {level}-level hindsight edit")
    Path(path).write_text(text)
    return line.split('"')[1]
