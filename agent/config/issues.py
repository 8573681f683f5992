"""What a configuration problem looks like to the person fixing it: file, line, key path, and plain words.

Every problem found in one file is collected into a single `ConfigError`, because an installer on a commune's
roof fixes a file faster with the whole list than by re-running the check once per mistake.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in a configuration file. `line` is 1-based, None when no line applies (missing file)."""

    file: str
    line: int | None
    path: str  # dotted key path such as "cameras[1].zones.cong"; "" for whole-file problems
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(Exception):
    """The configuration cannot be used. `issues` holds every problem found, in file order."""

    def __init__(self, issues: Sequence[ConfigIssue]) -> None:
        self.issues: tuple[ConfigIssue, ...] = tuple(
            sorted(issues, key=lambda i: (i.line if i.line is not None else 0, i.path))
        )
        count = len(self.issues)
        first = str(self.issues[0]) if self.issues else "invalid configuration"
        more = f" (and {count - 1} more)" if count > 1 else ""
        super().__init__(first + more)


def format_path(loc: Sequence[str | int]) -> str:
    """('cameras', 1, 'masks', 0) -> 'cameras[1].masks[0]'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
