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

from . import runner, scriptargs
from .driver import project_path, project_root, run_under
from .replay import planner
from .replay.epochs import SpecError
from .replay.parallel import replay_parallel, run_local, worker_env
from .runtime import fidelity, progress, world
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
    return script_runs(catalog, target, module)[-1]["id"]


def script_runs(catalog, target, module):
    """The recorded runs of a script, oldest first: of this very file, else (a moved or copied project) of
    the file at the same place in its project. StoreError when there are none, or several scripts match."""
    runs = [r for r in catalog.runs() if r["mode"] == "record"]
    if module:
        found = [r for r in runs if r["script"] == target]
    else:
        real = os.path.realpath(target)
        found = [r for r in runs if os.path.realpath(r["script"]) == real]
        if not found:
            here = project_path(target)
            found = [r for r in runs if (r.get("info") or {}).get("project_path") == here]
            scripts = sorted({r["script"] for r in found})
            if len(scripts) > 1:
                raise StoreError(
                    f"no recorded run of {target} itself; {len(scripts)} scripts at {here} in their projects "
                    f"have runs here ({', '.join(scripts)}): choose one with --run"
                )
    if not found:
        raise StoreError(
            f"no recorded run of {target} in this store; record it first: python -m flortrace {target}"
        )
    return sorted(found, key=lambda r: r["id"])


def make_plan(store, target, argv, settings, module, run_id, epochs, force, today=None):
    run_id = find_run(store.catalog, target, module, run_id)
    run = store.catalog.run(run_id)
    if run["status"] == "running":
        raise StoreError(f"run {run_id} is still recording")
    plan = planner.build(store.catalog, run_id, project_root(target, module), epochs, force, today)
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
    target,
    argv,
    settings,
    module=False,
    run_id=None,
    epochs=None,
    force=False,
    plan_only=False,
    segment=None,
    overlay=None,
):
    """Replay; ``segment`` = (index, count) when this process is one worker of a parallel replay;
    ``overlay`` = {relative path: source} to run instead of the files on disk (replay_runs)."""
    notify = stderr_notice(settings["quiet"])
    store = Store.open_existing(settings["store"])
    try:
        run, plan = make_plan(store, target, argv, settings, module, run_id, epochs, force, overlay)
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
    if segment is None:
        world.empty(store.root, run["id"])  # the replay's own folder, for what the script writes
    if settings["workers"] > 1 and segment is None:
        store.close()
        return replay_parallel(
            target, argv, settings, module, run, plan, notify, force, settings.get("overlay")
        )
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
        overlay=overlay,
    )
    from .console import breakpoints

    pid = os.getpid()
    try:
        with (
            breakpoints(replayer, interactive=segment is None),
            world.guard(store.root, run["id"], guarded_folders(target, module), notify, settings["isolate"]),
            progress.shown(replayer, enabled=segment is None and not settings["quiet"]),
        ):
            exc = run_under(replayer, target, argv, module, settings)
    except (runner.NoScript, SyntaxError) as failure:
        return runner.report_start_failure(failure)
    if os.getpid() != pid:  # a child the script forked: the replay's results are the parent's to store
        return runner.exit_code_of(exc)
    code = 0 if isinstance(exc, fidelity.Diverged) else runner.exit_code_of(exc)
    replayer.finish()
    store.close()
    return report(replayer, run, code, notify)


def guarded_folders(target, module):
    """Where the script's writes are redirected during replay (runtime/files.py): the working directory
    and the project folder."""
    return [os.getcwd(), str(project_root(target, module))]


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


