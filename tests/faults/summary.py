"""The fault suite's ledger: each test adds a row, the terminal summary prints the table."""

from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = ["LEDGER", "Ledger", "Row"]


@dataclass(frozen=True)
class Row:
    """What one fault test did and found."""

    test: str
    trials: int
    faults: int
    expected: int
    arrived: int
    duplicated: int
    lost: int = 0        # sent but not on the platform, stuck, or never announced
    failed: int = 0      # given up, with a reason
    unrecorded: int = 0  # on a platform, but the store has the delivery superseded or failed


class Ledger:
    """Rows in the order the tests ran."""

    def __init__(self) -> None:
        self.rows: list[Row] = []

    def add(self, row: Row) -> None:
        self.rows.append(row)

    def table(self) -> list[str]:
        """The rows and their total as aligned text lines; no lines when nothing ran."""
        if not self.rows:
            return []
        names = [f.name for f in fields(Row)]
        total = Row("total", *(sum(getattr(r, n) for r in self.rows) for n in names[1:]))
        cells = [names] + [[str(getattr(r, n)) for n in names] for r in [*self.rows, total]]
        widths = [max(len(row[i]) for row in cells) for i in range(len(names))]

        def line(row: list[str]) -> str:
            first = row[0].ljust(widths[0])
            return "  ".join([first, *(c.rjust(w) for c, w in zip(row[1:], widths[1:]))])

        rule = "-" * len(line(cells[0]))
        return [line(cells[0]), rule, *(line(r) for r in cells[1:-1]), rule, line(cells[-1])]


LEDGER = Ledger()
