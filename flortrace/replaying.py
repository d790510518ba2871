"""Replay an edited script against a recorded run, and report new values and divergences."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import flortrace

from . import runner
from .driver import project_root, run_under
from .replay import planner
from .replay.parallel import replay_parallel
from .runtime import fidelity
from .runtime.recorder import stderr_notice
from .runtime.replayer import Replayer
from .store import Store, StoreError
from .store.writer import load_snapshot

DIVERGED = fidelity.EXIT  # exit code when the replay does not reproduce the recording


def find_run(catalog, target, module, run_id):
    if run_id is not None:
        if catalog.run(run_id) is None:
            raise StoreError(f"no run {run_id} in this store (see python -m flortrace runs)")
        return run_id
    script = target if module else str(Path(os.path.abspath(target)))
    found = catalog.latest_run(script)
    if found is None:
        raise StoreError(
            f"no recorded run of {target} in this store; record it first: python -m flortrace {target}"
        )
    return found


def make_plan(store, target, argv, settings, module, run_id, epochs, force):
    run_id = find_run(store.catalog, target, module, run_id)
    run = store.catalog.run(run_id)
    if run["status"] == "running":
        raise StoreError(f"run {run_id} is still recording")
    plan = planner.build(store.catalog, run_id, project_root(target, module), epochs, force)
    if run["status"] == "crashed":
        plan.notes.append(f"run {run_id} crashed; replaying the epochs it finished")
    return run, plan


def print_plan(run, plan, out=sys.stdout):
    print(
        f"replay plan for run {run['id']} ({run['script']}), {len(plan.selected)} epoch(s) selected", file=out
    )
    for note in plan.notes:
        print(f"  note: {note}", file=out)
    if plan.probes:
        print(f"  probes (blocks that re-execute): {', '.join(sorted(plan.probes))}", file=out)
    for epoch, action, seconds in plan.steps():
        print(f"  epoch {epoch:>4}: {action:<40} ~{seconds:.2f}s", file=out)
    print(
        f"  estimated time: {plan.estimate():.2f}s "
        f"(recorded epochs took {sum(plan.epoch_seconds.values()):.2f}s)",
        file=out,
    )


def replay(
    target, argv, settings, module=False, run_id=None, epochs=None, force=False, plan_only=False, segment=None
):
    """Replay; ``segment`` = (index, count) when this process is one worker of a parallel replay."""
    notify = stderr_notice(settings["quiet"])
    store = Store.open_existing(settings["store"])
    try:
        run, plan = make_plan(store, target, argv, settings, module, run_id, epochs, force)
    except planner.PlanError as exc:
        print(f"flortrace: refusing to replay: {exc}", file=sys.stderr)
        return 2
    recorded = list(run["argv"] or [])
    causes = []
    if not argv:
        argv = recorded
    elif list(argv) != recorded:
        if not force:
            ours = [a for a in argv if a.split("=")[0] in OWN_OPTIONS]
            hint = (
                f" (flortrace's own options go before the script: python -m flortrace replay {ours[0]} ...)"
                if ours
                else ""
            )
            print(
                f"flortrace: error: run {run['id']} was recorded with {_shown(recorded)}, "
                f"not {_shown(argv)}; "
                "replay without arguments to use the recorded ones, or with --force under the new ones"
                + hint,
                file=sys.stderr,
            )
            return 2
        causes.append(f"other arguments than the recording: {_shown(argv)} instead of {_shown(recorded)}")
    if plan_only:
        print_plan(run, plan)
        return 0
    for note in plan.notes:
        notify(note)
    if segment is None:
        for change in version_changes(run.get("versions") or {}):
            notify(f"warning: {change}: results may differ in the last bits")
            causes.append(change)
    if settings["workers"] > 1 and segment is None:
        store.close()
        return replay_parallel(target, argv, settings, module, run, plan, notify, force)
    last_segment = segment is None or segment[0] == segment[1] - 1
    replayer = Replayer(
        plan,
        lambda manifest: load_snapshot(store, manifest),
        store.catalog,
        run["id"],
        settings["tolerance"],
        notify,
        keep_unnumbered=last_segment,
        force=force,
        causes=causes,
        keep_setup=list(argv) != recorded,
    )
    from .console import breakpoints

    pid = os.getpid()
    try:
        with breakpoints(replayer, interactive=segment is None):
            exc = run_under(replayer, target, argv, module, settings)
    except (runner.NoScript, SyntaxError) as failure:
        return runner.report_start_failure(failure)
    if os.getpid() != pid:  # a child the script forked: the replay's results are the parent's to store
        return runner.exit_code_of(exc)
    code = 0 if isinstance(exc, fidelity.Diverged) else runner.exit_code_of(exc)
    replayer.finish()
    store.close()
    return report(replayer, run, code, notify)


OWN_OPTIONS = {"--run", "--epochs", "--workers", "--backend", "--plan", "--force", "--tolerance", "--store"}


def _shown(argv):
    return f"`{shlex.join(argv)}`" if argv else "no arguments"


def version_changes(recorded):
    """What differs between the recorded interpreter and libraries and the ones here."""
    out = []
    now = {"python": platform.python_version()}
    for name in ("torch", "numpy"):
        if name in recorded:
            try:
                now[name] = importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                now[name] = "not installed"
    for name, version in now.items():
        if recorded.get(name) not in (None, version):
            out.append(f"recorded with {name} {recorded[name]}, replaying with {version}")
    return out


def report(replayer, run, code, notify):
    names = sorted({r["name"] for r in replayer.rows})
    took = f" in {time.perf_counter() - flortrace._imported:.1f} s"
    if run.get("started") and run.get("ended"):
        took += f"; recording took {run['ended'] - run['started']:.1f} s"
    notify(
        f"replayed run {run['id']}{took}: ran {len(replayer.executed_epochs)} epoch(s), "
        f"{replayer.run_blocks} block(s) executed, {replayer.skipped_blocks} restored from memos; "
        f"{len(replayer.rows)} new value(s)" + (f" for {', '.join(names)}" if names else "")
    )
    if names:
        notify(f"see: python -m flortrace logs --run {run['id']} " + " ".join(f"--name {n}" for n in names))
    for divergence in replayer.divergences[:3]:
        for line in divergence.lines():
            print(f"flortrace: {line}", file=sys.stderr)
    if replayer.divergences:
        kept = (
            ""
            if replayer.force or replayer.failed_epoch is None
            else (f"; values from epoch {replayer.failed_epoch} on were not stored")
        )
        print(
            f"flortrace: the replay of run {run['id']} does not reproduce the recording "
            f"({len(replayer.divergences)} divergence(s){kept})",
            file=sys.stderr,
        )
        return code or DIVERGED
    return code
