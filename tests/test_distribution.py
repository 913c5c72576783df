"""The distribution: version, built wheel and sdist, the installed demo, the GitHub Action's and the GitLab
component's shell steps, the pre-commit hook.

The slow half (build, fresh virtual environments, pre-commit) runs only with PREPROCGATE_DIST_TESTS=1, which
.ci/run sets; it needs build, twine, check-jsonschema and pre-commit (`pip install build twine check-jsonschema
pre-commit`) and pip's index (torch and the other dependencies are installed into fresh environments).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest
import yaml

from preprocgate.version import __version__
from tests.helpers.gates import small_gate, write_gate

ROOT = Path(__file__).resolve().parents[1]
DIST = os.environ.get("PREPROCGATE_DIST_TESTS") == "1"
slow = pytest.mark.skipif(not DIST, reason="distribution checks: set PREPROCGATE_DIST_TESTS=1 (.ci/run does)")
BIN = Path(sys.executable).parent


def _action() -> dict:
    return yaml.safe_load((ROOT / "action.yml").read_text())


def _component() -> tuple[dict, dict]:
    spec, job = yaml.safe_load_all((ROOT / "templates" / "preprocgate.yml").read_text())
    return spec, job


def _action_steps() -> tuple[str, str]:
    steps = {s.get("name"): s for s in _action()["runs"]["steps"]}
    return steps["Install preprocgate"]["run"], steps["Run the gates"]["run"]


def test_the_version_has_one_source() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    project = pyproject.split("\n[project]\n")[1].split("\n[")[0]
    assert not re.search(r"(?m)^version\s*=", project) and re.search(r'(?m)^dynamic = \["version"\]', project)
    assert 'version = { attr = "preprocgate.version.__version__" }' in pyproject
    assert importlib.metadata.version("preprocgate") == __version__
    assert f"## [{__version__}]" in (ROOT / "CHANGELOG.md").read_text()


def test_the_action_and_the_component_run_the_same_shell_steps() -> None:
    """Same text, and every variable the text reads is set by both (the GitHub output file and the dotenv file
    each by its own CI): so running one of them (below) runs the other."""
    _, jobs = _component()
    install, run = _action_steps()
    (job,) = jobs.values()
    assert job["script"] == [install, run]
    read = set(re.findall(r"\$\{?(PREPROCGATE_\w+)", install + run))
    action_env = {k for s in _action()["runs"]["steps"] for k in s.get("env", {})}
    assert read - action_env == {"PREPROCGATE_DOTENV"}  # GitHub: outputs go to $GITHUB_OUTPUT instead
    assert read <= set(job["variables"])


def test_every_input_is_used() -> None:
    action = (ROOT / "action.yml").read_text()
    for name in _action()["inputs"]:
        assert f"inputs.{name}" in action, name
    spec, _ = _component()
    component = (ROOT / "templates" / "preprocgate.yml").read_text()
    for name in spec["spec"]["inputs"]:
        assert f"$[[ inputs.{name} ]]" in component, name


def _env(**extra: str) -> dict[str, str]:
    """The environment of a CI job: none of this test run's CI variables, no way to import the clone."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GITLAB_", "CI_", "PYTHONPATH"))}
    env.pop("GITLAB_CI", None)
    env.pop("GITHUB_ACTIONS", None)
    return {**env, "TRITON_INTERPRET": "1", **extra}


