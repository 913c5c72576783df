"""The package's shape: its public API list, and that every module imports first, in any order (an import cycle
shows up as a module that fails when imported before its partner). The layer contracts themselves are
import-linter's ([tool.importlinter] in pyproject.toml, run by .ci/run)."""

import pkgutil
import random
import subprocess
import sys

import pytest

import preprocgate

PUBLIC = [
    "CheckResult",
    "Gate",
    "GateResult",
    "GateSpec",
    "PairResult",
    "PreprocgateError",
    "PublishError",
    "RunError",
    "SpecError",
    "Timing",
    "UserError",
    "__version__",
    "load_gate",
    "run_gate",
]


def test_public_api_is_the_documented_list() -> None:
    assert sorted(preprocgate.__all__) == PUBLIC
    for name in PUBLIC:
        assert getattr(preprocgate, name) is not None


def _modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(preprocgate.__path__, "preprocgate."))


def test_every_module_is_found() -> None:
    modules = _modules()
    assert {"preprocgate.engine", "preprocgate.stages.detection", "preprocgate.cli.run"} <= set(modules)
    assert len(modules) > 50


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_module_imports_in_any_order(seed: int) -> None:
    """A fresh interpreter imports every module in a shuffled order: a module that imports only after some other
    one did (half of a cycle) fails in the orders that put it first."""
    modules = _modules()
    random.Random(seed).shuffle(modules)
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    done = subprocess.run([sys.executable, "-c", code, *modules], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
