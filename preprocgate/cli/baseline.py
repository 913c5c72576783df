from __future__ import annotations

import click

from preprocgate.baseline import Baseline, from_result, spec_digest
from preprocgate.cli.options import gate_argument
from preprocgate.engine import RunMode, run_gate
from preprocgate.errors import UserError
from preprocgate.progress import Progress
from preprocgate.results import GateResult
from preprocgate.spec import Gate, load_gate


def _path(gate: Gate):  # type: ignore[no-untyped-def]
    if gate.baseline_path is None:
        raise UserError(f"{gate.path}: the gate has no baselines section")
    return gate.baseline_path


def write_baseline(gate: Gate, result: GateResult, only: set[str] | None = None) -> None:
    """Rewrite ``baselines/<gate>.json`` from a run made in ``RunMode(update_baseline=True)``."""
    path = _path(gate)
    baseline = from_result(result, Baseline.load(path), only)
    baseline.save(path)
    click.echo(f"baseline written: {path} ({', '.join(sorted(only or baseline.variants))})")


@click.group()
def baseline() -> None:
    """Stored baselines: update them after intended changes, show what is stored."""


@baseline.command()
@gate_argument
@click.option("--variant", "variants", multiple=True, help="Update only this variant (repeatable).")
@click.option("--device", help="Override the spec's device.")
def update(gate: str, variants: tuple[str, ...], device: str | None) -> None:
    """Run GATE and rewrite its stored baseline (all variants, or those named)."""
    loaded = load_gate(gate)
    _path(loaded)
    result = run_gate(loaded, device=device, progress=Progress(None), mode=RunMode(update_baseline=True))
    write_baseline(loaded, result, set(variants) or None)


@baseline.command()
@gate_argument
def show(gate: str) -> None:
    """Print the stored baseline of GATE and whether the spec still matches it."""
    loaded = load_gate(gate)
    path = _path(loaded)
    stored = Baseline.load(path)
    if stored is None:
        raise UserError(f"no baseline at {path}; create it with: preprocgate baseline update {gate}")
    p = stored.provenance
    click.echo(f"{path}")
    click.echo(f"  environment {p.get('environment')} · date {p.get('date')} · commit {str(p.get('commit'))[:12]}")
    matches = p.get("spec") == spec_digest(loaded.spec)
    click.echo(
        f"  spec {'matches' if matches else 'differs from'} the stored one (model and dataset are checked on run)"
    )
    for name, entry in sorted(stored.variants.items()):
        metrics = entry.get("metrics", {})
        row = " · ".join(f"{t} AP {m['AP']:.4f}" for t, m in sorted(metrics.items()))
        dump = entry.get("dump", {})
        click.echo(f"  {name:10} {row} · {dump.get('detections')} detections · dump {str(dump.get('digest'))[:12]}")
