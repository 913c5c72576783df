"""Posting reports: a real HTTP server on 127.0.0.1 plays GitHub and GitLab (tests/helpers/forge_server.py).

Every test uses a distinctive token and checks that it never shows in what preprocgate prints, logs or raises.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from preprocgate.cli import cli
from preprocgate.errors import PublishError
from preprocgate.publish import comment_body, marker, post_sticky, resolve_forge
from preprocgate.report import MAX_CHARS
from tests.helpers.forge_server import ForgeServer
from tests.helpers.gates import small_gate, write_gate

TOKEN = "tok-SECRET-9f8e7d6c5b4a"
CI_VARIABLES = (
    "GITHUB_ACTIONS",
    "GITHUB_REPOSITORY",
    "GITHUB_EVENT_PATH",
    "GITHUB_EVENT_NAME",
    "GITHUB_API_URL",
    "GITHUB_STEP_SUMMARY",
    "GITHUB_TOKEN",
    "GITLAB_CI",
    "CI_API_V4_URL",
    "CI_PROJECT_ID",
    "CI_MERGE_REQUEST_IID",
    "GITLAB_TOKEN",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """No CI variable of the machine running the tests leaks in; logs are captured at DEBUG for the token check."""
    for name in CI_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    caplog.set_level(logging.DEBUG)
    yield
    assert TOKEN not in caplog.text


@pytest.fixture
def server() -> Iterator[ForgeServer]:
    with ForgeServer(TOKEN) as s:
        yield s


def _report(folder: Path, gate: str = "demo", text: str | None = None, checks: list[dict] | None = None) -> Path:
    """A written report pair, as `preprocgate run` leaves it: <gate>.md and <gate>.json."""
    md = folder / f"{gate}.md"
    md.write_text(text or f"## ✅ preprocgate `{gate}`: passed (1 of 1 checks)\n\nall good\n")
    checks = checks or [
        {
            "kind": "parity",
            "subject": "triton vs torch",
            "metric": "max ULP",
            "threshold": "≤ 0",
            "measured": "0",
            "passed": True,
        }
    ]
    results = {"schema_version": 1, "gate": gate, "passed": all(c["passed"] for c in checks), "checks": checks}
    md.with_suffix(".json").write_text(json.dumps(results))
    return md


def _post(*args: str) -> Result:
    result = CliRunner().invoke(cli, ["post", *args])
    assert TOKEN not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def _github_args(server: ForgeServer, pr: int = 1) -> list[str]:
    return ["--forge", "github", "--repo", "o/r", "--pr", str(pr), "--api-url", server.github_api]


def _gitlab_args(server: ForgeServer, project: str = "group/sub/proj", iid: int = 5) -> list[str]:
    return ["--forge", "gitlab", "--repo", project, "--pr", str(iid), "--api-url", server.gitlab_api]


def test_github_first_post_creates_second_edits_the_same_comment(
    tmp_path: Path, server: ForgeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    for i in range(3):  # other people's comments: the sticky one sits on page 2 or 3 (2 per page)
        server.seed_github("o/r", 1, f"review comment {i}, quoting {marker('demo')}")
    md = _report(tmp_path)

    first = _post(str(md), *_github_args(server))
    assert first.exit_code == 0, first.output
    assert "created the comment of gate demo on GitHub o/r#1" in first.output
    comments = server.github[("o/r", 1)]
    assert len(comments) == 4 and comments[-1]["body"].startswith("<!-- preprocgate:gate=demo -->\n## ✅")

    md.write_text("## ❌ preprocgate `demo`: failed\n")
    second = _post(str(md), *_github_args(server))
    assert second.exit_code == 0, second.output
    assert f"updated the comment of gate demo on GitHub o/r#1: {comments[-1]['html_url']}" in second.output
    assert (
        len(comments) == 4
        and comments[-1]["body"] == "<!-- preprocgate:gate=demo -->\n## ❌ preprocgate `demo`: failed\n"
    )

    lists = [r for r in server.requests if r.method == "GET" and "/comments" in r.raw_path]
    assert len(lists) == 2 + 2  # the first search reads pages 1-2, the second pages 1-2 (found on page 2)
    assert lists[1].query == {"per_page": "100", "page": "2"}  # the Link header was followed
    patch = next(r for r in server.requests if r.method == "PATCH")
    assert patch.raw_path == f"/api/v3/repos/o/r/issues/comments/{comments[-1]['id']}"


def test_two_gates_keep_two_comments(tmp_path: Path, server: ForgeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    demo, other = _report(tmp_path / "a", "demo"), _report(tmp_path / "b", "demo-gpu")
    for md in (demo, other, demo, other):
        assert _post(str(md), *_github_args(server)).exit_code == 0
    bodies = [c["body"] for c in server.github[("o/r", 1)]]
    assert len(bodies) == 2
    assert bodies[0].startswith("<!-- preprocgate:gate=demo -->") and bodies[1].startswith(
        "<!-- preprocgate:gate=demo-gpu -->"
    )
    assert [r.method for r in server.requests].count("POST") == 2
    assert [r.method for r in server.requests].count("PATCH") == 2


def test_gitlab_note_created_then_updated_with_encoded_project_path(
    tmp_path: Path, server: ForgeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_GITLAB_TOKEN", TOKEN)
    server.seed_gitlab("group/sub/proj", 5, "added 1 commit", system=True)
    for i in range(3):
        server.seed_gitlab("group/sub/proj", 5, f"looks fine {i}")
    md = _report(tmp_path)
    args = [str(md), *_gitlab_args(server), "--token-env", "MY_GITLAB_TOKEN"]
    assert _post(*args).exit_code == 0
    for i in range(3):  # newer notes after ours: GitLab lists newest first unless asked otherwise
        server.seed_gitlab("group/sub/proj", 5, f"later note {i}")
    second = _post(*args)
    assert second.exit_code == 0, second.output
    assert "updated the comment of gate demo on GitLab group/sub/proj!5" in second.output
    notes = server.gitlab[("group/sub/proj", 5)]
    assert sum(n["body"].startswith(marker("demo")) for n in notes) == 1
    put = next(r for r in server.requests if r.method == "PUT")
    assert put.raw_path.startswith("/api/v4/projects/group%2Fsub%2Fproj/merge_requests/5/notes/")
    lists = [r for r in server.requests if r.method == "GET" and "/notes" in r.raw_path]
    assert {r.query.get("sort") for r in lists} == {"asc"}
    assert {r.query.get("page") for r in lists} >= {"2", "3"}  # X-Next-Page followed


def test_gitlab_detected_from_ci_variables(
    tmp_path: Path, server: ForgeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "GITLAB_CI": "true",
        "CI_API_V4_URL": server.gitlab_api,
        "CI_PROJECT_ID": "42",
        "CI_MERGE_REQUEST_IID": "9",
        "GITLAB_TOKEN": TOKEN,
    }.items():
        monkeypatch.setenv(name, value)
    result = _post(str(_report(tmp_path)))
    assert result.exit_code == 0, result.output
    assert server.gitlab[("42", 9)][0]["body"].startswith(marker("demo"))


def test_github_detected_from_actions_environment(
    tmp_path: Path, server: ForgeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"action": "synchronize", "pull_request": {"number": 7}}))
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    for name, value in {
        "GITHUB_ACTIONS": "true",
        "GITHUB_REPOSITORY": "o/r",
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_API_URL": server.github_api,
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_TOKEN": TOKEN,
    }.items():
        monkeypatch.setenv(name, value)
    md = _report(tmp_path)
    result = _post(str(md))
    assert result.exit_code == 0, result.output
    assert server.github[("o/r", 7)][0]["body"] == marker("demo") + "\n" + md.read_text()
    assert summary.read_text() == "earlier step\n" + md.read_text()  # appended, without the marker


def test_run_post_and_junit(tmp_path: Path, server: ForgeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"issue": {"number": 3, "pull_request": {}}}))
    for name, value in {
        "GITHUB_ACTIONS": "true",
        "GITHUB_REPOSITORY": "o/r",
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_API_URL": server.github_api,
        "GITHUB_TOKEN": TOKEN,
    }.items():
        monkeypatch.setenv(name, value)
    spec = small_gate()
    spec["probes"]["speed"] = None
    result = CliRunner().invoke(
        cli, ["run", str(write_gate(tmp_path, spec)), "--post", "--junit", str(tmp_path / "j.xml")]
    )
    assert result.exit_code == 0, result.output
    assert "PASSED: gate t" in result.output and "created the comment of gate t on GitHub o/r#3" in result.output
    assert server.github[("o/r", 3)][0]["body"] == marker("t") + "\n" + (tmp_path / "out" / "t.md").read_text()
    assert (
        'testcase classname="preprocgate.t" name="parity | triton vs torch | max ULP"'
        in (tmp_path / "j.xml").read_text()
    )


def test_run_post_refused_exits_3_and_keeps_the_reports(
    tmp_path: Path, server: ForgeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "o/r", "GITHUB_TOKEN": TOKEN}.items():
        monkeypatch.setenv(name, value)
    spec = small_gate()
    spec["probes"]["speed"] = None
    result = CliRunner().invoke(cli, ["run", str(write_gate(tmp_path, spec)), "--post"])
    assert result.exit_code == 3
    assert "PASSED: gate t" in result.output
    assert "error: no pull request to comment on: this run's event (unknown) names none" in result.output
    assert (tmp_path / "out" / "t.md").exists() and (tmp_path / "out" / "t.json").exists()


def test_502_and_429_are_retried_then_succeed(
    tmp_path: Path, server: ForgeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    server.fail("GET", 502, {"Retry-After": "0"}, {"message": "Server Error"})
    server.fail("POST", 429, {"Retry-After": "0"}, {"message": "slow down"})
    result = _post(str(_report(tmp_path)), *_github_args(server))
    assert result.exit_code == 0, result.output
    assert [r.method for r in server.requests] == ["GET", "GET", "POST", "POST"]
    assert len(server.github[("o/r", 1)]) == 1


def test_retries_back_off_exponentially_and_honour_retry_after(server: ForgeServer) -> None:
    waits: list[float] = []
    forge = resolve_forge("github", {}, repo="o/r", number=1, api_url=server.github_api)
    for _ in range(2):
        server.fail("GET", 502)  # no Retry-After: backoff 1 s, 2 s
    server.fail("GET", 403, {}, {"message": "You have exceeded a secondary rate limit."})  # GitHub: at least 60 s
    server.fail("POST", 429, {"Retry-After": "7"})
    posted = post_sticky(forge, TOKEN, "demo", comment_body("demo", "## x\n", "demo.md"), sleep=waits.append)
    assert posted.action == "created"
    assert waits == [1.0, 2.0, 60.0, 7.0]


def test_retries_are_bounded(server: ForgeServer) -> None:
    forge = resolve_forge("gitlab", {}, repo="7", number=1, api_url=server.gitlab_api)
    for _ in range(3):
        server.fail("GET", 503, {}, {"message": "unavailable"})
    with pytest.raises(PublishError, match=r"GitLab answered 503 Service Unavailable to GET .*: unavailable"):
        post_sticky(forge, TOKEN, "demo", "body", retries=2, sleep=lambda s: None)
    assert len(server.requests) == 3


def test_wait_longer_than_the_cap_is_reported_not_slept(server: ForgeServer) -> None:
    forge = resolve_forge("github", {}, repo="o/r", number=1, api_url=server.github_api)
    server.fail("GET", 429, {"Retry-After": "3600"}, {"message": "API rate limit exceeded"})
    with pytest.raises(PublishError, match=r"asked to wait 3600 s, over 60 s"):
        post_sticky(forge, TOKEN, "demo", "body", sleep=lambda s: pytest.fail(f"slept {s} s"))


def test_fork_pr_403_gives_the_way_around(tmp_path: Path, server: ForgeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    server.fail("POST", 403, {}, {"message": "Resource not accessible by integration"})
    result = _post(str(_report(tmp_path)), *_github_args(server))
    assert result.exit_code == 3
    line = next(x for x in result.output.splitlines() if x.startswith("error: "))
    assert "GitHub answered 403 Forbidden to POST /api/v3/repos/o/r/issues/1/comments" in line
    assert "Resource not accessible by integration" in line
    assert "read-only GITHUB_TOKEN" in line and "workflow_run" in line and "pull-requests: write" in line
    assert [r.method for r in server.requests] == ["GET", "POST"]  # a permission 403 is not retried


@pytest.mark.parametrize(
    ("forge_args", "status", "expected"),
    [
        (
            "github",
            401,
            "GitHub answered 401 Unauthorized to GET /api/v3/repos/o/r/issues/1/comments: Bad credentials *** ",
        ),
        ("github", 404, "no pull request o/r#1 at"),
        ("gitlab", 401, "GitLab answered 401 Unauthorized"),
        ("gitlab", 403, "CI_JOB_TOKEN cannot post notes"),
    ],
)
def test_clear_messages_and_a_redacted_token(
    tmp_path: Path, server: ForgeServer, monkeypatch: pytest.MonkeyPatch, forge_args: str, status: int, expected: str
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITLAB_TOKEN", TOKEN)
    message = "Bad credentials " + TOKEN + " rejected"  # a forge echoing the token must not leak it
    server.fail("GET", status, {}, {"message": message})
    args = _github_args(server) if forge_args == "github" else _gitlab_args(server)
    result = _post(str(_report(tmp_path)), *args)
    assert result.exit_code == 3
    assert expected in result.output


def test_library_errors_never_carry_the_token(server: ForgeServer) -> None:
    forge = resolve_forge("github", {}, repo="o/r", number=1, api_url=server.github_api)
    server.fail("GET", 401, {}, {"message": f"token {TOKEN} revoked"})
    with pytest.raises(PublishError) as info:
        post_sticky(forge, TOKEN, "demo", "body")
    chain = [info.value, info.value.__cause__, info.value.__context__]
    assert all(TOKEN not in str(e) and TOKEN not in repr(e) for e in chain)
    forge = resolve_forge("github", {}, repo="o/r", number=1, api_url="http://127.0.0.1:9")  # nothing listens
    with pytest.raises(PublishError, match=re.escape("GET http://127.0.0.1:9/repos/o/r/issues/1/comments")) as info:
        post_sticky(forge, TOKEN, "demo", "body", retries=1, sleep=lambda s: None)
    assert TOKEN not in str(info.value) and TOKEN not in str(info.value.__cause__)


def test_wrong_token_is_refused_by_the_server(
    tmp_path: Path, server: ForgeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "not-the-token")
    result = _post(str(_report(tmp_path)), *_github_args(server))
    assert result.exit_code == 3 and "is invalid or expired" in result.output


def test_next_page_link_to_another_host_is_not_followed(
    tmp_path: Path, server: ForgeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    for i in range(3):
        server.seed_github("o/r", 1, f"comment {i}")
    server.link_base = "http://127.0.0.2:1"
    result = _post(str(_report(tmp_path)), *_github_args(server))
    assert result.exit_code == 3 and "refusing to follow a pagination link to another host" in result.output
    assert len(server.requests) == 1


def test_dry_run_sends_nothing(tmp_path: Path, server: ForgeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    md = _report(tmp_path)
    result = _post(str(md), *_github_args(server), "--dry-run")  # no token needed to look
    assert result.exit_code == 0, result.output
    assert "would post the sticky comment of gate demo to GitHub o/r#1" in result.output
    assert "with the token in $GITHUB_TOKEN" in result.output
    assert result.output.endswith(marker("demo") + "\n" + md.read_text())
    assert server.requests == [] and not summary.exists()


def test_long_report_is_cut_at_a_section_boundary(
    tmp_path: Path, server: ForgeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    sections = [f"## section {i}\n\n" + "| a | b |\n|---|---|\n" + "| 1 | 2 |\n" * 400 for i in range(20)]
    text = "".join(sections)
    assert len(text) > MAX_CHARS
    md = _report(tmp_path, text=text)
    assert _post(str(md), *_github_args(server)).exit_code == 0
    body = server.github[("o/r", 1)][0]["body"]
    assert len(body) <= MAX_CHARS
    head, _, rest = body.partition("\n")
    assert head == marker("demo")
    kept, note = rest.split("\n\n> ")
    assert text.startswith(kept) and text[len(kept) :].startswith("\n## section")  # cut before a heading
    assert note == f"Report cut to fit a comment; the full report is `{md}` in this run's CI artifacts.\n"


def test_forge_choice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    md = str(_report(tmp_path))
    unknown = _post(md, "--forge", "githb", "--repo", "o/r", "--pr", "1")
    assert unknown.exit_code == 2 and "unknown forge 'githb'; did you mean 'github'?" in unknown.output
    outside_ci = _post(md, "--repo", "o/r", "--pr", "1")
    assert outside_ci.exit_code == 3 and "pass --forge github|gitlab" in outside_ci.output
    no_token = _post(md, "--forge", "github", "--repo", "o/r", "--pr", "1")
    assert no_token.exit_code == 3 and "$GITHUB_TOKEN is unset or empty" in no_token.output
    bad_gate = _post(md, "--gate", "a b", "--dry-run")
    assert bad_gate.exit_code == 2 and "--gate" in bad_gate.output
    monkeypatch.setenv("GITLAB_CI", "true")
    monkeypatch.setenv("CI_PROJECT_ID", "42")
    no_mr = _post(md)
    assert no_mr.exit_code == 3 and "CI_MERGE_REQUEST_IID is unset" in no_mr.output


def test_gate_name_defaults(tmp_path: Path) -> None:
    md = _report(tmp_path, gate="from-json")
    renamed = md.rename(tmp_path / "renamed.md")
    md.with_suffix(".json").rename(renamed.with_suffix(".json"))
    args = ["--forge", "github", "--repo", "o/r", "--pr", "1", "--dry-run"]
    assert "gate from-json" in _post(str(renamed), *args).output
    renamed.with_suffix(".json").unlink()
    assert "gate renamed" in _post(str(renamed), *args).output
