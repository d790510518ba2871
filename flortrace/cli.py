"""The command line: ``flortrace [options] script.py args`` records; verbs replay, inspect and manage runs.

The only module that reads argv: it parses each verb's arguments, calls the control layer (control.py) or
the verbs that read the store (verbs.py), and owns the one error funnel for flortrace's own failures
(exceptions.py): one ``flortrace: error:`` line and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import config
from .exceptions import FlortraceError, UsageError
from .version import __version__

VERBS = ("replay", "console", "runs", "show", "source", "query", "logs", "export", "rm", "gc")

RECORD_HELP = """\
usage: python -m flortrace [options] script.py [args ...]
       python -m flortrace [options] -m package.module [args ...]
       python -m flortrace {replay,console,runs,show,source,query,logs,export,rm,gc} ...

Record a training script for hindsight logging. The script runs exactly as with `python script.py`;
flortrace finds its epoch loop, times epochs and blocks, and checkpoints the state they change within the
overhead budget. Later, add flortrace.log(...) lines and run `python -m flortrace replay script.py`.

options:
  --store DIR        where runs are kept (default ./.flortrace, env FLORTRACE_STORE)
  --overhead F       what flortrace may cost training (start-up, bookkeeping, snapshots), as a
                     fraction of its time (default 0.05); 0 takes no snapshots (timings and
                     sources only: replay then re-executes from the start)
  --name LABEL       a label for this run
  --epoch-loop FILE:LINE
                     the loop at FILE:LINE is the epoch loop (default: the loop whose iterations
                     step an optimizer, else the outermost loop with loops inside; show says why)
  --include PKG      also instrument the loops of an installed package (repeatable or comma-separated;
                     the project's folder and editable installs are instrumented anyway)
  -q, --quiet        no flortrace notices on stderr (a warning that nothing is recorded still shows)
  -m MODULE          run a module, like python -m
  --version          print the version
  -h, --help         this help

verbs:
  replay     re-run an edited script against a recorded run (new log values, exactly)
  console    pdb-like console over a recorded run: travel to any epoch, inspect, step, watch
  runs       list recorded runs           show RUN     details of one run
  source RUN [FILE]  a recorded source (--diff: against today's)
  query SQL  read-only SQL over runs, args and logs
  logs       print logged values (table, csv, json, parquet)
  export     logs to TensorBoard, MLflow or files
  rm RUN     delete a run                 gc           free blobs no run uses

`python -m flortrace VERB --help` explains each verb.
"""


RECORD_OPTIONS = {"--store", "--overhead", "--name", "--epoch-loop", "--include", "-m"}  # take a value


def split_at_script(argv, with_value):
    """Split ``argv`` before the script's own arguments: flortrace's options come first, then the script
    (or ``-m module``), then everything else belongs to the script, even names flortrace also uses."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            return argv[:i], argv[i + 1 :]
        if arg in with_value:
            if arg == "-m":
                return argv[: i + 2], argv[i + 2 :]
            i += 2
            continue
        if arg.startswith("-") and arg != "-":
            i += 1
            continue
        return argv[: i + 1], argv[i + 1 :]
    return argv, []


def attach_values(argv, options):
    """``--epochs -2:`` as ``--epochs=-2:``: argparse takes a value that starts with '-' for an option."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] in options and i + 1 < len(argv) and argv[i + 1].startswith("-"):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
            continue
        out.append(argv[i])
        i += 1
    return out


def _record_parser():
    p = argparse.ArgumentParser(prog="flortrace", add_help=False, allow_abbrev=False)
    p.add_argument("--store")
    p.add_argument("--overhead", type=float)
    p.add_argument("--name")
    p.add_argument("--epoch-loop")
    p.add_argument("--include", action="append")
    p.add_argument("-q", "--quiet", action="store_true", default=None)
    p.add_argument("-h", "--help", action="store_true")
    p.add_argument("--version", action="store_true")
    p.add_argument("-m", dest="module")
    p.add_argument("target", nargs="?")
    return p


def record_main(argv):
    from .control import record

    own, args = split_at_script(argv, RECORD_OPTIONS)
    ns, unknown = _record_parser().parse_known_args(own)
    if unknown:
        return _usage(f"unknown option {unknown[0]}")
    if ns.help:
        print(RECORD_HELP, end="")
        return 0
    if ns.version:
        print(f"flortrace {__version__}")
        return 0
    target, module = (ns.module, True) if ns.module else (ns.target, False)
    if target is None:
        return _usage("no script given")
    try:
        settings = config.load(
            {
                "store": ns.store,
                "overhead": ns.overhead,
                "quiet": ns.quiet,
                "epoch_loop": ns.epoch_loop,
                "include": ",".join(ns.include) if ns.include else None,
            },
            name=ns.name,
        )
    except config.ConfigError as exc:
        return _usage(str(exc))
    try:  # not through _guard: the script runs on top of these frames, fewer is closer to `python script`
        return record(target, args, settings, module=module)
    except FlortraceError as exc:
        return _failed(exc)


def _usage(message):
    print(f"flortrace: error: {message}\n(see python -m flortrace --help)", file=sys.stderr)
    return 2


def _failed(exc):
    print(f"flortrace: error: {exc}", file=sys.stderr)
    return 2


def _guard(verb, fn):
    """Run ``fn``, turning flortrace's own failures into one clear line: 2 for what the user can act on (bad
    input, the store), 1 for a flortrace bug (FLORTRACE_DEBUG=1 shows its traceback), never a traceback."""
    try:
        return fn()
    except UsageError as exc:
        print(f"flortrace: error: {verb}: {exc} (see flortrace {verb} --help)", file=sys.stderr)
        return 2
    except FlortraceError as exc:
        return _failed(exc)
    except BrokenPipeError:
        raise  # the reader of our output left: entry() ends quietly
    except Exception as exc:
        if os.environ.get("FLORTRACE_DEBUG"):
            raise
        print(
            f"flortrace: internal error: {exc!r} (please report it; FLORTRACE_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return 1


# ---- the verbs' arguments -------------------------------------------------------------------------
MAX_RUN_ID = 2**63 - 1  # SQLite's largest integer
NEED_EPOCHS = "--epochs needs epochs, such as 7, 2:5, ::10 or 0,3,9"


class Parser(argparse.ArgumentParser):
    """argparse that reports bad input in flortrace's way: one line, exit code 2."""

    def error(self, message):
        verb = self.prog.removeprefix("flortrace ")
        print(f"flortrace: error: {verb}: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def run_id(text):
    """An argparse type: a run id as the catalog numbers them (1, 2, 3, ...)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a run id (1, 2, 3, ...)") from None
    if not 1 <= value <= MAX_RUN_ID:
        raise argparse.ArgumentTypeError(f"there is no run {text} (run ids are 1, 2, 3, ...)")
    return value


def output_problem(path):
    """Why ``path`` cannot be written as an output file, or None: checked before anything is read."""
    target = Path(path)
    if target.is_dir():
        return f"cannot write {path}: it is a folder (give a file name)"
    parent = target.parent
    if not parent.is_dir():
        return f"cannot write {path}: there is no folder {parent}"
    if not os.access(parent, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        return f"cannot write {path}: permission denied"
    return None


def _parser(verb, description):
    p = Parser(prog=f"flortrace {verb}", description=description)
    p.add_argument("--store", help="store folder (default ./.flortrace, env FLORTRACE_STORE)")
    return p


def _settings(ns, **flags):
    return config.load({"store": ns.store, **flags})


REPLAY_OPTIONS = {"--run", "--epochs", "--tolerance", "--store", "--workers", "--backend", "--address"}
REPLAY_OPTIONS |= {"--segment", "--global-epochs", "--overlay", "--runs", "--where", "-m"}  # take a value


def replay(argv):
    p = _parser("replay", "Re-run an edited script against a recorded run: hindsight log values, exactly.")
    p.add_argument("--run", type=run_id, help="run id (default: the latest recorded run of the script)")
    p.add_argument(
        "--runs",
        help="replay several runs, each with its own recorded code and arguments and today's added lines "
        "carried into it: all, last:N, 3,5,7, 2:6",
    )
    p.add_argument("--where", help="with --runs: only runs whose arguments satisfy this, e.g. 'lr < 0.01'")
    p.add_argument(
        "--epochs",
        help="which epochs: 7, 2:5, ::10, 0,3,9, -1, -2:, a main loop's name first for another loop "
        "(finetune:0:3); default: all",
    )
    p.add_argument("--plan", action="store_true", help="print the plan and an estimated time; run nothing")
    p.add_argument(
        "--force",
        action="store_true",
        help="replay even if the edit changes state or loops, or under other arguments; report where the "
        "replay diverges instead of stopping there",
    )
    p.add_argument(
        "--tolerance",
        type=float,
        help="relative tolerance of the fidelity check for floats (default 0: exact)",
    )
    p.add_argument(
        "--workers", type=int, help="parallel workers, each replaying a checkpoint-aligned segment"
    )
    p.add_argument("--backend", choices=["local", "ray"], help="where workers run (default local processes)")
    p.add_argument("--address", help="Ray cluster address for --backend ray (default: start a local Ray)")
    p.add_argument("--segment", help=argparse.SUPPRESS)
    p.add_argument("--global-epochs", help=argparse.SUPPRESS)  # a parallel replay's worker: global numbers
    p.add_argument("--overlay", help=argparse.SUPPRESS)  # JSON {file: source} to run instead of the files
    p.add_argument("-q", "--quiet", action="store_true", default=None, help="no notices, no progress line")
    p.add_argument("-m", dest="module", help="replay a module recorded with -m")
    p.add_argument("target", nargs="?", help="the (edited) script")
    p.usage = "flortrace replay [options] script.py [args ...]"
    p.epilog = (
        "Without script arguments the recorded ones are used. The script's TensorBoard, W&B and MLflow "
        "runs and the files it writes go into STORE/replays/run-<id>, not over the recording's "
        "(FLORTRACE_ISOLATE=0: where the script says). Exit code: the script's; 3 when the replay "
        "does not reproduce the recording (the report names the epoch, the state that differs and the likely "
        "cause); 2 for usage errors."
    )
    own, rest = split_at_script(argv, REPLAY_OPTIONS)
    ns = p.parse_args(attach_values(own, {"--epochs"}))
    from . import control

    settings = config.load(
        {
            "store": ns.store,
            "quiet": ns.quiet,
            "tolerance": ns.tolerance,
            "workers": ns.workers,
            "backend": ns.backend,
        },
        address=ns.address,
        overlay=ns.overlay,
    )
    segment = None if ns.segment is None else _segment(ns.segment, p)
    target, args = (ns.module, ([ns.target] if ns.target else []) + rest) if ns.module else (ns.target, rest)
    if target is None:
        p.error("no script given")
    if ns.epochs is not None and not ns.epochs.strip():
        p.error(NEED_EPOCHS)
    module = bool(ns.module)
    if ns.runs is not None or ns.where is not None:
        if ns.run is not None or args:
            p.error("--runs replays each run with its own recorded arguments: give no --run and no arguments")
        return control.replay_runs(
            target, settings, module, ns.runs or "all", ns.where, ns.epochs, ns.force, ns.plan
        )
    epochs = [int(e) for e in ns.global_epochs.split(",")] if ns.global_epochs else ns.epochs
    return control.replay(target, args, settings, module, ns.run, epochs, ns.force, ns.plan, segment)


def _segment(text, p):
    """``--segment INDEX/COUNT`` (what a parallel replay passes its workers), checked."""
    index, slash, count = text.partition("/")
    try:
        segment = (int(index), int(count))
    except ValueError:
        segment = None
    if not slash or segment is None or not 0 <= segment[0] < segment[1]:
        p.error(f"--segment must be INDEX/COUNT with 0 <= INDEX < COUNT, not {text!r}")
    return segment


def console(argv):
    """``flortrace console [--run ID] [--store DIR] [-q] [--force] (script.py | -m module) [args...]``."""
    p = argparse.ArgumentParser(
        prog="flortrace console",
        description="Open a pdb-like console over a recorded run: travel to any epoch, inspect, step, watch.",
        epilog="Without script arguments the recorded ones are used. Ctrl-C stops a running command "
        "(c, n, epoch ...) at the next line of the script and gives the prompt back.",
    )
    p.add_argument("--run", type=int, help="run id (default: the latest recorded run of the script)")
    p.add_argument("--store", help="store folder (default ./.flortrace, env FLORTRACE_STORE)")
    p.add_argument("-q", "--quiet", action="store_true", default=None, help="no flortrace notices on stderr")
    p.add_argument("--force", action="store_true", help="open even if the edit changes state or loops")
    p.add_argument("-m", dest="module", help="a module recorded with -m (as python -m)")
    p.add_argument("target", nargs="?", help="the (possibly edited) script")
    p.usage = "flortrace console [options] (script.py | -m module) [args ...]"
    own, args = split_at_script(argv, {"--run", "--store", "-m"})
    ns = p.parse_args(own)
    if ns.module:
        target, args = ns.module, ([ns.target] if ns.target else []) + args
    elif ns.target is None:
        p.error("no script given")
    else:
        target = ns.target
    from .control import travel

    settings = config.load({"store": ns.store, "quiet": ns.quiet})
    return travel(target, args, settings, bool(ns.module), ns.run, ns.force)


def runs(argv):
    p = _parser("runs", "List recorded runs, newest first.")
    p.add_argument("--json", action="store_true", help="a JSON array instead of a table")
    ns = p.parse_args(argv)
    from . import verbs

    return verbs.runs(_settings(ns), ns.json)


def show(argv):
    p = _parser("show", "Details of one run: loops, changesets, snapshots per epoch and why, timings, logs.")
    p.add_argument("run", type=run_id)
    p.add_argument("--json", action="store_true")
    ns = p.parse_args(argv)
    from . import verbs

    return verbs.show(_settings(ns), ns.run, ns.json)


def logs(argv):
    p = _parser("logs", "Print logged values (recorded and replayed).")
    p.add_argument("--run", type=run_id, action="append", help="run id (repeatable; default: the latest run)")
    p.add_argument("--name", action="append", help="only this name (repeatable)")
    p.add_argument("--origin", choices=["record", "replay"])
    p.add_argument("--epochs", help="which epochs, as for replay: 7, 2:5, ::10, -2:, 0,3,9, finetune:0:3")
    p.add_argument("--format", choices=["table", "csv", "json", "parquet"], default="table")
    p.add_argument("--output", "-o", help="file to write (required for parquet)")
    ns = p.parse_args(attach_values(argv, {"--epochs"}))
    if ns.epochs is not None and not ns.epochs.strip():
        p.error(NEED_EPOCHS)
    if ns.format == "parquet" and not ns.output:
        p.error("--format parquet needs --output FILE")
    if ns.output and (problem := output_problem(ns.output)):
        p.error(problem)
    from . import verbs

    return verbs.logs(_settings(ns), ns.run, ns.name, ns.origin, ns.epochs, ns.format, ns.output)


def rm(argv):
    p = _parser(
        "rm",
        "Delete runs from the catalog (their blobs are freed by gc, their replays' files now); all or none.",
    )
    p.add_argument("runs", type=run_id, nargs="+")
    ns = p.parse_args(argv)
    from . import verbs

    return verbs.rm(_settings(ns), ns.runs)


def gc(argv):
    p = _parser("gc", "Free blobs no run references. Dry run unless --yes.")
    p.add_argument("--yes", action="store_true", help="really delete")
    ns = p.parse_args(argv)
    from . import verbs

    return verbs.gc(_settings(ns), ns.yes)


def source(argv):
    p = _parser("source", "Print the source a run recorded (the script, or another file of its project).")
    p.add_argument("run", type=run_id)
    p.add_argument("file", nargs="?", help="a file of the project as the run named it (default: the script)")
    p.add_argument("--diff", action="store_true", help="a unified diff against the file as it is today")
    ns = p.parse_args(argv)
    from . import verbs

    return verbs.source(_settings(ns), ns.run, ns.file, ns.diff)


def query(argv):
    p = _parser(
        "query",
        "Read-only SQL over the store. Views: runs(id, script, name, status, started, ended, exit_code, "
        "argv), args(run, name, value) with each recorded argument parsed argparse-style, "
        "logs(run, name, value, epoch, step, origin).",
    )
    p.add_argument("sql")
    p.add_argument("--json", action="store_true", help="a JSON array of rows instead of a table")
    ns = p.parse_args(argv)
    from . import verbs

    return verbs.query(_settings(ns), ns.sql, ns.json)


EXPORT_STEPS = (
    "Steps: an epoch-level value is at step = epoch; a value logged inside an epoch's loop is at "
    "epoch * W + step, W being the most iterations that loop made in one epoch of the run."
)


def _export_parser():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--store", help="store folder (default ./.flortrace, env FLORTRACE_STORE)")
    common.add_argument(
        "--run", type=run_id, action="append", help="run id (repeatable; default: the latest run)"
    )
    common.add_argument("--name", action="append", help="only this logged name (repeatable)")
    p = argparse.ArgumentParser(prog="flortrace export", description="Export logged values.")
    sub = p.add_subparsers(dest="format", required=True, metavar="{tensorboard,mlflow,csv,json,parquet}")
    tb = sub.add_parser(
        "tensorboard",
        parents=[common],
        help="TensorBoard event files",
        description="Write TensorBoard event files: DIR/<run>/record holds the values logged while "
        "recording, DIR/<run>/hindsight those from replays, <run> being the run's --name (else "
        "run-<id>). DIR may be the script's own logdir: only these folders are written. Wall times are when "
        "the recording reached each value. Exporting again replaces them. " + EXPORT_STEPS,
        usage="flortrace export tensorboard [options] (DIR | --into RUN_DIR)",
    )
    tb.add_argument("dir", nargs="?", help="TensorBoard log folder (view: tensorboard --logdir DIR)")
    tb.add_argument(
        "--into",
        metavar="RUN_DIR",
        help="write one run into the script's own TensorBoard run folder (such as runs/exp), as its sub-runs "
        "flortrace and flortrace-hindsight, so TensorBoard lists them beside the script's values",
    )
    ml = sub.add_parser(
        "mlflow",
        parents=[common],
        help="MLflow runs",
        description="Log each run to MLflow, named by its --name: numbers as metrics at the time the "
        "recording reached them, each script argument as a param (with argv, script and git), flortrace's "
        "run as tags. Exporting a run again updates its MLflow run with the values it lacks. " + EXPORT_STEPS,
    )
    ml.add_argument(
        "--tracking-uri",
        help="MLflow tracking URI: a server, sqlite:///FILE, file:///DIR (default: MLflow's, env "
        "MLFLOW_TRACKING_URI)",
    )
    ml.add_argument("--experiment", default="flortrace", help="experiment name (default flortrace)")
    ml.add_argument(
        "--into",
        metavar="MLFLOW_RUN_ID",
        help="add the values of one run to this existing MLflow run (such as the one the script logged) "
        "instead of a run of its own",
    )
    for fmt in ("csv", "json", "parquet"):
        one = sub.add_parser(fmt, parents=[common], help=f"a {fmt} file, as flortrace logs --format {fmt}")
        one.add_argument("file")
    return p


def export(argv):
    """``python -m flortrace export FORMAT ...``; returns the exit code."""
    ns = _export_parser().parse_args(argv)
    problem = _export_path_problem(ns)
    if problem:
        print(f"flortrace: error: export {ns.format}: {problem}", file=sys.stderr)
        return 2
    from . import verbs

    settings = config.load({"store": ns.store})
    try:
        if ns.format == "tensorboard":
            return verbs.export_tensorboard(settings, ns.run, ns.name, ns.dir, ns.into)
        if ns.format == "mlflow":
            return verbs.export_mlflow(settings, ns.run, ns.name, ns.tracking_uri, ns.experiment, ns.into)
        return verbs.export_file(settings, ns.run, ns.name, ns.format, ns.file)
    except OSError as exc:
        where = getattr(ns, "file", None) or getattr(ns, "dir", None)
        print(
            f"flortrace: error: export {ns.format}: cannot write {where}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return 2


def _export_path_problem(ns):
    """Why the file or folder to export to cannot be written, checked before the store is read."""
    if hasattr(ns, "file"):
        return output_problem(ns.file)
    if ns.format != "tensorboard":
        return None
    if (ns.dir is None) == (ns.into is None):
        return "give a log folder DIR, or --into RUN_DIR (one of them)"
    if ns.into is not None:
        if not os.path.isdir(ns.into):
            return f"--into {ns.into}: there is no such folder (the script's TensorBoard run folder)"
        if ns.run is not None and len(ns.run) > 1:
            return "--into writes one run: give one --run"
    elif os.path.exists(ns.dir) and not os.path.isdir(ns.dir):
        return f"cannot write into {ns.dir}: it is not a folder"
    return None


VERB_MAINS = {
    "replay": replay,
    "console": console,
    "runs": runs,
    "show": show,
    "logs": logs,
    "export": export,
    "rm": rm,
    "gc": gc,
    "source": source,
    "query": query,
}


def verb_after_options(argv):
    """``flortrace --store DIR show 1``: a verb after flortrace's own options means the verb, with those
    options (it would otherwise record a script named like the verb; run such a script as ./show)."""
    own, _ = split_at_script(argv, RECORD_OPTIONS)
    if own and own[-1] in VERBS and not own[-1].startswith("-") and "-m" not in own[:-1]:
        return [own[-1], *own[:-1], *argv[len(own) :]]
    return argv


def main(argv=None):
    """Run the command line; returns the exit code (130: the script was interrupted, see exit_process)."""
    argv = verb_after_options(list(sys.argv[1:] if argv is None else argv))
    if argv and argv[0] in VERBS:
        verb = argv[0]
        if verb not in ("replay", "console") and hasattr(sys.stdout, "reconfigure"):  # not the script's
            sys.stdout.reconfigure(errors="backslashreplace")  # names from undecodable file names still print
        return _guard(verb, lambda: VERB_MAINS[verb](argv[1:]))
    return record_main(argv)


def entry():
    """The ``flortrace`` console script."""
    from .runner import exit_process

    try:
        code = main()
        if sys.stdout is not None and not sys.stdout.closed:  # the script may have dropped its stdout
            sys.stdout.flush()
    except BrokenPipeError:  # `flortrace logs | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 1
    exit_process(code)
