from pathlib import Path

from preprocgate.functional.parity import parity_stats
from preprocgate.report.render import MAX_CHARS, md_escape, render_markdown, write_reports
from preprocgate.results import CheckResult, GateResult, PairResult
from preprocgate.spec import ParityThresholds


def _result(description: str = "", probes: int = 1) -> GateResult:
    import numpy as np

    x = np.zeros((3, 2, 2), np.float32)
    per = [parity_stats(x, x, f"probe-{i}|<b>" + "x" * 40) for i in range(probes)]
    from preprocgate.functional.parity import combine

    pair = PairResult("tri|ton", "torch", ParityThresholds(max_ulp=0), combine(per), per)
    return GateResult(
        gate="g",
        description=description,
        spec_path="g.yaml",
        device="CPU",
        baseline="cv2",
        variants={"tri|ton": "kernel <fast>"},
        checks=[CheckResult("parity", "tri|ton vs torch", "max ULP", "≤ 0", "0", True)],
        parity=[pair],
        probes=[p.shapes[0] for p in per],
        provenance={
            "versions": {"preprocgate": "0", "torch": "x"},
            "device": "CPU",
            "commit": None,
            "date": "d",
        },
    )


def test_user_strings_are_escaped() -> None:
    md = render_markdown(_result(description="<script>alert(1)</script> **bold** | pipe\n# heading"))
    assert "<script>" not in md and "&lt;script&gt;" in md
    assert "\\*\\*bold\\*\\*" in md and "\\| pipe" in md
    assert "\n# heading" not in md
    assert "kernel &lt;fast&gt;" in md
    assert "`tri\\|ton`" in md  # code spans keep content verbatim but must not split a table cell


def test_escape_markdown_line_starts() -> None:
    assert md_escape("# x") == "\\# x"
    assert md_escape("1. x") == "1\\. x"
    assert md_escape("- x") == "\\- x"


def test_long_report_is_cut_within_the_limit(tmp_path: Path) -> None:
    result = _result(probes=1200)
    md = render_markdown(result)
    assert len(md) <= MAX_CHARS
    assert "Parity per probe image" not in md  # details dropped first
    assert "## ✅ preprocgate" in md and "### Pixel parity" in md
    result.description = "word " * 20000
    md = render_markdown(result)
    assert len(md) <= MAX_CHARS and "Report cut to 65536 characters" in md
    md_path, json_path = write_reports(result, tmp_path)
    assert md_path.read_text() == md and json_path.exists()


def test_custom_template(tmp_path: Path) -> None:
    tpl = tmp_path / "mine.md.j2"
    tpl.write_text("{{ r.gate }} {{ r.passed | mark }} {{ r.description }}\n")
    md = render_markdown(_result(description="a_b"), tpl)
    assert md == "g ✅ a\\_b\n"
