"""The replay's progress line on stderr: epochs done of all, the one running, how many were restored and
executed, time spent and the time left.

Restored epochs print nothing, so without it a long replay looks like retraining. The line is shown only
when stderr is a terminal and the replay is not quiet (``-q``), and only in a replay that runs the script
itself (not in a parallel replay's parent or workers). It is drawn at epoch boundaries; whatever the
script or flortrace writes in between clears it first, so output never lands on the line. The bar is
tqdm's when tqdm is installed (``flortrace[progress]``), else a plain one. The time left is the plan's
estimate (recorded timings) of what is still to run, scaled by how the executed epochs compared with theirs.
"""

from __future__ import annotations

import shutil
import sys
from contextlib import contextmanager
from time import perf_counter

CLEAR = "\r\x1b[K"


class Silent:
    """No line: what the replayer holds when progress is off."""

    def epoch_started(self, epoch):
        pass

    def epoch_ended(self, epoch):
        pass


SILENT = Silent()


@contextmanager
def shown(replayer, enabled, stream=None):
    """Show the progress of ``replayer`` on ``stream`` (stderr) while the block runs, when ``enabled``
    and the stream is a terminal."""
    stream = stream or sys.stderr
    if not enabled or not _isatty(stream):
        yield
        return
    line = Progress(replayer.plan, stream)
    replayer.progress = line
    try:
        yield
    finally:
        replayer.progress = SILENT
        line.close()


class Progress:
    def __init__(self, plan, stream):
        self.stream = stream
        self.total = len(plan.epoch_seconds)
        self.estimate = {epoch: seconds for epoch, _, seconds in plan.steps()}
        self.started = perf_counter()
        self.done = set()
        self.executed, self.restored = 0, 0
        self.spent = self.expected = 0.0  # of the executed epochs: seconds taken, seconds estimated
        self.running = None  # (epoch, when it started)
        self.visible = False
        self._wrapped = []
        self._render = _tqdm_render() or _plain_render

    # ---- what the replayer calls --------------------------------------------------------------
    def epoch_started(self, epoch):
        for skipped in range(epoch):  # the replayer jumped over these: restored from a checkpoint
            if skipped not in self.done:
                self.done.add(skipped)
                self.restored += 1
        self.running = (epoch, perf_counter())
        self.draw()

    def epoch_ended(self, epoch):
        if self.running is not None and self.running[0] == epoch:
            self.spent += perf_counter() - self.running[1]
            self.expected += self.estimate.get(epoch, 0.0)
        self.running = None
        if epoch not in self.done:
            self.done.add(epoch)
            self.executed += 1
        self.draw()

    # ---- the line -------------------------------------------------------------------------------
    def left(self):
        """Seconds still to go: the estimate of the epochs not done, as fast as the executed ones ran."""
        rest = sum(s for epoch, s in self.estimate.items() if epoch not in self.done)
        if self.running is not None:
            rest -= min(perf_counter() - self.running[1], self.estimate.get(self.running[0], 0.0))
        scale = self.spent / self.expected if self.expected > 0 else 1.0
        return max(rest, 0.0) * scale

    def status(self):
        done = f"{self.restored} restored, {self.executed} executed"
        return done if self.running is None else f"epoch {self.running[0]} running, {done}"

    def draw(self):
        self._wrap()
        width = shutil.get_terminal_size((80, 24)).columns - 1
        elapsed = perf_counter() - self.started
        line = self._render(len(self.done), self.total, elapsed, self.left(), width, self.status())
        self._write(CLEAR + line[:width])
        self.visible = True

    def hide(self):
        if self.visible:
            self.visible = False
            self._write(CLEAR)

    def close(self):
        self.hide()
        for stream, ours, previous in reversed(self._wrapped):
            if stream.__dict__.get("write") is ours:
                if previous is None:
                    del stream.__dict__["write"]
                else:
                    stream.__dict__["write"] = previous
        self._wrapped = []

    def _write(self, text):
        """Straight to the terminal: not through the wrappers below, nor through what replay records of
        the script's output."""
        type(self.stream).write(self.stream, text)
        self.stream.flush()

    def _wrap(self):
        """Clear the line before anything else writes to a terminal stream. Done at the first draw, after
        the replayer's own output tap is in place (it wraps ``write`` the same way, and would not wrap a
        stream whose ``write`` something else replaced before it)."""
        if self._wrapped:
            return
        for stream in dict.fromkeys((sys.stdout, sys.stderr, self.stream)):
            space = getattr(stream, "__dict__", None)
            if space is None or not _isatty(stream):
                continue
            previous = space.get("write")
            inner = previous or type(stream).write.__get__(stream)

            def write(text, _inner=inner):
                if self.visible and text:
                    self.hide()
                return _inner(text)

            space["write"] = write
            self._wrapped.append((stream, write, previous))


def _interval(seconds):
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return (f"{hours}:" if hours else "") + f"{rest // 60:02d}:{rest % 60:02d}"


def _plain_render(done, total, elapsed, left, width, status):
    cells = 10
    filled = cells * done // total if total else cells
    bar = "#" * filled + "." * (cells - filled)
    return f"flortrace replay [{bar}] {done}/{total} epochs [{_interval(elapsed)}<{_interval(left)}] {status}"


def _tqdm_render():
    """tqdm's bar (it fits the bar to the width), when tqdm is installed."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None

    def render(done, total, elapsed, left, width, status):
        tail = f"{{n_fmt}}/{{total_fmt}} epochs [{{elapsed}}<{_interval(left)}] {_braces(status)}"
        return tqdm.format_meter(
            done,
            total,
            elapsed,
            ncols=width,
            bar_format="flortrace replay {percentage:3.0f}%|{bar:10}| " + tail,
        )

    return render


def _braces(text):
    return text.replace("{", "{{").replace("}", "}}")


def _isatty(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
