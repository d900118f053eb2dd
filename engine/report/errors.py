"""The one error a report request raises for bad input: an unknown run or study, too many runs, a run with
nothing to export. It carries the user-facing message and what to do (the CLI exits with code 2)."""

from __future__ import annotations


class ReportError(ValueError):
    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message
