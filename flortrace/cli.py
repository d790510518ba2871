"""Command line: ``flortrace [options] script.py args`` records; verbs replay, inspect and manage runs."""

from __future__ import annotations

import argparse
import os
import sys

from . import __version__, config

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
    from .recording import record

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
            }
        )
    except config.ConfigError as exc:
        return _usage(str(exc))
    settings["name"] = ns.name
    try:  # not through _guard: the script runs on top of these frames, fewer is closer to `python script`
        return record(target, args, settings, module=module)
    except _expected_errors() as exc:
        return _failed(exc)


def _usage(message):
    print(f"flortrace: error: {message}\n(see python -m flortrace --help)", file=sys.stderr)
    return 2


def _expected_errors():
    """flortrace's own expected failures: reported in one clear line with exit code 2."""
    from .replay.epochs import SpecError
    from .replay.raybackend import RayUnavailable
    from .store import StoreError

    return StoreError, config.ConfigError, SpecError, RayUnavailable


def _failed(exc):
    print(f"flortrace: error: {exc}", file=sys.stderr)
    return 2


def _guard(fn):
    """Run ``fn``, turning flortrace's own failures into one clear line: 2 for what the user can act on (bad
    input, the store), 1 for a flortrace bug (FLORTRACE_DEBUG=1 shows its traceback), never a traceback."""
    try:
        return fn()
    except _expected_errors() as exc:
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
        from . import verbs

        return verbs.main(argv[0], argv[1:], _guard)
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
