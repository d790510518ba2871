# -*- coding: utf-8 -*-
"""Source-level features: future annotations, match in loops, unicode names, type hints, f-strings."""

from __future__ import annotations

from typing import NamedTuple


class Sample(NamedTuple):
    kind: str
    value: int


def describe(items: list[Sample]) -> list[str]:
    out: list[str] = []
    for item in items:
        match item:
            case Sample(kind="int", value=v) if v < 0:
                out.append(f"negative {v}")
            case Sample(kind="int", value=v):
                out.append(f"int {v:>3}")
            case Sample(kind=k):
                out.append(f"other {k!r}")
    return out


def größe(ε: float = 0.5) -> int:
    schritte = 0
    while ε < 10:
        ε *= 2
        schritte += 1
    return schritte


print(describe([Sample("int", -2), Sample("int", 7), Sample("str", 0)]))
print(größe(), größe.__annotations__, describe.__annotations__)
print("annotations are strings:", all(isinstance(v, str) for v in describe.__annotations__.values()))
