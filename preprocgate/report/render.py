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

from preprocgate import numbers
from preprocgate.errors import RunError
from preprocgate.evaluators.base import METRICS
from preprocgate.fileio import atomic_write_bytes, atomic_write_text
from preprocgate.functional.ulp import ULP_BIN_LABELS
from preprocgate.redact import redact
from preprocgate.report.charts import charts
from preprocgate.report.pictures import index_html
from preprocgate.results import CheckResult, GateResult

MAX_CHARS = 65_536
_TEMPLATES = Path(__file__).parent / "templates"
# ``_`` inside a word emphasises nothing on GitHub or GitLab (x86_64, INTER_LINEAR): only one at a word's edge is
# escaped.
_MD_SPECIAL = re.compile(r"([\\`*\[\]|~]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")
# What would start a block at the beginning of a line: a heading, list item, quote, setext underline or ordered
# item. ``+0.0002`` and ``99.65%`` start nothing, so they stay as written.
_MD_LINE_START = re.compile(r"^(\s*)(#{1,6}(?=\s|$)|[+-](?=\s|$)|-+(?=\s*$)|>|=+(?=\s*$)|\d{1,9}(?=[.)](?:\s|$)))")


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
    return Safe(numbers.percent(value))


def fmt_count(value: int) -> Safe:
    return Safe(numbers.count(value))


def fmt_signed(value: float, digits: int = 4) -> Safe:
    return Safe(numbers.signed(value, digits))


def fmt_fixed(value: float, digits: int = 4) -> Safe:
    return Safe(numbers.fixed(value, digits))


def mark(passed: bool) -> Safe:
    return Safe("✅" if passed else "❌")


def md_link(text: Any, url: str) -> Safe:
    """``[text](url)``; the URL (http(s), checked by the spec) has the characters that would end it encoded."""
    safe_url = "".join(f"%{ord(ch):02X}" if ch in "()<>[]\"' `" or ord(ch) < 32 else ch for ch in url)
    return Safe(f"[{md_escape(text)}]({safe_url})")


KIND_ORDER = ("dataset", "baseline", "parity", "accuracy", "diff", "speed")
KIND_NAMES = {
    "dataset": "dataset",
    "baseline": "stored baseline",
    "parity": "pixel parity",
    "accuracy": "detection accuracy",
    "diff": "detection diff",
    "speed": "speed",
}


def _kind_rank(kind: str) -> int:
    return KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)


def sorted_checks(checks: Sequence[CheckResult]) -> list[CheckResult]:
    """Failed first, then by kind in a fixed order; the engine's order within (spec order) is kept."""
    return sorted(checks, key=lambda c: (c.passed, _kind_rank(c.kind)))


def check_summary(checks: Sequence[CheckResult]) -> list[tuple[bool, str]]:
    """One line per kind of check: ``(passed, "pixel parity: 4 of 4 checks passed, 2 pairs")``."""
    kinds: dict[str, list[CheckResult]] = {}
    for c in sorted(checks, key=lambda c: _kind_rank(c.kind)):
        kinds.setdefault(c.kind, []).append(c)
    lines = []
    for kind, group in kinds.items():
        passed = sum(c.passed for c in group)
        subjects = len({c.subject for c in group})
        what = "checks" if len(group) > 1 else "check"
        of = f"{passed} of {len(group)} {what} passed" if passed < len(group) else f"{len(group)} {what} passed"
        if kind in ("parity", "accuracy", "diff", "speed"):
            of += f", {subjects} pair" + ("s" if subjects > 1 else "")
        lines.append((passed == len(group), f"{KIND_NAMES.get(kind, kind)}: {of}"))
    return lines


def next_steps(result: GateResult) -> list[Safe]:
    """What a reviewer can do about each kind of failure, with the command where there is one."""
    failed = {c.kind for c in result.failed_checks}
    steps = {
        "baseline": "The stored baseline is missing or was made under other inputs. If the change is intended, "
        f"update it and commit the file: {md_code(f'preprocgate baseline update {result.spec_path}')}.",
        "dataset": "Some images could not be read: fix or remove them (they are listed under the tables).",
        "parity": "The candidate's pixels moved beyond the bound: the ULP chart and the worst element below show "
        "where; the pictures show the worst probes. If the change is intended, loosen "
        f"{md_code('probes.parity.pairs[].thresholds')}.",
        "accuracy": "A Δ is outside the threshold band: compare it with the interval and the noise floor below, "
        "and look at the detection pictures for the images that moved most.",
        "diff": "Fewer detections match between the two variants: the detection pictures show the images with "
        "the largest disagreement.",
        "speed": "The candidate is slower than the spec requires (see the timings in the run details).",
    }
    return [Safe(f"**{KIND_NAMES[k]}**: " + steps[k]) for k in KIND_ORDER if k in failed]


