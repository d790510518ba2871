"""The control layer: record, replay and travel, each the same way down: store -> plan -> session ->
run_under -> report, returning the exit code. The command line (cli.py) calls these; nothing below imports
this module, and the engine (runtime/) only meets the console through the driver given to its session.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

import flortrace

from . import runner, scriptargs
from .console import Breaks, Console, Quit
from .driver import find_run, project_path, project_root, run_under, script_runs
from .exceptions import RunsError, SpecError, StoreError, UsageError
from .recording import (
    ENV_KEYS,
    RecordingCatalog,
    can_start,
    git_commit,
    notice,
    run_plain,
    run_unrecorded,
    torch_settings,
    versions,
    warn,
)
from .replay import planner, splice
from .replay import runs as run_specs
from .replay.parallel import replay_parallel, run_local, worker_env
from .runtime import fidelity, hooks, progress, world
from .runtime.recorder import Recorder, stderr_notice
from .runtime.replayer import Replayer
from .runtime.timetravel import TimeTravel
from .state.digest import VERSION as DIGEST_VERSION
from .store import Store
from .store.snapshot import load_snapshot
from .store.writer import SnapshotWriter

DIVERGED = fidelity.EXIT  # exit code when the replay does not reproduce the recording


def record(target, argv, settings, module=False):
    """Run ``target`` under the recorder; return the script's exit code."""
    try:
        store = Store(settings.store)
    except (StoreError, OSError) as exc:
        return run_unrecorded(target, argv, module, str(exc))
    if not can_start(target, module):
        store.close()
        return run_plain(target, argv, module)  # Python's message and exit code; no run is left behind
    try:
        run_id = store.catalog.begin_run(
            script=target if module else str(Path(os.path.abspath(target))),
            argv=list(argv),
            cwd=os.getcwd(),
            env={k: os.environ[k] for k in ENV_KEYS if k in os.environ},
            versions=versions(),
            git=git_commit(project_root(target, module)),
            name=settings.name,
        )
    except (StoreError, OSError) as exc:
        store.close()
        return run_unrecorded(target, argv, module, str(exc))
    return _record_run(store, run_id, target, argv, settings, module)


