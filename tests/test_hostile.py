"""The hostile-input corpus (tests/hostile/): every case gives its documented exit code and message, in one
line and never a traceback, never shows a secret, and leaves no half-written file behind.

The corpus itself, and how to add a case, is described in tests/hostile/corpus.py.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from preprocgate.cli import cli
from tests.helpers.forge_server import ForgeServer
from tests.hostile.corpus import TOKEN, Case, Shared, all_cases

CASES = all_cases()
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
    "PREPROCGATE_HTTP_TIMEOUT",
    "PREPROCGATE_POST_DEADLINE",
    "PREPROCGATE_RETRY_BUDGET",
)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Shared:
    return Shared(tmp_path_factory.mktemp("hostile-shared"))


def test_the_corpus_is_large_and_names_are_unique() -> None:
    assert len(CASES) >= 150
    assert len({(c.category, c.id) for c in CASES}) == len(CASES)


@pytest.fixture
def forge_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in CI_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    yield


def _forge_args(case: Case, server: ForgeServer, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    forge = case.forge
    assert forge is not None
    server.loop_pages, server.actions_token = forge.loop_pages, forge.actions_token
    if forge.link_base:
        server.link_base = forge.link_base
    for failure in forge.fail:
        server.fail(**failure)
    if forge.forge == "github":
        for comment in forge.seed:
            server.seed_github("o/r", 1, comment["body"], comment.get("author"))
        monkeypatch.setenv("GITHUB_TOKEN", forge.token)
        return ["--forge", "github", "--repo", "o/r", "--pr", "1", "--api-url", server.github_api]
    for comment in forge.seed:
        server.seed_gitlab("group/proj", 1, comment["body"], author=comment.get("author"))
    monkeypatch.setenv("GITLAB_TOKEN", forge.token)
    return ["--forge", "gitlab", "--repo", "group/proj", "--pr", "1", "--api-url", server.gitlab_api]


@pytest.mark.parametrize("case", CASES, ids=[f"{c.category}-{c.id}" for c in CASES])
def test_hostile_input(
    case: Case,
    tmp_path: Path,
    shared: Shared,
    forge_env: None,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    args = case.build(tmp_path, shared)
    before = set(tmp_path.rglob("*.tmp"))
    if case.forge is not None:
        with ForgeServer(TOKEN) as server:
            args += _forge_args(case, server, monkeypatch)
            result = CliRunner().invoke(cli, args)
            foreign = [c for comments in [*server.github.values(), *server.gitlab.values()] for c in comments]
            assert all("hijack" in c["body"] or "fake" in c["body"] for c in foreign if _author(c) == "mallory")
    else:
        result = CliRunner().invoke(cli, args)
    output = result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), (result.exception, output)
    assert "Traceback" not in output, output
    assert result.exit_code == case.expect, output
    for fragment in case.says:
        assert fragment in output, (fragment, output)
    for secret in case.hides:
        assert secret not in output, (secret, output)
        assert secret not in caplog.text, secret
    assert set(tmp_path.rglob("*.tmp")) <= before, "a half-written file was left behind"
    if args[0] == "validate":
        assert not (tmp_path / "out").exists(), "validate wrote something"
    if case.check is not None:
        case.check(tmp_path, output)


def _author(comment: dict) -> str | None:
    return comment.get("user", {}).get("login") or comment.get("author", {}).get("username")


MEMORY_CASES = {
    "alias-bomb": "refused as a possible alias bomb",
    "nested-deep-flow": "nested more than 64 levels deep",
    "huge-sizes": "limits.max_image_side (16384)",
}
_DRIVER = """
import resource, sys
limit = 2 << 30
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from preprocgate.cli import cli
for spec in sys.argv[1:]:
    code = cli.main(["run", spec], prog_name="preprocgate", standalone_mode=False)
    print(f"exit {code}", file=sys.stderr, flush=True)
"""


def test_run_under_a_2_gb_address_space_limit_exits_2(tmp_path: Path) -> None:
    """The acceptance check: `preprocgate run` in a process whose address space is capped at 2 GiB (torch and
    OpenCV loaded) refuses an alias bomb, deep nesting and huge sizes in one line with exit 2. One process
    runs the three commands, so that torch is imported once."""
    import subprocess
    import sys

    import yaml

    from tests.hostile.corpus import BASES, HERE

    paths = []
    for name in MEMORY_CASES:
        path = tmp_path / f"{name}.yaml"
        if name == "huge-sizes":
            gate = {**BASES["small"], "input": {"size": "100000x100000"}}
            gate["probes"] = {"parity": None, "speed": {"source": "100000x100000"}}
            path.write_text(yaml.safe_dump(gate))
        else:
            path.write_bytes((HERE / "specs" / f"{name}.yaml").read_bytes())
        paths.append(str(path))
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-c", _DRIVER, *paths], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    blocks = done.stderr.split("exit ")
    for (name, message), block, after in zip(MEMORY_CASES.items(), blocks[:-1], blocks[1:], strict=True):
        assert message in block and after.startswith("2"), (name, done.stderr)
    assert not (tmp_path / "out").exists() and not (tmp_path / "reports").exists()