def _sh(script: str, cwd: Path, env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@slow
def test_action_and_component_pass_their_schemas(tmp_path: Path) -> None:
    """check-jsonschema's vendored schemas (offline): GitHub's action metadata and GitLab's CI file, each of the
    component's two documents on its own; a misspelled key fails, so the check can fail."""
    spec, job = (ROOT / "templates" / "preprocgate.yml").read_text().split("\n---\n")
    (tmp_path / "spec.yml").write_text(spec)
    (tmp_path / "job.yml").write_text(job)
    (tmp_path / "bad.yml").write_text(job.replace("\n  stage:", "\n  stag:"))
    checker = str(BIN / "check-jsonschema")
    checks = [
        ("vendor.github-actions", ROOT / "action.yml", 0),
        ("vendor.gitlab-ci", tmp_path / "spec.yml", 0),
        ("vendor.gitlab-ci", tmp_path / "job.yml", 0),
        ("vendor.gitlab-ci", tmp_path / "bad.yml", 1),
    ]
    for schema, path, code in checks:
        done = subprocess.run([checker, "--builtin-schema", schema, str(path)], capture_output=True, text=True)
        assert done.returncode == code, (path, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`python -m build` from the clone: a wheel and an sdist that `twine check` accepts."""
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    built = sorted(p.name for p in out.iterdir())
    assert built == [f"preprocgate-{__version__}-py3-none-any.whl", f"preprocgate-{__version__}.tar.gz"]
    done = subprocess.run([str(BIN / "twine"), "check", "--strict", *map(str, out.iterdir())], capture_output=True)
    assert done.returncode == 0, done.stdout.decode()[-3000:]
    return out / built[0]


@slow
def test_wheel_and_sdist_hold_the_template_types_marker_and_the_demo(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = ["py.typed", "report/templates/report.md.j2", "demo/demo.yaml", "demo/maskrcnn_mbv3.onnx"]
    assert {f"preprocgate/{name}" for name in shipped} <= names
    assert not [n for n in names if n.startswith(("tests/", "gates/", "models/"))]
    sdist = subprocess.run(
        ["tar", "tzf", str(wheel.with_name(f"preprocgate-{__version__}.tar.gz"))], capture_output=True
    )
    listed = sdist.stdout.decode()
    assert all(f"preprocgate-{__version__}/preprocgate/{name}" in listed for name in shipped)


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Action's install step, as written in action.yml, installing the built wheel into a fresh virtual
    environment (no system site-packages) from a folder outside the clone."""
    install, _ = _action_steps()
    where = tmp_path_factory.mktemp("job")
    env = _env(
        PREPROCGATE_VENV=str(where / "venv"),
        PREPROCGATE_PACKAGE=str(wheel),
        PREPROCGATE_EXTRAS="triton,onnx",
        PREPROCGATE_TORCH_INDEX_URL="",  # the machine's index; on GitHub PyTorch's CPU index
        PREPROCGATE_PIP_ARGS=f"-q -c {ROOT / 'constraints' / 'cpu.txt'}",
    )
    done = _sh(install, where, env)
    assert done.returncode == 0, done.stderr[-3000:]
    python = where / "venv" / "bin" / "python"
    found = subprocess.run(
        [str(python), "-c", "import preprocgate, sys; print(preprocgate.__file__); print(sys.prefix)"],
        cwd=where,
        env=_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert Path(found[0]).is_relative_to(where / "venv") and not Path(found[0]).is_relative_to(ROOT), found
    return where / "venv"


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@slow
def test_installed_demo_runs_end_to_end_outside_the_clone(venv: Path, cache: Path, tmp_path: Path) -> None:
    """`preprocgate demo` from the installed wheel, cold (dataset generated, every dump computed)."""
    env = _env(PREPROCGATE_CACHE=str(cache))
    done = subprocess.run(
        [str(venv / "bin" / "preprocgate"), "demo", "--junit", "reports/demo.junit.xml"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "PASSED: gate demo" in done.stdout
    data = json.loads((tmp_path / "reports" / "demo.json").read_text())
    assert data["passed"] is True and data["provenance"]["versions"]["preprocgate"] == __version__
    assert Path(data["spec_path"]).is_relative_to(venv)  # the gate shipped in the wheel, not the clone's
    assert {check["kind"] for check in data["checks"]} == {"parity", "accuracy", "diff"}
    assert data["metrics"] and data["diffs"], "the demo gate evaluates the detector"
    assert ET.parse(tmp_path / "reports" / "demo.junit.xml").getroot().iter("testcase")


@slow
def test_the_action_steps_run_the_demo_gate_and_fill_outputs_junit_and_summary(
    venv: Path, cache: Path, tmp_path: Path
) -> None:
    """The Action's run step as written in action.yml, with the files GitHub gives a step. The gate is the
    clone's gates/demo.yaml: the same content as the packaged demo, so the cache the installed demo filled
    serves it (a pull request that changes nothing the gate depends on)."""
    _, run = _action_steps()
    outputs, summary = tmp_path / "github_output", tmp_path / "step_summary.md"
    env = _env(
        PREPROCGATE_VENV=str(venv),
        PREPROCGATE_GATES=str(ROOT / "gates" / "demo.yaml"),
        PREPROCGATE_DEVICE="cpu",
        PREPROCGATE_OUTPUT_DIR="reports",
        PREPROCGATE_JUNIT="reports/{gate}.junit.xml",
        PREPROCGATE_POST="false",  # what action.yml computes for a fork's pull request
        PREPROCGATE_FAIL_ON_GATE="true",
        PREPROCGATE_CACHE=str(cache),
        GITHUB_ACTIONS="true",
        GITHUB_OUTPUT=str(outputs),
        GITHUB_STEP_SUMMARY=str(summary),
    )
    done = _sh(run, tmp_path, env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = outputs.read_text().splitlines()
    assert lines == [
        "passed=true",
        "report=reports/demo.md",
        "json=reports/demo.json",
        "junit=reports/demo.junit.xml",
    ]
    data = json.loads((tmp_path / "reports" / "demo.json").read_text())
    cases = list(ET.parse(tmp_path / "reports" / "demo.junit.xml").getroot().iter("testcase"))
    assert len(cases) == len(data["checks"]) > 0
    assert summary.read_text() == (tmp_path / "reports" / "demo.md").read_text()
    assert "preprocgate `demo`: passed" in summary.read_text()


@slow
def test_the_component_steps_write_the_dotenv_and_keep_going_on_a_failed_gate(venv: Path, tmp_path: Path) -> None:
    """The component's run script, as written, with GitLab's variables: a failed gate with fail-on-gate false
    and posting asked for in a merge request without a token (a fork's pipeline)."""
    _, job = _component()
    bad = small_gate(name="bad", cache_dir="cache")
    bad["probes"]["parity"]["pairs"] = [{"candidate": "torch", "reference": "cv2", "thresholds": {"max_ulp": 0}}]
    (tmp_path / "gates").mkdir()
    write_gate(tmp_path / "gates", bad, "bad.yaml")
    (job,) = job.values()
    variables = {k: str(v) for k, v in job["variables"].items()}
    given = {k: v for k, v in variables.items() if "$" not in v}  # PREPROCGATE_DOTENV among them
    env = _env(
        **{k: v for k, v in given.items() if k != "PREPROCGATE_VENV"},
        PREPROCGATE_VENV=str(venv),
        PREPROCGATE_GATES="gates/*.yaml",
        PREPROCGATE_PACKAGE="unused",
        PREPROCGATE_DEVICE="",
        PREPROCGATE_OUTPUT_DIR="reports",
        PREPROCGATE_JUNIT="reports/{gate}.junit.xml",
        PREPROCGATE_POST="true",
        PREPROCGATE_FAIL_ON_GATE="false",
        GITLAB_CI="true",
        CI_PROJECT_ID="7",
        CI_MERGE_REQUEST_IID="3",
        CI_API_V4_URL="http://127.0.0.1:9/api/v4",
    )
    done = _sh(job["script"][1], tmp_path, env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "FAILED: gate bad" in done.stdout and "note: not posting" in done.stdout
    dotenv = (tmp_path / "preprocgate.env").read_text().splitlines()
    assert dotenv == [
        "PREPROCGATE_PASSED=false",
        "PREPROCGATE_REPORT=reports/bad.md",
        "PREPROCGATE_JSON=reports/bad.json",
        "PREPROCGATE_JUNIT=reports/bad.junit.xml",
    ]
    assert ET.parse(tmp_path / "reports" / "bad.junit.xml").getroot().find(".//failure") is not None


@slow
def test_pre_commit_hook_passes_the_demo_gate_and_fails_a_broken_spec(tmp_path: Path) -> None:
    """`pre-commit try-repo` installs the hook from this repository into pre-commit's own environment (pip honours
    PIP_CONSTRAINT: the CPU torch build) and runs it."""
    pre_commit = str(BIN / "pre-commit")
    env = _env(PRE_COMMIT_HOME=str(tmp_path / "pre-commit"), PIP_CONSTRAINT=str(ROOT / "constraints" / "cpu.txt"))
    cmd = [pre_commit, "try-repo", str(ROOT), "preprocgate-validate", "--files"]
    done = subprocess.run([*cmd, "gates/demo.yaml"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert re.search(r"preprocgate validate\.+Passed", done.stdout)

    repo = tmp_path / "repo"
    (repo / "gates").mkdir(parents=True)
    write_gate(repo / "gates", {**small_gate(), "baseline": "nope"}, "broken.yaml")
    shutil.copy(ROOT / "gates" / "demo.yaml", repo / "gates" / "demo.yaml")  # --spec-only: its model need not exist
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "."], cwd=repo, check=True)
    done = subprocess.run(
        [*cmd, "gates/demo.yaml", "gates/broken.yaml"], cwd=repo, env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 1, done.stdout[-3000:]
    assert re.search(r"preprocgate validate\.+Failed", done.stdout)
    assert "ok: gate demo" in done.stdout and "error: " in done.stdout and "gates/broken.yaml" in done.stdout
    assert "baseline" in done.stdout


def test_the_examples_in_docs_ci_use_real_inputs() -> None:
    """Every YAML block of docs/ci.md parses; the Action's `with:` and the component's `inputs:` name inputs that
    exist, so a renamed input cannot leave a stale example behind."""
    blocks = re.findall(r"```yaml\n(.*?)```", (ROOT / "docs" / "ci.md").read_text(), re.S)
    action_inputs = set(_action()["inputs"])
    component_inputs = set(_component()[0]["spec"]["inputs"])
    used = {"action": 0, "component": 0}
    for block in blocks:
        doc = yaml.safe_load(block)
        for job in (doc.get("jobs") or {}).values():
            for step in job.get("steps", []):
                if step.get("uses", "").startswith("OWNER/preprocgate@"):
                    assert set(step.get("with", {})) <= action_inputs
                    used["action"] += 1
        for item in doc.get("include") or []:
            assert set(item.get("inputs", {})) <= component_inputs
            used["component"] += 1
    assert used == {"action": 1, "component": 1}
