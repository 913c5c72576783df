from __future__ import annotations

import click

from preprocgate.baseline import Baseline, spec_digest, stored_baseline_path, write_baseline
from preprocgate.cli.options import device_option, gate_argument, load
from preprocgate.engine import RunMode, run_gate
from preprocgate.errors import UserError
from preprocgate.progress import Progress


@click.group()
def baseline() -> None:
    """Stored baselines (baselines/<gate>.json): update them after intended changes, show what is stored."""


@baseline.command()
@gate_argument
@click.option("--variant", "variants", multiple=True, help="Update only this variant (repeatable).")
@device_option
def update(gate: str, variants: tuple[str, ...], device: str | None) -> None:
    """Run GATE and rewrite its stored baseline (all variants, or those named)."""
    loaded = load(gate)
    stored_baseline_path(loaded)
    result = run_gate(loaded, device=device, progress=Progress(None), mode=RunMode(update_baseline=True))
    path, written = write_baseline(loaded, result, set(variants) or None)
    click.echo(f"baseline written: {path} ({', '.join(written)})")


@baseline.command()
@gate_argument
def show(gate: str) -> None:
    """Print the stored baseline of GATE and whether the spec still matches it."""
    loaded = load(gate)
    path = stored_baseline_path(loaded)
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
