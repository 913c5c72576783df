"""Markdown and JSON reports of a GateResult."""

from preprocgate.report.render import MAX_CHARS, render_markdown, truncate_markdown, write_reports

__all__ = ["MAX_CHARS", "render_markdown", "truncate_markdown", "write_reports"]
