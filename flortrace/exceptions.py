"""flortrace's own expected failures, in one hierarchy: the command line (cli.py) reports any of them in one
``flortrace: error:`` line with exit code 2; anything else is a flortrace bug (exit 1)."""

from __future__ import annotations


class FlortraceError(Exception):
    """A failure the user can act on: bad input, a store that cannot be used, a missing package."""


class ConfigError(FlortraceError):
    """A setting has no valid value (a flag, a FLORTRACE_* variable, [tool.flortrace])."""


class StoreError(FlortraceError):
    """A problem with the store that the user can act on; the message says what and where."""


class CorruptBlob(StoreError):
    """A blob is missing, truncated or does not match its digest."""


class SpecError(FlortraceError, ValueError):
    """An epoch spec (--epochs, the console's watch) that selects nothing or does not parse."""


class RunsError(FlortraceError):
    """A --runs spec or --where expression that does not parse."""


class PlanError(FlortraceError):
    """The edit cannot be replayed safely (the message says which line and why)."""


class RayUnavailable(FlortraceError):
    """--backend ray without a usable Ray."""


class ExportError(FlortraceError):
    """The export cannot be done as asked; the message says why."""


class UsageError(FlortraceError):
    """Input the parser let through that the store shows to be wrong (an epoch the run does not have):
    reported like a bad option, with the verb's --help."""
