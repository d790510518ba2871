"""Imported from app_dir/__main__.py through sys.path[0]."""


def running_max(values):
    out, best = [], None
    for v in values:
        best = v if best is None or v > best else best
        out.append(best)
    return out
