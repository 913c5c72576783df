"""JUnit XML from a results JSON (``reports/<gate>.json``): one testcase per check, so that CI test panels
(GitLab's merge request widget, GitHub test-report actions, Jenkins) list each bound with its verdict.

A gate with no checks did not pass (comparing nothing is a failure), so its suite holds one failed
testcase saying so rather than an empty, green suite.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from preprocgate.fileio import atomic_write_text


def junit_xml(results: Mapping[str, Any]) -> str:
    gate = str(results["gate"])
    classname = f"preprocgate.{gate}"
    cases: list[ET.Element] = []
    for check in results.get("checks") or []:
        name = f"{check['kind']} | {check['subject']} | {check['metric']}"
        case = ET.Element("testcase", classname=classname, name=name, time="0")
        if not check["passed"]:
            failure = ET.SubElement(
                case,
                "failure",
                type=str(check["kind"]),
                message=f"{check['metric']} {check['measured']} (threshold {check['threshold']})",
            )
            failure.text = f"FAILED | {name} {check['measured']} (threshold {check['threshold']})"
        cases.append(case)
    if results.get("error"):  # the run stopped: one errored testcase naming why
        case = ET.Element("testcase", classname=classname, name="run", time="0")
        ET.SubElement(case, "error", type="run", message=str(results["error"])).text = str(results["error"])
        cases.append(case)
    elif not cases:
        case = ET.Element("testcase", classname=classname, name="checks declared", time="0")
        ET.SubElement(case, "failure", type="gate", message="no checks declared: nothing was compared")
        cases.append(case)
    failures = sum(1 for c in cases if c.find("failure") is not None)
    errors = sum(1 for c in cases if c.find("error") is not None)
    counts = {"tests": str(len(cases)), "failures": str(failures), "errors": str(errors), "skipped": "0"}
    duration = f"{float(results.get('duration_s') or 0.0):.3f}"
    root = ET.Element("testsuites", name="preprocgate", time=duration, **counts)
    suite = ET.SubElement(root, "testsuite", name=classname, time=duration, **counts)
    suite.extend(cases)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(results: Mapping[str, Any], path: Path) -> None:
    """Write the JUnit file atomically: a CI panel reading it sees the old file or the whole new one."""
    atomic_write_text(path, junit_xml(results))
