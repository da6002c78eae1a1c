"""Driftline: the command line and the pieces that tie the packages into one product."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("driftline")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
