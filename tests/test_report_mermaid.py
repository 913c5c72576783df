"""The report's Mermaid charts parse with Mermaid itself (the npm package under Node, tests/mermaid/), so that a
chart GitHub would show as an error fails CI instead.

Setup (done by .ci/run): ``npm ci --prefix tests/mermaid``. Without Node or that folder the test skips, unless
PREPROCGATE_REQUIRE_MERMAID=1 makes it fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from preprocgate.report.render import render_markdown
from tests.helpers.results import demo_like

HERE = Path(__file__).parent / "mermaid"


def parse(diagrams: list[str]) -> list[dict]:
    node = shutil.which("node")
    if node is None or not (HERE / "node_modules" / "mermaid").is_dir():
        if os.environ.get("PREPROCGATE_REQUIRE_MERMAID") == "1":
            pytest.fail("Mermaid is not installed: npm ci --prefix tests/mermaid")
        pytest.skip("Mermaid is not installed: npm ci --prefix tests/mermaid")
    done = subprocess.run(
        [node, str(HERE / "parse.mjs")], input=json.dumps(diagrams), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def blocks(markdown: str) -> list[str]:
    return re.findall(r"```mermaid\n(.*?)\n```", markdown, flags=re.S)


def test_every_chart_of_a_passing_and_a_failing_report_parses() -> None:
    hostile = demo_like(failing=True)
    hostile.parity[0] = type(hostile.parity[0])(
        'tri"ton`]\n```', "torch", hostile.parity[0].thresholds, hostile.parity[0].total, hostile.parity[0].per_probe
    )
    diagrams = [b for r in (demo_like(), demo_like(failing=True), hostile) for b in blocks(render_markdown(r))]
    assert len(diagrams) == 12  # two ULP histograms and two Δ charts per report
    results = parse([*diagrams, "xychart-beta\n    bar [1, "])  # and one broken chart, which must be caught
    assert [r["ok"] for r in results] == [True] * len(diagrams) + [False], results
    assert {r["type"] for r in results[:-1]} == {"xychart"}