def _record_run(store, run_id, target, argv, settings, module):
    notify = notice(settings.quiet)
    pid = os.getpid()
    writer = SnapshotWriter(str(store.root), run_id)
    if settings.overhead > 0:
        writer.start()  # the process imports while the script sets up, so the first snapshot need not wait
    catalog = RecordingCatalog(store.catalog, lambda exc: stop(exc))
    catalog.set_run_info(
        run_id,
        digest_version=DIGEST_VERSION,
        project_path=target if module else project_path(target),
        include=list(settings.include),
    )
    recorder = Recorder(catalog, run_id, writer, settings.overhead, notify, settings.epoch_loop)
    real_exit = os._exit
    finishing = []  # [True] once finish began: it runs once
    stopped = []  # where the recording stopped, if it did

    def stop(exc):
        writer.stop(f"the recording stopped: {exc}")
        recorder.warned.add("writer")  # the writer's own notice would repeat this one
        hooks.deactivate()
        stopped.append(f"at epoch {recorder.epochs_done}" if recorder.epochs_done else "before epoch 0 ended")
        warn(f"recording stopped {stopped[0]}, the script goes on: {exc}; run {run_id} keeps what was saved")

    def finish(status, code):
        finishing.append(True)
        stopped_before = catalog.failure is not None
        hooks.deactivate()
        recorder.finish()
        writer.close()
        if writer.failed and catalog.failure is None:
            if "writer" not in recorder.warned:
                notify(f"checkpointing stopped: {writer.failed}")
            catalog.set_run_info(run_id, writer_error=writer.failed)
        catalog.set_run_info(run_id, versions=versions(), **torch_settings())  # torch is imported by now
        catalog.end_run(run_id, status, code)
        if catalog.failure is None:
            notify(
                f"recorded run {run_id}: {recorder.summary()}, {recorder.checkpoints} snapshots "
                f"in {settings.store}"
            )
            return
        try:  # the run says it is incomplete when the store takes that much; else it reads as crashed
            store.catalog.end_run(run_id, "crashed", code, note=f"the recording stopped: {catalog.failure}")
        except Exception:
            pass
        if stopped_before:  # said when it happened, maybe long ago: the end of the output sums it up
            warn(f"run {run_id} is incomplete: the recording stopped {stopped[0]} (see above)")

    def exit_now(code):  # os._exit skips finally blocks: finish the run first
        if not finishing and os.getpid() == pid:
            finish("finished" if code == 0 else "failed", code)
        real_exit(code)

    def start():
        os._exit = exit_now
        recorder.policy.add_fixed(
            time.perf_counter() - flortrace._imported
        )  # imports, instrumenting, catalog

    def add_source(rel, source):
        recorder.sources[rel] = source
        catalog.add_source(run_id, rel, source)

    try:
        exc = run_under(recorder, target, argv, module, settings, add_source, start)
    except (runner.NoScript, SyntaxError) as failure:
        code = runner.report_start_failure(failure)
        catalog.end_run(run_id, "failed", code)
        catalog.delete_run(run_id)  # nothing ran: no run to replay or to take as the latest
        store.close()
        return code
    except KeyboardInterrupt as interrupt:  # a Ctrl-C delivered again just as the script ended (see _LoopEnd)
        exc = interrupt
    finally:
        os._exit = real_exit
    code = runner.exit_code_of(exc)
    if os.getpid() != pid:
        return code  # a child the script forked: the run, and the store, are the parent's
    try:
        finish("finished" if code == 0 else "failed", code)
        store.close()
    except KeyboardInterrupt:
        warn(f"interrupted while saving run {run_id}; it keeps what was written before and reads as crashed")
        return runner.INTERRUPTED
    return code


def make_plan(store, target, module, run_id, epochs, force, today=None):
    """The run to replay (held, so that ``rm`` refuses it until the store closes) and its plan.

    ``epochs``: an epoch spec as --epochs gives it, global epoch numbers (a parallel replay's worker), or
    None for all; ``today``: {relative path: source} to plan against instead of the files on disk."""
    run_id = find_run(store.catalog, target, module, run_id)
    store.catalog.hold_run(run_id)
    run = store.catalog.run(run_id)
    if isinstance(epochs, str):
        loops = planner.loops(planner.main_runs(run, store.catalog.epochs(run_id)))
        try:
            epochs = loops.select(epochs)
        except SpecError as exc:
            raise UsageError(f"--epochs {epochs}: {exc} (run {run_id})") from None
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
    target, argv, settings, module=False, run_id=None, epochs=None, force=False, plan_only=False, segment=None
):
    """Replay a run: store -> plan -> replayer -> run_under -> report; returns the exit code.

    ``epochs`` as for make_plan; ``segment`` = (index, count) when this process is one worker of a parallel
    replay; ``settings.overlay``: a JSON file {relative path: source} to run instead of the files on disk
    (replay_runs)."""
    notify = stderr_notice(settings.quiet)
    overlay = None
    if settings.overlay:
        with open(settings.overlay, encoding="utf-8") as f:
            overlay = json.load(f)
    store = Store.open_existing(settings.store)
    pid = os.getpid()
    try:
        return _replay(
            store, target, argv, settings, module, run_id, epochs, force, plan_only, segment, overlay, notify
        )
    finally:
        if os.getpid() == pid:  # a child the script forked leaves the store (and the run's hold) alone
            store.close()