def metric_names(metrics: dict[str, float]) -> list[str]:
    """Metrics in one fixed order (AP, AP50, …, as COCOeval lists them), whatever order a cache gave them."""
    order = list(METRICS)
    return sorted(metrics, key=lambda m: (order.index(m) if m in order else len(order), m))


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
        code=md_code,
        num=fmt_number,
        sci=fmt_float,
        seconds=fmt_seconds,
        pct=fmt_pct,
        count=fmt_count,
        signed=fmt_signed,
        fixed=fmt_fixed,
        mark=mark,
        safe_md=Safe,
        sorted_checks=sorted_checks,
        metric_names=metric_names,
    )
    env.globals.update(
        ULP_BINS=ULP_BIN_LABELS,
        link=md_link,
        check_summary=check_summary,
        next_steps=next_steps,
        charts=charts,
        RUN_START=RUN_START,
        RUN_END=RUN_END,
    )
    return env


def _template(path: Path | None) -> jinja2.Template:
    if path is None:
        return _environment(jinja2.FileSystemLoader(_TEMPLATES)).get_template("report.md.j2")
    return _environment(jinja2.FileSystemLoader(path.parent)).get_template(path.name)


TEMPLATE_NAMES = frozenset({"r", "details", "json_name", "links", "artifacts_url"})  # what a template is given
RUN_START = "<!-- preprocgate: this run -->"
RUN_END = "<!-- preprocgate: end of this run -->"
"""Around what differs from one run to the next (timings, cache use, date): :func:`stable_part` drops it."""


def stable_part(markdown: str) -> str:
    """The report without its run-specific section: equal for a cold and a warm run of unchanged inputs."""
    return re.sub(re.escape(RUN_START) + r".*?" + re.escape(RUN_END) + r"\n?", "", markdown, flags=re.S)


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


def render_markdown(
    result: GateResult,
    template: Path | None = None,
    json_name: str | None = None,
    links: dict[str, str] | None = None,
    artifacts_url: str | None = None,
) -> str:
    """The report, at most MAX_CHARS characters. ``links``: label → URL shown under the verdict;
    ``artifacts_url``: where the report's folder is published, so that the JSON and pictures become links.
    A user template failing while rendering (an attribute the result lacks) is a one-line error naming it."""
    base = artifacts_url.rstrip("/") + "/" if artifacts_url else None
    given = {"links": dict(links or {}), "artifacts_url": base}
    try:
        tpl = _template(template)
        json_name = json_name or f"{result.gate}.json"
        text = tpl.render(r=result, details=True, json_name=json_name, **given)
    except jinja2.TemplateError as exc:
        if template is None:
            raise
        raise RunError(f"report.template {template}: {exc}") from exc
    if len(text) <= MAX_CHARS:
        return text
    text = tpl.render(r=result, details=False, json_name=json_name, **given)
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
    result: GateResult,
    output_dir: Path,
    template: Path | None = None,
    secrets: Sequence[str] = (),
    links: dict[str, str] | None = None,
    artifacts_url: str | None = None,
) -> tuple[Path, Path]:
    """Write ``<gate>.md`` and ``<gate>.json``; each is replaced atomically. ``secrets`` (values the spec read
    from variables named like secrets) are masked in both, whatever echoed them."""
    md_path = output_dir / f"{result.gate}.md"
    json_path = output_dir / f"{result.gate}.json"
    markdown = render_markdown(result, template, json_path.name, links, artifacts_url)
    data = json.dumps(result.to_json(), indent=2, sort_keys=True, allow_nan=True) + "\n"
    atomic_write_text(json_path, redact(data, secrets) if secrets else data)
    atomic_write_text(md_path, redact(markdown, secrets) if secrets else markdown)
    write_pictures(result, output_dir)
    return md_path, json_path


def write_pictures(result: GateResult, output_dir: Path) -> None:
    """Copy the run's pictures beside the report, with an index page; pictures of an earlier run that this one
    did not draw (a pair that no longer differs) are removed from the folder, which is the gate's own."""
    folder = output_dir / f"{result.gate}-pictures"
    written = set()
    for p in result.pictures:
        if p.source and Path(p.source).is_file():
            atomic_write_bytes(output_dir / p.file, Path(p.source).read_bytes())
            written.add((output_dir / p.file).name)
    if folder.is_dir():
        for old in folder.glob("*.png"):
            if old.name not in written:
                old.unlink(missing_ok=True)
    if written:
        pages = [(p.subject, p.title, Path(p.file).name) for p in result.pictures if Path(p.file).name in written]
        atomic_write_text(folder / "index.html", index_html(result.gate, pages))
    elif (folder / "index.html").is_file():
        (folder / "index.html").unlink()
