"""Parse ``--epochs`` specs: ``7``, ``2:5`` (half-open), ``::10``, ``-1`` (last), ``0,3,9`` and mixes."""

from __future__ import annotations


class SpecError(ValueError):
    pass


def parse(spec: str, count: int) -> list[int]:
    """Sorted epochs selected by ``spec`` among ``range(count)``."""
    chosen = set()
    for part in spec.split(","):
        part = part.strip()
        if not part:
            raise SpecError(f"empty item in epoch spec {spec!r}")
        if ":" in part:
            pieces = part.split(":")
            if len(pieces) > 3:
                raise SpecError(f"bad slice {part!r} in epoch spec")
            try:
                bounds = [int(p) if p.strip() else None for p in pieces]
            except ValueError:
                raise SpecError(f"bad slice {part!r}: use numbers like 2:5 or ::10") from None
            if len(bounds) == 3 and bounds[2] == 0:
                raise SpecError("slice step cannot be zero")
            chosen.update(range(count)[slice(*bounds)])
        else:
            try:
                n = int(part)
            except ValueError:
                raise SpecError(
                    f"bad epoch {part!r}: use a number, a slice like 2:5, or a list like 0,3,9"
                ) from None
            if not -count <= n < count:
                raise SpecError(f"epoch {n} out of range: the run has {count} epoch(s) (0..{count - 1})")
            chosen.add(n % count)
    return sorted(chosen)
