"""Errors the user sees: one line naming the file, the key and what is wrong.

Every stage raises `DeriveError` (or a subclass) for bad input; the CLI prints
`str(error)` and exits with code 2.  Nothing else should escape to the user.
"""
from __future__ import annotations


class DeriveError(Exception):
    """Bad input.  `where` is "file: key" (either may be empty); `what` says what is wrong."""

    def __init__(self, what: str, *, file: str = "", key: str = "", column: int | None = None):
        self.what = what
        self.file = file
        self.key = key
        self.column = column
        super().__init__(self.line())

    def line(self) -> str:
        parts = [p for p in (self.file, self.key) if p]
        where = ": ".join(parts)
        col = f" (column {self.column})" if self.column is not None else ""
        text = f"{where}{col}: {self.what}" if where else self.what
        return " ".join(text.split())  # always one line

    def located(self, *, file: str | None = None, key: str | None = None) -> "DeriveError":
        """The same error with a file and/or key filled in where they were missing."""
        return type(self)(
            self.what,
            file=self.file or (file or ""),
            key=self.key or (key or ""),
            column=self.column,
        )


class LimitError(DeriveError):
    """A documented resource limit was hit (the message names it)."""