def replay_runs(target, settings, module, spec, where, epoch_spec, force, plan_only):
    """Replay many recorded runs of a script with the lines added today: each run with its own recorded
    source (today's additions carried into it, splice.py) and its own arguments, several at once with
    --workers (local processes or Ray). Returns the worst exit code."""
    import json
    import tempfile

    from .replay import runs as run_specs
    from .replay import splice

    notify = stderr_notice(settings["quiet"])
    with Store.open_existing(settings["store"]) as store:
        catalog = store.catalog
        every = script_runs(catalog, target, module)
        try:
            chosen = run_specs.select(spec, every)
            if where:
                chosen = [r for r in chosen if run_specs.matches(where, scriptargs.values(r["argv"]))]
        except run_specs.RunsError as exc:
            raise StoreError(str(exc)) from None
        chosen = [r for r in chosen if r["status"] != "running"]
        if not chosen:
            raise StoreError(f"--runs {spec}" + (f" --where {where!r}" if where else "") + " selects no run")
        base = catalog.sources(every[-1]["id"])  # today's edits were made on the newest run's code
        root = project_root(target, module)
        today = {rel: _read(root, rel) for rel in base}
        overlays, refused = {}, []
        for run in chosen:
            overlay, problems = {}, []
            for rel, recorded in catalog.sources(run["id"]).items():
                if today.get(rel) is None:
                    continue
                carried = splice.carry(
                    base.get(rel, recorded), today[rel], recorded, f"run {run['id']}'s {rel}"
                )
                overlay[rel] = carried.source
                problems += carried.problems
            if problems:
                refused.append(run["id"])
                for problem in problems:
                    print(f"flortrace: run {run['id']} left out: {problem}", file=sys.stderr)
                continue
            overlays[run["id"]] = overlay
        epochs = {}
        for run_id in overlays:
            if epoch_spec is not None:
                loops = planner.loops(planner.main_runs(catalog.run(run_id), catalog.epochs(run_id)))
                try:
                    epochs[run_id] = loops.select(epoch_spec)
                except SpecError as exc:
                    raise StoreError(f"--epochs {epoch_spec} in run {run_id}: {exc}") from None
        if plan_only:
            total = 0.0
            for run_id, overlay in overlays.items():
                try:
                    run, plan = make_plan(
                        store, target, [], settings, module, run_id, epochs.get(run_id), force, overlay
                    )
                except planner.PlanError as exc:
                    print(f"flortrace: run {run_id}: refusing to replay: {exc}", file=sys.stderr)
                    continue
                print_plan(run, plan)
                total += plan.estimate()
            print(f"estimated time for {len(overlays)} run(s): {total:.2f}s")
            return 2 if refused else 0
        folder = Path(tempfile.mkdtemp(prefix="overlays-", dir=store.tmp))
    commands, envs = [], []
    for i, (run_id, overlay) in enumerate(overlays.items()):
        path = folder / f"run-{run_id}.json"
        path.write_text(json.dumps(overlay))
        cmd = [
            sys.executable,
            "-m",
            "flortrace",
            "replay",
            "--run",
            str(run_id),
            "--store",
            str(settings["store"]),
        ]
        chosen_epochs = epochs.get(run_id)
        cmd += ["--overlay", str(path), "-q"]
        cmd += ["--global-epochs", ",".join(map(str, chosen_epochs))] if chosen_epochs else []
        cmd += (["--force"] if force else []) + (["-m", target] if module else [target])
        commands.append(cmd)
        envs.append(worker_env(i, len(overlays)))
    notify(
        f"replaying {len(commands)} run(s) of {target} ({', '.join(map(str, overlays))}), "
        f"{min(settings['workers'], len(commands))} at a time"
    )
    began = time.monotonic()
    try:
        if settings["backend"] == "ray":
            from .replay.raybackend import run_ray

            results = run_ray(commands, envs, settings, lambda i: None)
        else:
            results = run_local(commands, envs, lambda i: None, limit=settings["workers"])
    finally:
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()
    code = 2 if refused else 0
    for run_id, (rc, out, err) in zip(overlays, results, strict=True):
        sys.stdout.write(out)
        sys.stderr.write(err)
        notify(f"run {run_id}: " + ("replayed" if rc == 0 else f"exit code {rc}"))
        code = max(code, rc)
    notify(f"replayed {len(commands)} run(s) in {time.monotonic() - began:.1f}s")
    return code


def _read(root, rel):
    path = Path(rel) if Path(rel).is_absolute() else Path(root) / rel
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None
