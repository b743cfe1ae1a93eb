"""Bench output: what people read (rich table, Markdown, CSV, a latency-vs-accuracy PNG) and
the comparison line against the peer model, all from one report dict.

The report is `measure`'s output: ``report["rows"]`` are `BenchRow.to_dict()` dicts; the
Markdown table and the CSV have the same columns (`flat_rows`), so they always agree.
"""
from __future__ import annotations

from pathlib import Path

from .. import atomic


def write_report(report: dict, out: Path, console) -> dict:
    """bench.json, bench.md, bench.csv and latency_vs_accuracy.png in `out`; the table and
    the peer comparison on the console. Returns {"json": path, "png": path or None}."""
    write_files(report, out)
    png = plot_pareto(report, out / "latency_vs_accuracy.png")
    print_table(report, console)
    if report.get("pipeline") and not report["pipeline"].get("error"):
        from .pipeline import print_table as print_pipeline

        print_pipeline(report["pipeline"], console)
    if report["peer_comparison"]:
        console.print("**against the peer (median ms; ratio ours / theirs, below 1x: ours is faster)**",
                      highlight=False)
        for line in report["peer_comparison"]:
            console.print(line, highlight=False, soft_wrap=True)
    console.print(f"written: {out / 'bench.md'}, bench.json, bench.csv" + (f", {png.name}" if png else ""))
    return {"json": out / "bench.json", "png": png}


def write_files(report: dict, out: Path) -> None:
    """bench.json, bench.md and bench.csv in `out` (atomically), nothing printed."""
    out.mkdir(parents=True, exist_ok=True)
    atomic.write_json(out / "bench.json", report)
    atomic.write_bytes(out / "bench.md", to_markdown(report).encode())
    atomic.write_bytes(out / "bench.csv", to_csv(report).encode())


def has_browser(report: dict) -> bool:
    """True when the report has a browser column (measured in this run or recorded)."""
    return bool((report.get("browser") or {}).get("source"))


def browser_caption(report: dict) -> str:
    """One line saying where the browser column comes from."""
    b = report.get("browser") or {}
    if not b.get("source"):
        return ""
    how = ("measured in this run" if b["source"] == "measured"
           else f"recorded {(b.get('date') or '?')[:10]} in {b.get('file')}")
    return (f"browser = the web demo page in headless Chromium (wasm), steady-state median ms, {how}; "
            "x py = browser / Python median, same artifact and thread count")


def _pareto(points: list[tuple[float, float]]) -> list[int]:
    """Indices of points not dominated (lower latency and higher accuracy are better)."""
    front = []
    for i, (li, ai) in enumerate(points):
        if not any((lj <= li and aj >= ai) and (lj < li or aj > ai) for j, (lj, aj) in enumerate(points) if j != i):
            front.append(i)
    return front


def flat_rows(report: dict) -> list[dict]:
    """One flat dict per row: the columns of the Markdown table and the CSV."""
    threads = report["config"]["threads"]
    out = []
    for r in report["rows"]:
        f = {
            "artifact": r["artifact"], "target": r["target"], "precision": r["precision"],
            "input": r.get("input", ""), "size_kb": r.get("size_kb"), "status": r["status"],
            "load_ms": r.get("load_ms"),
        }
        for t in threads:
            lat = r.get("latency", {}).get(str(t), {})
            f[f"model_ms_t{t}"] = _r(lat.get("model", {}).get("median_ms"))
            f[f"model_p90_t{t}"] = _r(lat.get("model", {}).get("p90_ms"))
            f[f"e2e_ms_t{t}"] = _r(lat.get("e2e", {}).get("median_ms"))
            f[f"e2e_p90_t{t}"] = _r(lat.get("e2e", {}).get("p90_ms"))
            f[f"speedup_t{t}"] = r.get("speedup_vs_fp32", {}).get(str(t))
        if "keras" in r.get("latency", {}):
            f[f"model_ms_t{threads[0]}"] = _r(r["latency"]["keras"]["model"]["median_ms"])
            f[f"model_p90_t{threads[0]}"] = _r(r["latency"]["keras"]["model"]["p90_ms"])
        f["peak_mem_mb"] = r.get("peak_mem_mb")
        p = r.get("parity", {})
        f["max_abs"], f["mean_abs"], f["psnr"], f["parity_iou"] = (_r(p.get(k), 6) for k in ("max_abs", "mean_abs", "psnr", "iou"))
        a = r.get("accuracy", {})
        f["iou"], f["boundary_f"], f["mse"], f["sad"] = (_r(a.get(k), 4) for k in ("iou", "boundary_f", "mse", "sad"))
        f["gflops_t1"] = r.get("gflops_per_s", {}).get(str(threads[0]))
        f["pct_peak_t1"] = r.get("pct_of_peak", {}).get(str(threads[0]))
        if has_browser(report):
            b = r.get("browser") or {}
            for t in threads:
                fig = (b.get("latency") or {}).get(str(t)) or {}
                f[f"browser_ms_t{t}"] = _r(fig.get("median_ms"))
                f[f"browser_p90_t{t}"] = _r(fig.get("p90_ms"))
                f[f"browser_x_py_t{t}"] = fig.get("x_python")
            f["browser_source"] = ("" if not b else b["source"] if b["source"] == "measured"
                                   else f"{b['source']} {(b.get('date') or '?')[:10]}")
            f["browser_note"] = b.get("reason", "")
        f["notes"] = " | ".join(([r["reason"]] if r.get("reason") else []) + r.get("flags", []))
        out.append(f)
    return out


