"""``python -m flortrace``."""

from .cli import entry

entry()
