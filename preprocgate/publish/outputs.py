"""What a CI job reads back after the gates ran: GitHub's step outputs and GitLab's dotenv report.

GitHub: ``$GITHUB_OUTPUT`` is appended to (other steps of the job write theirs there too), one ``name=value``
line per output, or ``name<<DELIMITER`` blocks for values holding several lines. GitLab: a dotenv file
(``artifacts:reports:dotenv``) allows no multi-line values, so lists are joined with spaces there.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path

from preprocgate.errors import PublishError
from preprocgate.fileio import atomic_write_text

Outputs = Mapping[str, str | Sequence[str]]


def _lines(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def append_github_outputs(path: Path, outputs: Outputs) -> None:
    """Append ``outputs`` in GitHub's format; a list becomes one value, one item a line."""
    parts = []
    for name, value in outputs.items():
        lines = _lines(value)
        if len(lines) <= 1 and not any("\n" in line or "\r" in line for line in lines):
            parts.append(f"{name}={''.join(lines)}\n")
            continue
        delimiter = f"preprocgate_{secrets.token_hex(8)}"  # random: no value can end the block early
        parts.append(f"{name}<<{delimiter}\n" + "".join(f"{line}\n" for line in lines) + f"{delimiter}\n")
    try:
        with path.open("a", encoding="utf-8", newline="\n") as f:
            f.write("".join(parts))
    except OSError as exc:
        raise PublishError(f"cannot append to the step outputs {path}: {exc}") from exc


def write_dotenv(path: Path, outputs: Outputs, prefix: str = "PREPROCGATE_") -> None:
    """Write ``outputs`` as ``PREFIX_NAME=value`` lines (names upper-cased, ``-`` as ``_``), replacing the file."""
    lines = []
    for name, value in outputs.items():
        joined = " ".join(_lines(value))
        if "\n" in joined or "\r" in joined:
            raise PublishError(f"output {name} holds a line break, which a dotenv file cannot carry")
        lines.append(f"{prefix}{name.upper().replace('-', '_')}={joined}\n")
    atomic_write_text(path, "".join(lines))