def _r(v, nd=3):
    return None if v is None else round(float(v), nd)


def to_markdown(report: dict) -> str:
    rows = flat_rows(report)
    cols = list(rows[0]) if rows else []
    fmt = lambda v: "" if v is None else str(v).replace("|", "/")  # noqa: E731

    def cell(r, c):  # an artifact the browser did not run: "n/a" (the browser_note column says why)
        if c.startswith("browser_ms_t") and r[c] is None and r.get("browser_note"):
            return "n/a"
        return fmt(r[c])

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(cell(r, c) for c in cols) + " |" for r in rows]
    m = report["machine"]
    head = [
        f"# edgematting bench: {report['model']}",
        "",
        f"{m['platform']}, {m['cpus']} CPUs; matmul peak (LiteRT): "
        + ", ".join(f"{v:.1f} GFLOP/s @{k} thread(s)" for k, v in report["peak_gflops"].items())
        + (f"; model FLOPs {report['flops'] / 1e9:.3f} G" if report.get("flops") else ""),
        "",
    ] + ([browser_caption(report), ""] if has_browser(report) else []) \
        + [f"note: {n}" for n in (report.get("browser") or {}).get("notes", [])] \
        + ([""] if (report.get("browser") or {}).get("notes") else [])
    tail = []
    if report.get("pipeline") and not report["pipeline"].get("error"):
        from .pipeline import to_markdown as pipeline_markdown

        tail = ["", "## Photo pipeline per stage (ms, best of N)", "", pipeline_markdown(report["pipeline"]).rstrip()]
    if report.get("peer_comparison"):
        tail += ["", "## Against the peer (median ms; ratio ours / theirs, below 1x: ours is faster)", "",
                 *report["peer_comparison"]]
    return "\n".join(head + lines + tail) + "\n"


def to_csv(report: dict) -> str:
    import csv
    import io

    rows = flat_rows(report)
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return buf.getvalue()


