"""Errors that reach a person: each names the file, the line and the field."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a file, located so a person can find and fix it."""

    file: str
    line: int | None
    field: str
    text: str
    column: int | None = None

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        field = f" {self.field}:" if self.field else ""
        return f"{where}:{field} {self.text}"


class ConfigError(Exception):
    """Every problem found in a file, reported together."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class UserError(Exception):
    """A command that cannot be carried out, with one sentence saying why."""
