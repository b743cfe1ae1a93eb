"""`edgematting bench`: measure every artifact of a model side by side and report it.

    >>> from edgematting.bench.run import BenchConfig, run_bench
    >>> report = run_bench(BenchConfig(model="runs/fs", threads=[1, 2], data="heldout/"))

Measuring lives in `bench.measure` (typed `BenchRow`s), output in `bench.report`.
"""
from __future__ import annotations

from pathlib import Path

from .measure import BenchConfig, BenchRow, measure, resolve_model
from .report import flat_rows, peer_comparison, to_csv, to_markdown, write_report

__all__ = ["BenchConfig", "BenchRow", "run_bench", "flat_rows", "peer_comparison", "to_csv", "to_markdown"]


def run_bench(cfg: BenchConfig, console=None) -> dict:
    """Run the whole benchmark; returns the report dict (also written under cfg.out,
    default MODEL_DIR/bench)."""
    from rich.console import Console

    console = console or Console()
    model_dir, _ = resolve_model(cfg.model)
    out = Path(cfg.out) if cfg.out else model_dir / "bench"
    report = measure(cfg, console, out)
    report["peer_comparison"] = peer_comparison(report)
    written = write_report(report, out, console)
    report["json"] = str(written["json"])
    return report
