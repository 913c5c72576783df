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
    md = render_markdown(_result(description="_a_b"), tpl)
    assert md == "g ✅ \\_a_b\n"  # an underscore inside a word emphasises nothing: left as written


def test_failed_checks_come_first_with_what_to_do() -> None:
    from tests.helpers.results import demo_like

    md = render_markdown(demo_like(failing=True))
    failed_at = md.index("### Failed checks")
    assert md.index("## ❌ preprocgate `demo`: failed") < failed_at < md.index("### Charts") < md.index("### Pixel")
    failed_table = md[failed_at : md.index("What to do next")]
    assert "✅" not in failed_table and failed_table.count("| ❌") == 6
    assert "`preprocgate baseline update gates/demo.yaml`" in md
    assert "the study" not in md and "mask-md5" not in md


def test_passing_gate_folds_its_checks_and_marks_gated_metrics() -> None:
    from tests.helpers.results import demo_like

    md = render_markdown(demo_like())
    assert "### Failed checks" not in md
    assert "- ✅ pixel parity: 4 checks passed, 2 pairs" in md
    assert md.index("<details><summary>All 12 checks</summary>") < md.index("| ✅ | parity: max ULP")
    assert "| bbox AP (gated) |" in md and "| bbox AP75 |" in md and "| segm AP50 |" in md


def test_metric_rows_keep_one_order_whatever_order_a_cache_gives() -> None:
    from preprocgate.report.render import stable_part
    from tests.helpers.results import demo_like

    cold, warm = render_markdown(demo_like()), render_markdown(demo_like(reverse=True))
    assert cold == warm
    rows = [line.split(" |")[0] for line in cold.splitlines() if line.startswith("| bbox AP")]
    assert rows == ["| bbox AP (gated)", "| bbox AP50 (gated)", "| bbox AP75", "| bbox APs", "| bbox APm", "| bbox APl"]
    other = demo_like()
    other.duration_s, other.stage_seconds = 99.0, {"dump cv2": 0.0}
    other.provenance = {**other.provenance, "date": "2027-01-01T00:00:00Z"}
    assert render_markdown(other) != cold and stable_part(render_markdown(other)) == stable_part(cold)


def test_numbers_are_written_for_people() -> None:
    from preprocgate import numbers
    from tests.helpers.results import demo_like

    assert numbers.percent(0.99646643) == "99.65%" and numbers.percent(0.9999996) == "99.99996%"
    assert numbers.percent(1.0) == "100%" and numbers.percent(0.0) == "0%"
    assert numbers.signed(-0.00001) == "0.0000" and numbers.signed(0.0) == "0" and numbers.signed(0.002) == "+0.0020"
    assert numbers.count(8172675) == "8,172,675"
    md = render_markdown(demo_like())
    assert "-0.0000" not in md and "\\+" not in md and "\\." not in md and "x86_64" in md
    assert md.count("CPU x86_64 (test machine)") == 1  # the device once


def test_links_and_artifacts_url() -> None:
    from tests.helpers.results import demo_like

    md = render_markdown(
        demo_like(), links={"CI run": "https://ci.example/runs/1?a=(b)"}, artifacts_url="https://ci.example/art/"
    )
    assert "[CI run](https://ci.example/runs/1?a=%28b%29)" in md
    assert "[demo.json](https://ci.example/art/demo.json)" in md
    assert "(https://ci.example/art/demo-pictures/parity-triton-vs-torch.png)" in md
    assert "`demo-pictures/parity-triton-vs-torch.png`" in render_markdown(demo_like())


def test_reports_are_readable_by_others_under_the_usual_umask(tmp_path: Path) -> None:
    import os

    old = os.umask(0o022)
    try:
        md_path, json_path = write_reports(_result(), tmp_path)
    finally:
        os.umask(old)
    assert md_path.stat().st_mode & 0o777 == 0o644 and json_path.stat().st_mode & 0o777 == 0o644