def _replay(
    store, target, argv, settings, module, run_id, epochs, force, plan_only, segment, overlay, notify
):
    try:
        run, plan = make_plan(store, target, module, run_id, epochs, force, overlay)
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
    if settings.workers > 1 and segment is None:
        return replay_parallel(target, argv, settings, module, run, plan, notify, force, settings.overlay)
    last_segment = segment is None or segment[0] == segment[1] - 1
    replayer = Replayer(
        plan,
        lambda manifest: load_snapshot(store, manifest),
        store.catalog,
        run["id"],
        settings.tolerance,
        notify,
        keep_unnumbered=last_segment,
        force=force,
        causes=causes,
        keep_setup=list(argv) != recorded,
        overlay=overlay,
    )
    if segment is None:
        replayer.driver = Breaks(replayer)  # breakpoints open the console; a worker has no terminal
    pid = os.getpid()
    try:
        with (
            hooks.breakpoints(),
            world.guard(store.root, run["id"], guarded_folders(target, module), notify, settings.isolate),
            progress.shown(replayer, enabled=segment is None and not settings.quiet),
        ):
            exc = run_under(replayer, target, argv, module, settings)
    except (runner.NoScript, SyntaxError) as failure:
        return runner.report_start_failure(failure)
    if os.getpid() != pid:  # a child the script forked: the replay's results are the parent's to store
        return runner.exit_code_of(exc)
    code = 0 if isinstance(exc, fidelity.Diverged) else runner.exit_code_of(exc)
    replayer.finish()
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
    notify = stderr_notice(settings.quiet)
    with Store.open_existing(settings.store) as store:
        catalog = store.catalog
        every = script_runs(catalog, target, module)
        try:
            chosen = run_specs.select(spec, every)
            if where:
                chosen = [r for r in chosen if run_specs.matches(where, scriptargs.values(r["argv"]))]
        except RunsError as exc:
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
                    run, plan = make_plan(store, target, module, run_id, epochs.get(run_id), force, overlay)
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
            str(settings.store),
        ]
        chosen_epochs = epochs.get(run_id)
        cmd += ["--overlay", str(path), "-q"]
        cmd += ["--global-epochs", ",".join(map(str, chosen_epochs))] if chosen_epochs else []
        cmd += (["--force"] if force else []) + (["-m", target] if module else [target])
        commands.append(cmd)
        envs.append(worker_env(i, len(overlays)))
    notify(
        f"replaying {len(commands)} run(s) of {target} ({', '.join(map(str, overlays))}), "
        f"{min(settings.workers, len(commands))} at a time"
    )
    began = time.monotonic()
    try:
        if settings.backend == "ray":
            from .replay.raybackend import run_ray

            results = run_ray(commands, envs, settings, lambda i: None)
        else:
            results = run_local(commands, envs, lambda i: None, limit=settings.workers)
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


def travel(target, argv, settings, module=False, run_id=None, force=False):
    """Open the console over a run: the script runs under a time-travel session that the console drives."""
    notify = stderr_notice(settings.quiet)
    store = Store.open_existing(settings.store)
    try:
        try:
            run, plan = make_plan(store, target, module, run_id, None, force)
        except planner.PlanError as exc:
            print(f"flortrace: refusing to open the console: {exc}", file=sys.stderr)
            return 2
        argv = list(argv) or list(run["argv"] or [])  # as replay: the recorded arguments by default
        if not plan.mains:
            print(f"flortrace: error: run {run['id']} has no epoch loop to travel in", file=sys.stderr)
            return 2
        for note in plan.notes:
            notify(note)
        session = TimeTravel(
            plan, lambda manifest: load_snapshot(store, manifest), store.catalog, run["id"], notify
        )
        driver = session.driver = Console(session)
        world.empty(store.root, run["id"])
        folders = guarded_folders(target, module)
        try:
            with (
                hooks.breakpoints(),
                world.guard(store.root, run["id"], folders, notify, settings.isolate),
            ):
                exc = run_under(session, target, argv, module, settings)
        except (runner.NoScript, SyntaxError) as failure:
            return runner.report_start_failure(failure)
        finally:
            sys.settrace(None)
        if isinstance(exc, Quit):
            return 0
        code = runner.exit_code_of(exc)
        driver.finish(code)
        return code
    finally:
        store.close()
