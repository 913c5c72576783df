"""Render a GateResult as Markdown fit for a pull-request comment, and write the report files atomically.

Every value a template prints is Markdown-escaped unless a formatting filter marked it safe, so user strings
(gate names, descriptions, file names) cannot break tables or inject HTML. A report longer than GitHub's
comment limit drops its per-probe details first, then is cut at a section boundary, with a note saying so.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jinja2

from preprocgate.errors import RunError
from preprocgate.fileio import atomic_write_text
from preprocgate.functional.ulp import ULP_BIN_LABELS
from preprocgate.redact import redact
from preprocgate.results import GateResult

MAX_CHARS = 65_536
_TEMPLATES = Path(__file__).parent / "templates"
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
_MD_LINE_START = re.compile(r"^(\s*)([#+=>-]|\d+(?=[.)]))")


class Safe(str):
    """Text already fit for Markdown output."""


def md_escape(value: Any) -> str:
    if isinstance(value, Safe):
        return value
    if value is None:
        return "—"
    text = str(value).replace("\r", " ").replace("\n", " ")
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_SPECIAL.sub(r"\\\1", text)
    return _MD_LINE_START.sub(_escape_line_start, text)


def _escape_line_start(m: re.Match[str]) -> str:
    """``# x`` → ``\\# x``; ``1. x`` → ``1\\. x`` (a backslash before a digit would be shown)."""
    marker = m.group(2)
    return m.group(1) + (marker + "\\" if marker[0].isdigit() else "\\" + marker)


def md_code(value: Any) -> Safe:
    """An inline code span; its content is shown verbatim (only ``|`` needs escaping inside tables)."""
    text = str(value).replace("\r", " ").replace("\n", " ").replace("|", "\\|")
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return Safe(f"{fence}{pad}{text}{pad}{fence}")


def fmt_float(value: float | None, digits: int = 2) -> Safe:
    """Scientific notation for parity numbers, where magnitudes span 1e-8 to 1e-1."""
    if value is None:
        return Safe("—")
    if value == 0:
        return Safe("0")
    if math.isnan(value):
        return Safe("NaN")
    return Safe(f"{value:.{digits}e}")


def fmt_number(value: float | int, spec: str = "g") -> Safe:
    """A number in a format spec ("+.4f", ".1f", "g"): digits and signs need no escaping."""
    return Safe(format(value, spec))


def fmt_seconds(value: float) -> Safe:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if value >= scale:
            return Safe(f"{value / scale:.3g} {unit}")
    return Safe(f"{value * 1e9:.3g} ns")


def fmt_pct(value: float) -> Safe:
    return Safe(f"{100 * value:.4f}%".replace("100.0000%", "100%"))


def mark(passed: bool) -> Safe:
    return Safe("✅" if passed else "❌")


def _environment(loader: jinja2.BaseLoader) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=loader,
        finalize=md_escape,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(
        code=md_code, num=fmt_number, sci=fmt_float, seconds=fmt_seconds, pct=fmt_pct, mark=mark, safe_md=Safe
    )
    env.globals["ULP_BINS"] = ULP_BIN_LABELS
    return env


def _template(path: Path | None) -> jinja2.Template:
    if path is None:
        return _environment(jinja2.FileSystemLoader(_TEMPLATES)).get_template("report.md.j2")
    return _environment(jinja2.FileSystemLoader(path.parent)).get_template(path.name)


TEMPLATE_NAMES = frozenset({"r", "details", "json_name"})  # what render_markdown passes a template


def template_problem(path: Path) -> str | None:
    """Why a user template cannot render (syntax, a name it is never given), found when the spec loads."""
    import jinja2.meta

    env = _environment(jinja2.FileSystemLoader(path.parent))
    try:
        source = path.read_text(encoding="utf-8")
        tree = env.parse(source, path.name)
    except (OSError, UnicodeDecodeError) as exc:
        return f"cannot read {path}: {exc}"
    except jinja2.TemplateSyntaxError as exc:
        return f"template syntax error at line {exc.lineno}: {exc.message}"
    unknown = jinja2.meta.find_undeclared_variables(tree) - TEMPLATE_NAMES - set(env.globals)
    if unknown:
        given = ", ".join(sorted(TEMPLATE_NAMES))
        return f"template uses undefined name(s) {', '.join(sorted(unknown))}; it is given {given}"
    return None


def render_markdown(result: GateResult, template: Path | None = None, json_name: str | None = None) -> str:
    """The report, at most MAX_CHARS characters. A user template failing while rendering (an attribute the
    result lacks) is a one-line error naming the template."""
    try:
        tpl = _template(template)
        json_name = json_name or f"{result.gate}.json"
        text = tpl.render(r=result, details=True, json_name=json_name)
    except jinja2.TemplateError as exc:
        if template is None:
            raise
        raise RunError(f"report.template {template}: {exc}") from exc
    if len(text) <= MAX_CHARS:
        return text
    text = tpl.render(r=result, details=False, json_name=json_name)
    if len(text) <= MAX_CHARS:
        return text
    note = f"\n\n> Report cut to {MAX_CHARS} characters; the full data is in `{md_escape(json_name)}`.\n"
    return truncate_markdown(text, MAX_CHARS, note)


def truncate_markdown(text: str, limit: int, note: str) -> str:
    """``text`` if it fits in ``limit`` characters, else cut before the last ``##``/``###`` heading that fits,
    with ``note`` appended: a reader sees whole sections and is told where the rest is, never a table cut
    mid-row. Without a heading in reach the text is cut at the limit."""
    if len(text) <= limit:
        return text
    cut = text[: limit - len(note)]
    boundary = max(cut.rfind("\n## "), cut.rfind("\n### "))
    return (cut[:boundary] if boundary > 0 else cut) + note


def write_reports(
    result: GateResult, output_dir: Path, template: Path | None = None, secrets: Sequence[str] = ()
) -> tuple[Path, Path]:
    """Write ``<gate>.md`` and ``<gate>.json``; each is replaced atomically. ``secrets`` (values the spec read
    from variables named like secrets) are masked in both, whatever echoed them."""
    md_path = output_dir / f"{result.gate}.md"
    json_path = output_dir / f"{result.gate}.json"
    markdown = render_markdown(result, template, json_path.name)
    data = json.dumps(result.to_json(), indent=2, sort_keys=True, allow_nan=True) + "\n"
    atomic_write_text(json_path, redact(data, secrets) if secrets else data)
    atomic_write_text(md_path, redact(markdown, secrets) if secrets else markdown)
    return md_path, json_path
