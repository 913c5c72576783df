"""The error tree, and the exit code each branch maps to.

::

    PreprocgateError            anything preprocgate reports as one line, without a traceback
    ├── UserError               the user can fix it by editing a spec or a command line      exit 2
    │   ├── SpecError           a gate spec is invalid (file, key path and line in each issue)
    │   └── UnknownNameError    a registry lookup failed (carries a did-you-mean hint)
    └── RunError                the spec is valid but running it failed (missing extra,       exit 3
        │                       unavailable device, a variant that raised)
        └── PublishError        posting a report failed: no token, no pull request to comment
                                on, or the forge refused (its message says why and what to do)

Anything else raised is a bug in preprocgate: it is never swallowed as a user mistake and keeps its traceback.

A failed gate is not an error: it is a result whose ``passed`` is False (exit 1).
"""

from __future__ import annotations

from dataclasses import dataclass

EXIT_PASSED = 0
EXIT_GATE_FAILED = 1
EXIT_USAGE = 2
EXIT_RUNTIME = 3


class PreprocgateError(Exception):
    """Base of every error printed as one line; ``exit_code`` is what the CLI exits with."""

    exit_code: int = EXIT_RUNTIME

    def prefixed(self, where: str) -> PreprocgateError:
        """The same error (same class, same exit code) with ``where: `` in front of its message.

        Copies instead of re-constructing: subclasses take other constructor arguments (a package and an
        extra, a list of spec issues), so ``type(exc)(message)`` cannot rebuild them.
        """
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.args = (f"{where}: {self}",)
        return clone


class UserError(PreprocgateError):
    exit_code = EXIT_USAGE


class UnknownNameError(UserError, KeyError):
    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        import difflib

        hint = difflib.get_close_matches(name, known, n=1)
        message = f"unknown {kind} {name!r}"
        message += f"; did you mean {hint[0]!r}?" if hint else f"; known: {', '.join(sorted(known)) or 'none'}"
        super().__init__(message)
        self.kind, self.name, self.known = kind, name, known

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class SpecIssue:
    """One problem in a spec: where it is (file, line, dotted key path) and what is wrong."""

    file: str
    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path or '<root>'}: {self.message}"


class SpecError(UserError):
    def __init__(self, issues: list[SpecIssue]) -> None:
        super().__init__("\n".join(str(i) for i in issues))
        self.issues = issues


class RunError(PreprocgateError):
    exit_code = EXIT_RUNTIME


class MissingDependencyError(RunError):
    def __init__(self, package: str, extra: str) -> None:
        target = f"'preprocgate[{extra}]'" if extra else package
        super().__init__(f"{package} is not installed; run: pip install {target}")


class PublishError(RunError):
    """The report could not reach the pull request; the message never contains the token."""
