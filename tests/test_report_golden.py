"""Golden files of the report for a passing and a failing gate: a change to the layout shows as a diff of
tests/golden/*.md in review. After an intended change, regenerate them and review the diff:

    PREPROCGATE_REGEN_GOLDEN=1 pytest tests/test_report_golden.py
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from preprocgate.report.render import render_markdown
from tests.helpers.results import demo_like

GOLDEN = Path(__file__).parent / "golden"
CASES = {
    "passing": lambda: render_markdown(demo_like()),
    "failing": lambda: render_markdown(
        demo_like(failing=True),
        links={"CI run": "https://ci.example/o/r/actions/runs/1"},
        artifacts_url="https://ci.example/o/r/actions/runs/1/artifacts",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_report_matches_its_golden_file(case: str) -> None:
    path = GOLDEN / f"report-{case}.md"
    rendered = CASES[case]()
    if os.environ.get("PREPROCGATE_REGEN_GOLDEN") == "1":
        path.write_text(rendered, encoding="utf-8")
    assert path.is_file(), f"{path} missing: PREPROCGATE_REGEN_GOLDEN=1 pytest {Path(__file__).name}"
    assert rendered == path.read_text(encoding="utf-8"), f"regenerate: PREPROCGATE_REGEN_GOLDEN=1 pytest {__file__}"
