"""Parallel replay: split the selected epochs into checkpoint-aligned segments and run one worker per segment.

Workers are fresh processes running ``python -m flortrace replay --epochs <segment>`` on the same script:
they get plain data (script, argv, run id, epochs), never pickled objects of ``__main__``. With GPUs each
worker sees one through CUDA_VISIBLE_DEVICES. Their log rows land in the
same catalog, so the results merge by themselves.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time


def segments(plan, workers):
    """Split ``plan.selected`` into at most ``workers`` runs of epochs, each starting at a checkpoint."""
    chosen = sorted(plan.selected)
    if workers <= 1 or len(chosen) <= 1:
        return [chosen] if chosen else []
    bases = {m.base for m in plan.mains}
    can_start = [e for e in chosen if e in bases or (e - 1) in plan.checkpoints]
    cost = {e: max(plan.epoch_seconds.get(e, 0.0), 1e-3) for e in chosen}
    total = sum(cost.values())
    out, current, done = [], [], 0.0
    for e in chosen:
        if current and e in can_start and len(out) < workers - 1 and done >= total * (len(out) + 1) / workers:
            out.append(current)
            current = []
        current.append(e)
        done += cost[e]
    out.append(current)
    return out


def _gpus():
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g for g in visible.split(",") if g.strip()]
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        return [str(i) for i in range(torch.cuda.device_count())]
    return []


def worker_env(index, count):
    """The environment of worker ``index`` of ``count``: one GPU each when there are GPUs.

    Thread counts are not divided: replay applies the recorded torch settings, since a different thread
    count can change results. Workers that share cores instead get OpenMP threads that sleep while they
    wait: spinning threads of one worker would starve the others (2 workers on 2 cores ran 15x slower
    than one after the other), and the wait policy changes no result."""
    env = dict(os.environ)
    gpus = _gpus()
    if gpus:
        env["CUDA_VISIBLE_DEVICES"] = gpus[index % len(gpus)]
    if count > 1:
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env


def run_local(commands, envs, progress, limit=None):
    """Run worker commands concurrently (at most ``limit`` at once); returns [(returncode, stdout, stderr)]
    in order."""
    results = [None] * len(commands)
    slots = threading.Semaphore(limit or len(commands) or 1)

    def work(i):
        with slots:
            out = subprocess.run(commands[i], env=envs[i], capture_output=True, text=True)
        results[i] = (out.returncode, out.stdout, out.stderr)
        progress(i)

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(len(commands))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def command(target, argv, module, run_id, epochs, settings, index, count, force=False, overlay=None):
    cmd = [
        sys.executable,
        "-m",
        "flortrace",
        "replay",
        "--run",
        str(run_id),
        "--store",
        str(settings.store),
        "--global-epochs",
        ",".join(map(str, epochs)),
        "--segment",
        f"{index}/{count}",
        "-q",
    ]
    if force:
        cmd.append("--force")
    if overlay:
        cmd += ["--overlay", overlay]
    if settings.tolerance:
        cmd += ["--tolerance", str(settings.tolerance)]
    cmd += ["-m", target] if module else [target]
    return cmd + list(argv)


def replay_parallel(target, argv, settings, module, run, plan, notify, force=False, overlay=None):
    parts = segments(plan, settings.workers)
    count = len(parts)
    notify(
        f"replaying {len(plan.selected)} epoch(s) of run {run['id']} in {count} worker(s): "
        + ", ".join(f"{p[0]}-{p[-1]}" for p in parts)
    )
    commands = [
        command(target, argv, module, run["id"], p, settings, i, count, force, overlay)
        for i, p in enumerate(parts)
    ]
    envs = [worker_env(i, count) for i in range(count)]
    began = time.monotonic()
    done = []

    def progress(i):
        done.append(i)
        if sys.stderr.isatty() and not settings.quiet:
            print(
                f"flortrace: segment {i + 1}/{count} finished ({len(done)}/{count}, "
                f"{time.monotonic() - began:.1f}s)",
                file=sys.stderr,
            )

    if settings.backend == "ray":
        from .raybackend import run_ray

        results = run_ray(commands, envs, settings, progress)
    else:
        results = run_local(commands, envs, progress)
    code = 0
    for i, (rc, out, err) in enumerate(results):
        sys.stdout.write(out)
        sys.stderr.write(err)
        if rc and not code:
            code = rc
        if rc:
            notify(f"segment {i + 1}/{count} (epochs {parts[i][0]}-{parts[i][-1]}) exited with code {rc}")
    notify(f"replayed run {run['id']} with {count} worker(s) in {time.monotonic() - began:.1f}s")
    return code
