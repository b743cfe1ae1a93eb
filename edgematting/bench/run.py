"""`edgematting bench`: measure every artifact of a model side by side and report it.

    >>> from edgematting.bench.run import BenchConfig, run_bench
    >>> report = run_bench(BenchConfig(model="runs/fs", threads=[1, 2], data="heldout/"))

Measuring lives in `bench.measure` (typed `BenchRow`s), output in `bench.report`, the browser
column in `bench.browser`: measured in this run when a `browser` hook is given (``bench
--browser``: `edgematting.web_demo.bench_measurer`), else the figures recorded in
browser.json for these very files, if any.
"""
from __future__ import annotations

from pathlib import Path

from .measure import BenchConfig, BenchRow, measure, resolve_model
from .report import flat_rows, peer_comparison, to_csv, to_markdown, write_files, write_report

__all__ = ["BenchConfig", "BenchRow", "run_bench", "flat_rows", "peer_comparison", "to_csv", "to_markdown"]


def run_bench(cfg: BenchConfig, console=None, browser=None) -> dict:
    """Run the whole benchmark; returns the report dict (also written under cfg.out,
    default MODEL_DIR/bench).

    ``browser``: (artifact paths, thread counts) -> ({(name, threads): figure}, {name: why none})
    measures the browser column after the Python rows (which are written first, so a browser
    run that dies loses nothing) and records it in browser.json; without it, the figures
    recorded there for these very files (fingerprint match) make the column."""
    from rich.console import Console

    console = console or Console()
    model_dir, export_dir = resolve_model(cfg.model)
    out = Path(cfg.out) if cfg.out else model_dir / "bench"
    report = measure(cfg, console, out)
    report["peer_comparison"] = peer_comparison(report)
    if browser is not None:
        write_files(report, out)  # the Python rows, before minutes in a browser
        _measure_browser(report, browser, export_dir, out, cfg, console)
    else:
        _recorded_browser(report, export_dir, [out, model_dir / "bench"], cfg, console)
    written = write_report(report, out, console)
    report["json"] = str(written["json"])
    return report


def _measure_browser(report: dict, browser, export_dir: Path, out: Path, cfg: BenchConfig, console) -> None:
    from datetime import datetime, timezone

    from . import browser as B

    paths = B.artifact_paths(report, export_dir)
    console.print(f"browser: {len(paths)} artifact(s) in headless Chromium at {', '.join(map(str, cfg.threads))} "
                  "thread(s)...", highlight=False)
    figures, reasons = browser(list(paths.values()), cfg.threads) if paths else ({}, {})
    date = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    file = out / B.BROWSER_BENCH_FILE
    failed = [w for w in reasons.values() if w.startswith("Chromium run failed")]
    error = failed[0] if paths and not figures and failed else None
    if figures:
        old = B.load_browser_bench(file)
        B.write_browser_bench(B.merge_rows(old, B.measured_rows(report, figures, paths, reasons)), file,
                              source="edgematting bench --browser", artifacts=list(paths.values()))
    B.attach(report, figures, reasons, "measured", date=date, file=str(file) if figures else None, error=error)


def _recorded_browser(report: dict, export_dir: Path, folders: list[Path], cfg: BenchConfig, console) -> None:
    from . import browser as B

    all_notes = []
    for folder in dict.fromkeys(folders):  # --out first, then MODEL_DIR/bench
        doc = B.load_browser_bench(folder / B.BROWSER_BENCH_FILE)
        if doc is None:
            continue
        figures, reasons, notes = B.recorded_figures(doc, B.artifact_paths(report, export_dir), cfg.threads)
        for n in notes:
            console.print(f"[yellow]{n}", highlight=False)
        all_notes += notes
        if figures:
            B.attach(report, figures, reasons, "recorded", date=doc.get("date"),
                     file=str(folder / B.BROWSER_BENCH_FILE), notes=notes)
            return
    if all_notes:
        report["browser"] = {"source": None, "notes": all_notes}
