"""JUnit XML from the results JSON: one testcase per check, failures for failed ones, valid XML always."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from preprocgate.cli import cli
from preprocgate.publish import junit_xml, write_junit


def _check(subject: str, passed: bool, kind: str = "parity") -> dict[str, Any]:
    return {
        "kind": kind,
        "subject": subject,
        "metric": "max ULP",
        "threshold": "≤ 0",
        "measured": "3",
        "passed": passed,
    }


def test_one_testcase_per_check_with_failures() -> None:
    results = {
        "gate": "demo",
        "duration_s": 1.25,
        "checks": [_check("triton vs torch", True), _check('a<b & "c"', False), _check("x vs y", True, "speed")],
    }
    root = ET.fromstring(junit_xml(results))
    suite = root.find("testsuite")
    assert suite is not None
    assert (root.get("tests"), root.get("failures"), root.get("time")) == ("3", "1", "1.250")
    assert (suite.get("name"), suite.get("tests"), suite.get("failures")) == ("preprocgate.demo", "3", "1")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [
        "parity | triton vs torch | max ULP",
        'parity | a<b & "c" | max ULP',  # escaped in the file, intact once parsed
        "speed | x vs y | max ULP",
    ]
    assert [c.find("failure") is not None for c in cases] == [False, True, False]
    failure = cases[1].find("failure")
    assert failure is not None and failure.get("message") == "max ULP 3 (threshold ≤ 0)"
    assert failure.text == 'FAILED | parity | a<b & "c" | max ULP 3 (threshold ≤ 0)'


def test_gate_without_checks_is_a_failed_suite() -> None:
    root = ET.fromstring(junit_xml({"gate": "empty", "checks": []}))
    assert (root.get("tests"), root.get("failures")) == ("1", "1")
    failure = root.find("testsuite/testcase/failure")
    assert failure is not None and failure.get("message") == "no checks declared: nothing was compared"


def test_written_atomically(tmp_path: Path) -> None:
    path = tmp_path / "junit" / "demo.xml"
    write_junit({"gate": "demo", "checks": [_check("a vs b", True)]}, path)
    assert path.read_text().startswith("<?xml version='1.0' encoding='utf-8'?>\n<testsuites")
    assert [p.name for p in path.parent.iterdir()] == ["demo.xml"]


def test_post_writes_junit_from_the_sibling_results(tmp_path: Path) -> None:
    md = tmp_path / "demo.md"
    md.write_text("## report\n")
    args = ["post", str(md), "--forge", "github", "--repo", "o/r", "--pr", "1", "--dry-run", "--junit"]
    missing = CliRunner().invoke(cli, [*args, str(tmp_path / "j.xml")])
    assert missing.exit_code == 2 and "--junit" in missing.output and not (tmp_path / "j.xml").exists()
    md.with_suffix(".json").write_text(json.dumps({"gate": "demo", "checks": [_check("a vs b", False)]}))
    result = CliRunner().invoke(cli, [*args, str(tmp_path / "j.xml")])
    assert result.exit_code == 0, result.output
    assert ET.parse(tmp_path / "j.xml").getroot().get("failures") == "1"
