"""The output tap: per-epoch segments of what the script prints, with the streams left the same objects."""

from __future__ import annotations

import io
import sys

from flortrace.runtime.output import HEAD, OutputTap


class Stream(io.TextIOWrapper):
    pass


def test_writes_are_kept_by_key_and_the_stream_stays_the_same_object(monkeypatch):
    stream = Stream(io.BytesIO(), encoding="utf-8")
    monkeypatch.setattr(sys, "stdout", stream)
    key = [(0, -1)]
    tap = OutputTap(lambda: key[0])
    tap.install()
    print("epoch 0")
    key[0] = (0, 3)
    print("in block")
    key[0] = None
    print("outside")
    tap.uninstall()
    assert sys.stdout is stream and "write" not in stream.__dict__
    got = tap.pop(0)
    assert got[(-1, "stdout")].text == "epoch 0\n" and got[(3, "stdout")].text == "in block\n"
    assert tap.pop(0) == {}
    stream.flush()
    assert stream.buffer.getvalue() == b"epoch 0\nin block\noutside\n"


def test_long_output_keeps_a_head_and_checks_all_of_it(monkeypatch):
    stream = Stream(io.BytesIO(), encoding="utf-8")
    monkeypatch.setattr(sys, "stdout", stream)
    tap = OutputTap(lambda: (1, -1))
    tap.install()
    print("x" * (HEAD * 3))
    tap.uninstall()
    segment = tap.pop(1)[(-1, "stdout")]
    assert len(segment.text) == HEAD and segment.nbytes == HEAD * 3 + 1


def test_a_stream_replaced_by_the_script_is_left_alone(monkeypatch):
    class Logger:
        __slots__ = ()

        def write(self, text):
            return len(text)

    monkeypatch.setattr(sys, "stdout", Logger())
    tap = OutputTap(lambda: (0, -1))
    tap.install()
    print("hi")
    tap.uninstall()
    assert tap.pop(0) == {}
