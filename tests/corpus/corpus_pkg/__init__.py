"""A package imported by corpus scripts and run with -m."""

from .util import normalize

__all__ = ["normalize"]
