"""Exceptions raised by ``detectors``.

Every error caused by the caller's data is a :class:`DetectorInputError`, which is also a
``ValueError`` so that generic handlers still catch it. It names the offending column.
"""

from __future__ import annotations


class DetectorError(Exception):
    """Base class of every error raised by ``detectors``."""


class DetectorInputError(DetectorError, ValueError):
    """The input cannot be used: wrong shape, empty, non-numeric, infinite, mismatched.

    ``column`` names the offending column when the problem belongs to one.
    """

    def __init__(self, message: str, *, column: str | None = None) -> None:
        super().__init__(message if column is None else f"{column}: {message}")
        self.column = column
