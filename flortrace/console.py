"""The replay console: pdb, plus time travel over the epochs of a recorded run.

``python -m flortrace console train.py`` runs the (possibly edited) script in replay mode in one warm process:
its prefix runs normally, and at the main loop the time-travel session (runtime/timetravel.py) stops at the
top of epoch 0 and hands the frame to this command interpreter. It is ``pdb.Pdb`` with the same verbs
(``p``, ``l``, ``w``, ``b``, ``n``, ``s``, ``c``, ``q``, ...) plus ``epoch N [step S]``, ``epochs``, ``logs``
and ``watch``.
During ``python -m flortrace replay``, ``flortrace.breakpoint()`` and ``breakpoint()`` open it without time
travel. Commands come from a terminal (readline, completion) or a pipe (echoed after the prompt; EOF quits).
"""

from __future__ import annotations

import bdb
import math
import pdb
import re
import runpy
import signal
import sys
import traceback

from . import runner
from .replay.epochs import SpecError, parse
from .runtime.logvalues import log_row
from .runtime.timetravel import TimeTravel, TravelError

PROMPT = "(flortrace) "
SPARKS = "▁▂▃▄▅▆▇█"
LOG_ROWS = 500  # rows `logs NAME` prints before pointing at `python -m flortrace logs`
_SPEC = re.compile(r"-?\d*(:-?\d*){0,2}(,-?\d*(:-?\d*){0,2})*")


class Quit(SystemExit):
    """The user quit the console: the script stops here, cleanly (exit code 0, no traceback)."""


class _Echo:
    """Reads commands from a pipe and echoes them after the prompt, so a transcript reads like a session."""

    def __init__(self, stream, out):
        self.stream, self.out = stream, out

    def readline(self):
        line = self.stream.readline()
        if line:
            self.out.write(line if line.endswith("\n") else line + "\n")
        return line


