"""Problems found in a command line or config, reported together in one exception."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong, the flags involved, and (in the message) what would be right."""

    message: str
    flags: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.message


class ArgumentProblems(ValueError):
    """Every problem found in one pass over the arguments; raised instead of stopping at the first."""

    def __init__(self, problems: list[Problem], title: str = "invalid arguments"):
        self.problems = list(problems)
        self.title = title
        super().__init__(self.render())

    def render(self) -> str:
        count = len(self.problems)
        head = f"{self.title}: {count} problem{'s' if count != 1 else ''}"
        return head + "".join(f"\n  - {p.message}" for p in self.problems)


class ProblemList:
    """Collects problems; ``raise_if_any`` raises them all at once."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, message: str, *flags: str) -> None:
        self.problems.append(Problem(message, tuple(flags)))

    def raise_if_any(self, title: str = "invalid arguments") -> None:
        if self.problems:
            raise ArgumentProblems(self.problems, title)
