"""The one error a report request raises for bad input: an unknown run or study, too many runs, a run with
nothing to export. It carries the user-facing message and what to do (the CLI exits with code 2)."""

from __future__ import annotations

from engine.errors import UserError


class ReportError(UserError, ValueError):
    def __str__(self) -> str:
        return self.message
