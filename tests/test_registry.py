import sys
from pathlib import Path

import pytest

from preprocgate.errors import UnknownNameError
from preprocgate.registry import Registry


def test_lazy_target_imports_on_first_get() -> None:
    reg: Registry[object] = Registry("thing", "preprocgate.tests.none")
    reg.register("path", "pathlib:Path")
    assert reg.target_of("path") == "pathlib:Path"
    assert reg.get("path") is Path


def test_decorator_registration_and_did_you_mean() -> None:
    reg: Registry[object] = Registry("variant", "preprocgate.tests.none")

    @reg.register("triton")
    def factory() -> None: ...

    assert reg.get("triton") is factory
    with pytest.raises(UnknownNameError, match="did you mean 'triton'"):
        reg.get("triton2")


def test_entry_points_are_discovered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dist = tmp_path / "plugin_pkg-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: plugin-pkg\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[preprocgate.tests.group]\nfancy = json:dumps\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg: Registry[object] = Registry("variant", "preprocgate.tests.group")
    assert "fancy" in reg.names()
    assert reg.get("fancy") is sys.modules["json"].dumps
