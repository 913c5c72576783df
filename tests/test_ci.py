"""``preprocgate ci``, the command the GitHub Action and the GitLab component run: every gate, the step summary,
the outputs the CI reads back, and exit codes under --fail-on-gate. (The Action's and the component's own shell
steps run in tests/test_distribution.py.)"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from preprocgate.cli import cli
from preprocgate.publish.outputs import append_github_outputs
from tests.helpers.gates import small_gate, write_gate

CLEAN = {"GITHUB_ACTIONS": None, "GITLAB_CI": None, "GITHUB_STEP_SUMMARY": None, "GITHUB_OUTPUT": None}


def _gates(folder: Path) -> tuple[Path, Path]:
    """A gate that passes and one that fails (torch must equal cv2 bit for bit: it does not)."""
    good = small_gate(name="good", cache_dir="cache")
    bad = small_gate(name="bad", cache_dir="cache")
    bad["probes"]["parity"]["pairs"] = [{"candidate": "torch", "reference": "cv2", "thresholds": {"max_ulp": 0}}]
    return write_gate(folder, good, "good.yaml"), write_gate(folder, bad, "bad.yaml")


def _outputs(path: Path) -> dict[str, list[str]]:
    """Parse GitHub's $GITHUB_OUTPUT format (name=value, name<<DELIMITER blocks) the way the runner does."""
    values: dict[str, list[str]] = {}
    lines = iter(path.read_text().splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            values[name] = list(iter(lambda: next(lines), delimiter))
        else:
            name, value = line.split("=", 1)
            values[name] = [value] if value else []
    return values


def test_every_gate_runs_and_the_outputs_summary_and_junit_say_how_it_went(tmp_path: Path) -> None:
    good, bad = _gates(tmp_path)
    outputs, summary = tmp_path / "github_output", tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    env = {**CLEAN, "GITHUB_OUTPUT": str(outputs), "GITHUB_STEP_SUMMARY": str(summary)}
    args = ["ci", str(good), str(bad), "--output-dir", str(tmp_path / "reports")]
    args += ["--junit", str(tmp_path / "reports" / "{gate}.junit.xml")]
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 1, result.output
    assert "PASSED: gate good" in result.output and "FAILED: gate bad" in result.output
    values = _outputs(outputs)
    reports = [str(tmp_path / "reports" / "good.md"), str(tmp_path / "reports" / "bad.md")]
    assert values["passed"] == ["false"] and values["report"] == reports
    assert values["json"] == [r.replace(".md", ".json") for r in reports]
    assert values["junit"] == [r.replace(".md", ".junit.xml") for r in reports]
    text = summary.read_text()
    assert text.startswith("earlier step\n")  # appended to, never replaced
    assert "preprocgate `good`: passed" in text and "preprocgate `bad`: failed" in text
    suite = ET.parse(values["junit"][1]).getroot()
    assert suite.find(".//failure") is not None

    result = CliRunner().invoke(cli, [*args, "--no-fail-on-gate"], env={**env, "GITHUB_OUTPUT": None})
    assert result.exit_code == 0, result.output  # a failed gate does not fail the step; the output says it failed

    result = CliRunner().invoke(cli, ["ci", str(good), "--dotenv", str(tmp_path / "gate.env")], env=CLEAN)
    assert result.exit_code == 0, result.output
    dotenv = (tmp_path / "gate.env").read_text().splitlines()
    assert dotenv[0] == "PREPROCGATE_PASSED=true" and dotenv[1] == f"PREPROCGATE_REPORT={tmp_path / 'out' / 'good.md'}"


def test_a_bad_spec_is_reported_and_the_other_gates_still_run(tmp_path: Path) -> None:
    good, _ = _gates(tmp_path)
    broken = write_gate(tmp_path, {**small_gate(), "variants": {"cv2": "cv2"}, "unknown_key": 1}, "broken.yaml")
    outputs = tmp_path / "out.txt"
    result = CliRunner().invoke(cli, ["ci", str(broken), str(good), "--outputs", str(outputs)], env=CLEAN)
    assert result.exit_code == 2, result.output  # an error outranks a verdict, even with --no-fail-on-gate
    assert "unknown_key" in result.output and "PASSED: gate good" in result.output
    values = _outputs(outputs)
    assert values["passed"] == ["false"] and values["report"] == [str(tmp_path / "out" / "good.md")]


@pytest.mark.parametrize(
    ("env", "why"),
    [
        ({"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "o/r", "GITHUB_EVENT_NAME": "push"}, "no pull request"),
        ({"GITLAB_CI": "true", "CI_PROJECT_ID": "7", "CI_MERGE_REQUEST_IID": "3", "GITLAB_TOKEN": ""}, "GITLAB_TOKEN"),
    ],
)
def test_post_falls_back_to_the_summary_where_no_comment_can_be_posted(
    tmp_path: Path, env: dict[str, str], why: str
) -> None:
    good, _ = _gates(tmp_path)
    summary = tmp_path / "summary.md"
    result = CliRunner().invoke(
        cli, ["ci", str(good), "--post"], env={**CLEAN, **env, "GITHUB_STEP_SUMMARY": str(summary)}
    )
    assert result.exit_code == 0, result.output
    assert "note: not posting, only the step summary" in result.output and why in result.output
    assert "preprocgate `good`: passed" in summary.read_text()


def test_github_outputs_carry_lists_in_delimited_blocks(tmp_path: Path) -> None:
    path = tmp_path / "out"
    append_github_outputs(path, {"report": ["a.md", "b\nc.md"], "passed": "true"})
    assert _outputs(path) == {"report": ["a.md", "b", "c.md"], "passed": ["true"]}


def test_post_puts_each_report_in_its_sticky_comment_and_the_summary(tmp_path: Path) -> None:
    """In a pull request with a token, every gate's report becomes its own sticky comment (a real HTTP server on
    127.0.0.1 plays GitHub); a second run edits those comments instead of adding new ones."""
    from preprocgate.publish import marker
    from tests.helpers.forge_server import ForgeServer

    good, bad = _gates(tmp_path)
    event, summary = tmp_path / "event.json", tmp_path / "summary.md"
    event.write_text('{"pull_request": {"number": 5}}')
    with ForgeServer("tok-123") as server:
        env = {
            **CLEAN,
            "GITHUB_ACTIONS": "true",
            "GITHUB_REPOSITORY": "o/r",
            "GITHUB_EVENT_PATH": str(event),
            "GITHUB_API_URL": server.github_api,
            "GITHUB_TOKEN": "tok-123",
            "GITHUB_STEP_SUMMARY": str(summary),
        }
        for _ in range(2):
            result = CliRunner().invoke(cli, ["ci", str(good), str(bad), "--post", "--no-fail-on-gate"], env=env)
            assert result.exit_code == 0, result.output
        comments = server.github[("o/r", 5)]
    assert "updated the comment of gate good on GitHub o/r#5" in result.output  # the second run edits
    assert [c["body"].splitlines()[0] for c in comments] == [marker("good"), marker("bad")]
    assert comments[1]["body"] == marker("bad") + "\n" + (tmp_path / "out" / "bad.md").read_text()
    assert summary.read_text().count("preprocgate `bad`: failed") == 2  # the summary is appended on every run
    assert "tok-123" not in result.output