def plot_pareto(report: dict, path: Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = str(report["config"]["threads"][0])
    pts, labels = [], []
    for r in report["rows"]:
        lat = r.get("latency", {}).get(t, {}).get("model", {}).get("median_ms")
        acc = (r.get("accuracy") or {}).get("iou")
        if acc is None:
            acc = (r.get("parity") or {}).get("iou")
        if lat and acc is not None:
            pts.append((lat, acc))
            labels.append(f"{r['reason']} (peer)" if r["target"] == "peer" else
                          f"{r['target']} {r['precision']}" + (" u8" if "uint8" in r.get("input", "") else ""))
    if not pts:
        return None
    front = _pareto(pts)
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    numbered = len(pts) > 4  # many artifacts: number the points and list the names beside the plot
    fig, ax = plt.subplots(figsize=(9.5 if numbered else 7, 4.8))
    for i, ((x, y), lab) in enumerate(zip(pts, labels)):
        ax.scatter(x, y, s=60 if i in front else 30, c="tab:red" if i in front else "tab:blue", zorder=3,
                   label="Pareto front" if i == front[0] else None)
    # labels: offset alternately up/down among points close in latency, so they do not overlap
    order = sorted(range(len(pts)), key=lambda i: (pts[i][0], pts[i][1]))
    for rank, i in enumerate(order):
        x, y = pts[i]
        text = str(i + 1) if numbered else labels[i]
        dy = 6 if rank % 2 == 0 else -11
        ax.annotate(text, (x, y), fontsize=7, xytext=(5, dy), textcoords="offset points", zorder=4)
    fp = sorted(pts[i] for i in front)
    ax.plot([p[0] for p in fp], [p[1] for p in fp], "r--", lw=1)
    ax.set_xscale("log")  # slow paths (e.g. int16x8) sit an order of magnitude away
    # plain tick labels ("3", "20"), never "3x10^0"
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(NullFormatter())
    lo, hi = min(p[1] for p in pts), max(p[1] for p in pts)
    pad = max(0.01, (hi - lo) * 0.15)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlabel(f"latency, model alone (ms, median, {t} thread, log scale)")
    ax.set_ylabel("IoU on --data" if any(r.get("accuracy") for r in report["rows"]) else "mask IoU vs Keras")
    ax.set_title(f"{report['model']}: latency vs accuracy")
    ax.grid(alpha=0.3)
    # the legend goes outside the data area, never over a point
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    if numbered:
        key = "\n".join(f"{i + 1}  {lab}" for i, lab in enumerate(labels))
        ax.text(1.02, 0.88, key, transform=ax.transAxes, fontsize=7, va="top", family="monospace")
    fig.tight_layout()
    import io

    buf = io.BytesIO()
    fig.savefig(buf, dpi=110)
    plt.close(fig)
    atomic.write_bytes(path, buf.getvalue())
    return path


def print_table(report: dict, console) -> None:
    """The headline columns as a rich table; every note (reasons, slow paths) listed below it.

    The full set of columns is in bench.md / bench.csv / bench.json.
    """
    from rich.table import Table

    threads = report["config"]["threads"]
    prefix = report["model"] + "_"
    tab = Table(title=f"edgematting bench: {report['model']} (ms = median, model alone / end-to-end photo)")
    browser = has_browser(report)
    cols = ["artifact", "status", "KB"] + [f"ms t{t}" for t in threads] + [f"e2e t{t}" for t in threads] + \
        [f"x fp32 t{threads[0]}", "max abs", "IoU/keras", "IoU data"]
    if browser:
        rec = "" if report["browser"]["source"] == "measured" else " (rec.)"
        cols += [f"browser t{t}{rec}" for t in threads] + [f"x py t{t}" for t in threads]
    for c in cols:
        tab.add_column(c, no_wrap=c == "artifact", justify="left" if c in ("artifact", "status") else "right")
    notes = []
    for f in flat_rows(report):
        name = f["artifact"][len(prefix):] if f["artifact"].startswith(prefix) else f["artifact"]
        st = {"verified": "green", "failed": "red", "peer": "cyan"}.get(f["status"], "white")
        flag = " *" if f["notes"] else ""
        cells = [
            name + flag, f"[{st}]{f['status']}", _s(f["size_kb"]),
            *[_s(f[f"model_ms_t{t}"]) for t in threads], *[_s(f[f"e2e_ms_t{t}"]) for t in threads],
            _s(f[f"speedup_t{threads[0]}"]), _s(f["max_abs"]), _s(f["parity_iou"]), _s(f["iou"]),
        ]
        if browser:
            why = f["browser_note"]
            # no figure: "n/a", the reason listed below the table (never a blank cell for an artifact)
            cells += [_s(f[f"browser_ms_t{t}"]) if f[f"browser_ms_t{t}"] is not None else ("n/a" if why else "")
                      for t in threads]
            cells += [f"x{f[f'browser_x_py_t{t}']:.2f}" if f[f"browser_x_py_t{t}"] is not None else "" for t in threads]
            if why and not f["notes"]:
                cells[0] = name + " *"
        tab.add_row(*cells)
        row_notes = [f["notes"]] if f["notes"] else []
        if browser and f["browser_note"]:
            row_notes.append(f"browser: {f['browser_note']}")
        if row_notes:
            notes.append(f"* {name}: {' | '.join(row_notes)}")
    from ..console import show_table

    show_table(tab, console)
    if browser:
        console.print(browser_caption(report), highlight=False)
    for n in notes:
        console.print(n, highlight=False)


def _s(v):
    return "" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))


def peer_comparison(report: dict) -> list[str]:
    """The table of ours against the peer per thread count: the fastest (end to end) full-int8
    TFLite row, model alone and end to end per photo, as "ours / peer (ratio)" where the ratio
    is ours / peer (below 1x: ours is faster). Markdown lines; [] without a peer row."""
    peer = next((r for r in report["rows"] if r["target"] == "peer"), None)
    if not peer:
        return []
    ours = [r for r in report["rows"] if r["target"] == "tflite" and r["precision"] == "int8" and r.get("latency")]
    name = peer["reason"]
    rows = []
    for t in report["config"]["threads"]:
        cand = [r for r in ours if str(t) in r["latency"]]
        if not cand or str(t) not in peer["latency"]:
            continue
        best = min(cand, key=lambda r: r["latency"][str(t)]["e2e"]["median_ms"])
        a, b = best["latency"][str(t)], peer["latency"][str(t)]

        def pair(k):
            x, y = a[k]["median_ms"], b[k]["median_ms"]
            return f"{x:.2f} / {y:.2f} ({x / y:.2f}x)"

        iou = (f"{best['accuracy']['iou']:.4f} / {peer['accuracy']['iou']:.4f}"
               if best.get("accuracy") and peer.get("accuracy") else "")
        rows.append(f"| {t} | {pair('model')} | {pair('e2e')} | {iou} | {best['artifact']} |")
    if not rows:
        return []
    return [f"| threads | model ms (ours / {name}) | end-to-end ms per photo (ours / {name}) | "
            f"IoU on --data (ours / {name}) | ours |", "|---|---|---|---|---|", *rows]