class Console(pdb.Pdb):
    """pdb over a replay session; with a TimeTravel session it also drives the main loop (its driver)."""

    def __init__(self, session, stdin=None, stdout=None):
        stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
        self.tty = _isatty(stdin)
        super().__init__(
            stdin=stdin if self.tty else _Echo(stdin, stdout),
            stdout=stdout,
            skip=["flortrace", "flortrace.*", "bdb", "pdb"],
            readrc=False,
        )
        self.use_rawinput = self.tty and stdin is sys.stdin
        self.prompt = PROMPT
        self.session = session
        self.travel = isinstance(session, TimeTravel)
        self.reset()
        self._banner = None  # printed at the next stop, before pdb's "> file(line)"
        self._shown = None  # (epoch, step) the last banner named
        self._watch = None  # (expression, {epoch: (ok, value)}) shown at the next stop

    # ---- what the time-travel session calls -----------------------------------------------------
    def stop(self, frame, banner):
        """An interactive stop at ``frame``, called from running code (not from a trace event)."""
        sys.settrace(None)  # pdb's own frames must not be traced while it talks to the user
        self._enter(frame)
        self._banner = banner
        self.interaction(frame, None)
        self._resume(frame)

    def stop_at_next_line(self, frame, banner):
        """Stop when ``frame`` reaches its next line (the first line of a loop body about to run)."""
        self._enter(frame)
        self._banner = banner
        self._set_stopinfo(frame, None)
        self._trace_from(frame)

    def break_at(self, frame):
        """``flortrace.breakpoint()`` or ``breakpoint()`` called from ``frame``."""
        epoch, step, loop_id = self.session.position()
        self.stop(
            frame, "breakpoint" + (f" at {_position(epoch, step, loop_id)}" if epoch is not None else "")
        )

    def wants_live(self, frame):
        """True when a block in ``frame`` must run rather than be restored: breakpoints, or stepping in it."""
        if self.breaks:
            return True
        if self.botframe is None or self.stoplineno == -1:
            return False
        return self.stopframe is None or self.stopframe is frame

    # ---- tracing ----------------------------------------------------------------------------------
    def _enter(self, frame):
        if self.botframe is None:
            self.botframe = _script_frame(frame)

    def _resume(self, frame):
        """After a stop made outside a trace event, trace again if the command asks to stop somewhere: at a
        breakpoint (also where a jump runs its line), or by stepping (never into the travel itself)."""
        if self.quitting:
            raise Quit(0)
        if not self.breaks and (getattr(self.session, "heading", False) or self.stoplineno == -1):
            return
        self._trace_from(frame)

    def _trace_from(self, frame):
        f = frame
        while f is not None:
            f.f_trace = self.trace_dispatch
            if f is self.botframe:
                break
            f = f.f_back
        sys.settrace(self.trace_dispatch)

    def _go(self):
        """Let the session travel (its own stops end it) as ``c`` lets the script run: Ctrl-C stops it at the
        next line of the script, and breakpoints stop it where a jump runs a line they are on."""
        if not self.nosigint:
            try:
                pdb.Pdb._previous_sigint_handler = signal.signal(signal.SIGINT, self.sigint_handler)
            except ValueError:  # not the main thread
                pass
        if self.breaks:
            self.set_continue()
        else:
            self._detach()
        return 1

    def _detach(self):
        """Stop tracing: the session travels and stops by itself."""
        self._set_stopinfo(self.botframe, None, -1)
        sys.settrace(None)
        for f, _ in self.stack:
            f.f_trace = None

    def trace_dispatch(self, frame, event, arg):
        try:
            return super().trace_dispatch(frame, event, arg)
        except bdb.BdbQuit:
            raise Quit(0) from None

    def set_trace(self, frame=None, *args, **kwargs):
        """Start stepping at ``frame`` (pdb's Ctrl-C handler calls this) without moving the bottom frame.
        Stepping is set before tracing starts: the other way round, the debugger stopped in its own code."""
        frame = frame or sys._getframe().f_back
        self._enter(frame)
        self.set_step()
        self._trace_from(frame)

    # ---- stops ------------------------------------------------------------------------------------
    def interaction(self, frame, tb):
        epoch, step, loop_id = self.session.position()
        banner, self._banner = self._banner, None
        if banner is None and epoch is not None and (epoch, step) != self._shown:
            banner = _position(epoch, step, loop_id)
        destination = getattr(self.session, "destination", None)
        if destination is not None and banner is not None:
            banner += f" (on the way to epoch {destination}: `c` goes on, `epoch N` goes elsewhere)"
        self._shown = (epoch, step)
        if self._watch is not None:
            self._show_watch()
        if banner:
            self.message(f"flortrace: {banner}")
        super().interaction(frame, tb)

    def _current_epoch(self):
        if self.travel:
            return self.session.current_epoch()
        return self.session.epoch

    # ---- time travel ------------------------------------------------------------------------------
    def _can_travel(self):
        if not self.travel:
            self.error("time travel needs `python -m flortrace console`; here: inspect, step, continue")
        return self.travel

    def do_epoch(self, arg):
        """epoch N [step S]
        Travel to the top of epoch N: the state after epoch N-1, with the loop variable already bound to
        epoch N's element. Restores the nearest checkpoint before N (or the state before the loop) and
        replays the epochs in between, restoring blocks from their memos; going back works too. With
        "step S", run epoch N's first block from there and stop at the top of its step S. -1 is the
        last epoch. Alias: goto.
        """
        if not self._can_travel():
            return None
        words = arg.split()
        if len(words) not in (1, 3) or (len(words) == 3 and words[1] != "step"):
            self.error("usage: epoch N [step S]")
            return None
        try:
            epoch = int(words[0])
            step = int(words[2]) if len(words) == 3 else None
        except ValueError:
            self.error("usage: epoch N [step S] (N and S are numbers)")
            return None
        if epoch < 0:
            epoch += self.session.epoch_count
        try:
            self.session.goto(epoch, step)
        except TravelError as exc:
            self.error(str(exc))
            return None
        return self._go()

    do_goto = do_epoch

    def do_watch(self, arg):
        """watch EXPR [SPEC]
        Evaluate EXPR at the top of each selected epoch (SPEC as for --epochs: 7, 2:5, ::10, 0,3,9;
        default all), print the values and a sparkline, and save them as replay logs named EXPR
        (see `logs EXPR` and python -m flortrace logs). Stops at the top of the last selected epoch.
        """
        if not self._can_travel():
            return None
        try:
            expr, epochs = self._parse_watch(arg.strip())
        except SyntaxError as exc:
            self.error(f"watch: {_format_exc(exc)}")
            return None
        except (SpecError, ValueError) as exc:
            self.error(str(exc))
            return None
        code = compile(expr, "<watch>", "eval")
        results = {}

        def visit(epoch, frame):
            from . import state

            rng = state.capture_rng()
            try:
                results[epoch] = (True, eval(code, frame.f_globals, frame.f_locals))
            except Exception as exc:
                results[epoch] = (False, _format_exc(exc))
            finally:
                state.restore_rng(rng)  # watching must not change what later epochs draw

        try:
            self.session.sweep(epochs, visit)
        except TravelError as exc:
            self.error(str(exc))
            return None
        self._watch = (expr, results)
        return self._go()

    complete_watch = pdb.Pdb._complete_expression

    def _parse_watch(self, arg):
        if not arg:
            raise ValueError("usage: watch EXPR [SPEC]")
        count = self.session.epoch_count
        head, _, last = arg.rpartition(" ")
        if head.strip() and any(c.isdigit() or c == ":" for c in last) and _SPEC.fullmatch(last):
            try:
                compile(head, "<watch>", "eval")
            except SyntaxError:
                pass
            else:
                return head.strip(), parse(last, count)
        compile(arg, "<watch>", "eval")
        return arg, list(range(count))

    def _show_watch(self):
        expr, results = self._watch
        self._watch = None
        if not results:
            return
        catalog, run = self.session.catalog, self.session.run_id
        saved = {
            r["epoch"]
            for r in catalog.logs(run_ids=[run], names=[expr], origin="replay")
            if r["step"] is None
        }
        rows, numbers, shown = [], [], []
        for epoch, (ok, value) in sorted(results.items()):
            if not ok:
                shown.append((str(epoch), f"*** {value}"))
                numbers.append(None)
                continue
            row = log_row(expr, value, epoch, None, self.session.main_of(epoch).loop_id, None, "replay")
            val = row["value"]
            numeric = row["vtype"] in ("int", "float") and isinstance(val, (int, float))
            numbers.append(val if numeric else None)
            shown.append((str(epoch), _short(value)))
            if epoch not in saved:
                rows.append(row)
        if rows:
            catalog.add_logs(run, rows)
        self._table(["epoch", expr], shown)
        line = sparkline(numbers)
        if line.strip():
            known = [n for n in numbers if n is not None]
            self.message(f"{line}  min {min(known):.6g}, max {max(known):.6g}")
        before = len(saved & results.keys())
        if rows or before:
            self.message(
                f"saved {len(rows)} value(s) as replay logs {expr!r} of run {run}"
                + (f" ({before} saved before)" if before else "")
            )

    # ---- the run's records -----------------------------------------------------------------------
    def do_epochs(self, arg):
        """epochs
        List the recorded epochs: seconds each took, whether a checkpoint follows it, and how many of its
        blocks have memos (replay restores those instead of running them). '>' marks where you are.
        """
        plan = self.session.plan
        blocks, memos = {}, {}
        for epoch, _, _ in plan.block_seconds:
            blocks[epoch] = blocks.get(epoch, 0) + 1
        for epoch, loop_id, _ in plan.memos:
            if not plan.is_probe(loop_id):
                memos[epoch] = memos.get(epoch, 0) + 1
        here = self._current_epoch()
        rows = []
        for epoch, seconds in sorted(plan.epoch_seconds.items()):
            rows.append(
                (
                    ">" if epoch == here else "",
                    str(epoch),
                    f"{seconds:.3f}",
                    "yes" if plan.has_checkpoint(epoch) else "-",
                    f"{memos.get(epoch, 0)}/{blocks.get(epoch, 0)}",
                )
            )
        self._table(["", "epoch", "seconds", "checkpoint", "memos"], rows)
        if plan.probes:
            self.message(f"edited blocks (always run): {', '.join(sorted(plan.probes))}")

    def do_logs(self, arg):
        """logs [NAME]
        Without NAME: the names logged in this run (recorded and replayed) and how many values each has.
        With NAME: its values by epoch and step.
        """
        catalog, run = self.session.catalog, self.session.run_id
        name = arg.strip()
        if not name:
            summary = {}
            for r in catalog.logs(run_ids=[run]):
                entry = summary.setdefault((r["name"], r["origin"]), [0, set()])
                entry[0] += 1
                entry[1].add(r["epoch"])
            if not summary:
                self.message(f"no values logged in run {run}")
                return
            rows = [
                (n, origin, str(count), _epoch_range(epochs))
                for (n, origin), (count, epochs) in summary.items()
            ]
            self._table(["name", "origin", "values", "epochs"], sorted(rows))
            return
        rows = catalog.logs(run_ids=[run], names=[name])
        if not rows:
            self.error(f"no values logged as {name!r} in run {run} (`logs` lists the names)")
            return
        shown = [
            (_dash(r["epoch"]), _dash(r["step"]), _short(r["value"]), r["origin"]) for r in rows[:LOG_ROWS]
        ]
        self._table(["epoch", "step", "value", "origin"], shown)
        if len(rows) > LOG_ROWS:
            self.message(
                f"... {len(rows) - LOG_ROWS} more: python -m flortrace logs --run {run} --name {name!r}"
            )

    def complete_logs(self, text, line, begidx, endidx):
        names = {r["name"] for r in self.session.catalog.logs(run_ids=[self.session.run_id])}
        return sorted(n for n in names if n.startswith(text))

    def do_run(self, arg):
        """run | restart
        Not available in the console: `epoch 0` goes back to the first epoch.
        """
        self.error("the console cannot restart the script; `epoch 0` goes back to the first epoch")

    do_restart = do_run

    def _table(self, columns, rows):
        widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(columns)]
        self.message("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
        for r in rows:
            self.message("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())

    def finish(self, code):
        """The script ended (not by `q`): say so, with what was still pending."""
        if self._watch is not None:
            self._show_watch()
        pending = getattr(self.session, "request", None)
        if pending is not None:
            self.message(f"flortrace: the script ended before reaching epoch {pending.epoch}")
        self.message(f"flortrace: the script finished with exit code {code}")


def _position(epoch, step, loop_id):
    return f"epoch {epoch}" + (f", step {step} of {loop_id}" if step is not None else "")


def sparkline(values):
    """One character per value (None: a space), scaled between the smallest and the largest number."""
    known = [v for v in values if v is not None and math.isfinite(v)]
    if not known:
        return ""
    lo, hi = min(known), max(known)
    out = []
    for v in values:
        if v is None or not math.isfinite(v):
            out.append(" ")
        elif hi == lo:
            out.append(SPARKS[len(SPARKS) // 2])
        else:
            out.append(SPARKS[round((v - lo) / (hi - lo) * (len(SPARKS) - 1))])
    return "".join(out)


def _short(value, limit=80):
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _dash(value):
    return "-" if value is None else str(value)


def _epoch_range(epochs):
    numbered = [e for e in epochs if e is not None]
    if not numbered:
        return "-"
    lo, hi = min(numbered), max(numbered)
    return str(lo) if lo == hi else f"{lo}..{hi}"


def _format_exc(exc):
    return traceback.format_exception_only(type(exc), exc)[-1].strip()


def _isatty(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _script_frame(frame):
    """The frame running the script's own module code (what the runner or runpy execs): the bottom frame."""
    runners = (runner.execute.__code__, runpy._run_code.__code__)
    f = frame
    while f.f_back is not None:
        if f.f_back.f_code in runners:
            return f
        f = f.f_back
    return frame


# ---- breakpoints during replay --------------------------------------------------------------------
class Breaks:
    """The driver of ``python -m flortrace replay``: the first breakpoint opens a console over the session
    (pdb's verbs, no time travel); later ones stop in the same console."""

    def __init__(self, session):
        self.session, self.console = session, None

    def break_at(self, frame):
        if self.console is None:
            self.console = Console(self.session)
        self.console.break_at(frame)
