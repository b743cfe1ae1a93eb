"""The bench's "browser" column: the web demo page's steady-state figures in headless Chromium.

``MODEL_DIR/bench/browser.json`` (`BROWSER_BENCH_FILE`, written by `write_browser_bench`) holds
one row per artifact, thread count and page runtime: the page's first call and steady-state
median / p90 (ms), and the artifact's fingerprint (sha256, bytes, mtime_ns) when it was measured.
It is written by ``edgematting bench --browser`` (measured in this run, through
`edgematting.web_demo.browser_timings`), by web_demo/test/latency.py and by the Chromium test.

Without --browser, bench shows the recorded figures of the artifacts they were measured on:
an entry counts only when its fingerprint matches the file now (sha256, or size and mtime when
no sha256 was recorded), never by name alone; the others are stale and left out with one note.

This module only reads, matches, writes and attaches figures; it drives no browser (the web
demo sits above the bench in the layers, so `bench.run` takes the measuring function as an
argument).

    >>> doc = load_browser_bench(path)                    # None when absent
    >>> figures, reasons, notes = recorded_figures(doc, {"m_fp32.tflite": Path(...)}, threads=[1, 2])
    >>> attach(report, figures, reasons, source="recorded", date=doc["date"])
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

#: Browser figures beside a model's bench report (MODEL_DIR/bench/): one row per artifact and
#: thread count, each with the page's first call and steady-state median / p90 (ms), cross-origin
#: isolation, the artifact's fingerprint, and the Python runtime's figure when it was measured.
BROWSER_BENCH_FILE = "browser.json"
BROWSER_BENCH_FORMAT = "edgematting-browser-bench"
#: Targets the page runs (LiteRT.js / MediaPipe Tasks for .tflite, onnxruntime-web for .onnx).
BROWSER_TARGETS = ("tflite", "onnx")
#: Page runtimes that give the column (the page's default per format); MediaPipe Tasks rows of
#: latency.py --mediapipe stay in browser.json only.
COLUMN_RUNTIMES = (None, "litert", "ort")

#: (artifacts, thread counts) -> {(artifact name, threads): page timing dict or {"error": why}}
BrowserMeasure = Callable[[list, list], dict]


def fingerprint(path: Path) -> dict:
    """What tells that a recorded figure belongs to this very file."""
    from .. import atomic

    st = Path(path).stat()
    return {"sha256": atomic.digest(path), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


def write_browser_bench(rows: list[dict], path: Path, source: str, extra: dict | None = None,
                        artifacts=None) -> Path:
    """Write browser timing rows as JSON (atomically) for `edgematting bench` and people to read.

    With ``artifacts`` (paths), each row naming one of them gets its fingerprint, which is what
    lets bench use the row later (a row without one is shown to people only)."""
    from datetime import datetime, timezone

    from .. import atomic

    prints = {Path(a).name: fingerprint(Path(a)) for a in (artifacts or [])}
    rows = [{**r, **prints.get(r.get("artifact"), {})} for r in rows]
    doc = {"format": BROWSER_BENCH_FORMAT, "format_version": 1, "source": source,
           "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), **(extra or {}), "rows": rows}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic.write_json(path, doc)


def load_browser_bench(path: Path) -> dict | None:
    """The document at `path`, or None when there is none or it is not a browser bench file."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("format") != BROWSER_BENCH_FORMAT or not isinstance(doc.get("rows"), list):
        return None
    return doc


def matches(entry: dict, path: Path, digests: dict | None = None) -> bool:
    """True when `entry` was measured on the file at `path` as it is now: same sha256, or, when
    the entry has none, same size and mtime. A name alone never matches. ``digests`` caches
    the sha256 of each path across calls."""
    st = path.stat()
    if entry.get("sha256"):
        if entry.get("bytes") is not None and entry["bytes"] != st.st_size:
            return False  # cheap: no hashing a file of another size
        from .. import atomic

        digests = {} if digests is None else digests
        if path not in digests:
            digests[path] = atomic.digest(path)
        return entry["sha256"] == digests[path]
    if entry.get("bytes") is not None and entry.get("mtime_ns") is not None:
        return entry["bytes"] == st.st_size and entry["mtime_ns"] == st.st_mtime_ns
    return False


def _figure(entry: dict) -> dict | None:
    b = entry.get("browser") or {}
    if not isinstance(b, dict) or b.get("median_ms") is None:
        return None
    keep = ("median_ms", "p90_ms", "first_ms", "runs", "warmups", "threads", "backend", "cross_origin_isolated")
    return {k: b[k] for k in keep if k in b}


def recorded_figures(doc: dict | None, artifacts: dict[str, Path],
                     threads: list[int]) -> tuple[dict, dict[str, str], list[str]]:
    """({(name, threads): figure}, {name: why the page ran nothing}, [one note line]) of the
    entries that match today's files.

    Only entries of `artifacts` (name -> path) at the bench's thread counts on the page's
    default runtime count; entries whose file changed (or that carry no fingerprint) are
    stale: left out, named in the note."""
    if not doc:
        return {}, {}, []
    figures, reasons, stale, digests = {}, {}, [], {}
    for e in doc["rows"]:
        if not isinstance(e, dict):
            continue
        name, t = e.get("artifact"), e.get("threads")
        if name not in artifacts or t not in threads or e.get("runtime") not in COLUMN_RUNTIMES:
            continue
        fig = _figure(e)
        if fig is None and not e.get("error"):
            continue
        if not matches(e, artifacts[name], digests):
            if name not in stale:
                stale.append(name)
            continue
        if fig is None:
            reasons.setdefault(name, str(e["error"]))
        else:
            figures[(name, t)] = fig
    notes = []
    if stale:
        notes.append(f"{BROWSER_BENCH_FILE} of {doc.get('date', '?')}: ignored the stale entries of "
                     f"{', '.join(stale)} (the file changed since, or no fingerprint was recorded)")
    return figures, reasons, notes


def browser_reason(row: dict) -> str | None:
    """Why a bench row gets no browser figure (None: the page can run it)."""
    if row["target"] in ("keras", "peer"):
        return ""  # not an artifact of this model: no column, no note
    if row["target"] not in BROWSER_TARGETS:
        return f"no browser runtime for {row['target']} (the page runs .tflite and .onnx)"
    if row["status"] == "failed":
        return "not run in the browser: the artifact failed in Python"
    return None


def attach(report: dict, figures: dict, reasons: dict[str, str], source: str, date: str | None = None,
           file: str | None = None, notes: list[str] | None = None, error: str | None = None) -> dict:
    """Put the browser figures into the report: ``row["browser"]`` per row and
    ``report["browser"]`` (source "measured" or "recorded", date, file, notes, error).

    ``figures[(name, threads)]`` are page timing dicts (median_ms, p90_ms, first_ms, ...);
    ``reasons[name]`` says why an artifact has none (the page refused it, ...). Each figure
    gets ``x_python``: browser median / Python median of the same artifact and thread count."""
    threads = report["config"]["threads"]
    for r in report["rows"]:
        why = browser_reason(r)
        if why == "":
            continue
        lat = {}
        for t in threads:
            fig = figures.get((r["artifact"], t))
            if fig is None:
                continue
            fig = dict(fig)
            py = (r.get("latency", {}).get(str(t), {}).get("model") or {}).get("median_ms")
            if py and fig.get("median_ms"):
                fig["x_python"] = round(fig["median_ms"] / py, 2)
            lat[str(t)] = fig
        reason = why or reasons.get(r["artifact"]) or ""
        if not lat and not reason:
            reason = ("no figure recorded for this file" if source == "recorded"
                      else "not measured in the browser")
        ran = [f for f in lat.values() if f.get("threads") is not None]
        wanted = [int(t) for t in lat]
        if ran and any(f["threads"] != w for f, w in zip(lat.values(), wanted)):
            got = ", ".join(f"{w}->{f['threads']}" for f, w in zip(lat.values(), wanted))
            reason = "; ".join(x for x in (reason, f"the page ran other thread counts than asked ({got})") if x)
        r["browser"] = {"source": source, "date": date, "latency": lat, "reason": reason}
    report["browser"] = {"source": source, "date": date, "file": file, "notes": list(notes or []), "error": error}
    return report


def artifact_paths(report: dict, export_dir: Path) -> dict[str, Path]:
    """name -> path of the rows the page could run (tflite/onnx, not failed, file present)."""
    out = {}
    for r in report["rows"]:
        p = Path(export_dir) / r["artifact"]
        if browser_reason(r) is None and p.is_file():
            out[r["artifact"]] = p
    return out


def measured_rows(report: dict, figures: dict, artifacts: dict[str, Path], reasons: dict | None = None) -> list[dict]:
    """browser.json rows (with the Python figure of the same run) for what was measured, and
    one ``error`` row per thread count for each artifact the page refused (``reasons``), so
    that the refusal shows again as recorded."""
    by_name = {r["artifact"]: r for r in report["rows"]}
    rows = []
    for name, why in sorted((reasons or {}).items()):
        r = by_name.get(name, {})
        if name in artifacts and not any(k[0] == name for k in figures) and not why.startswith("Chromium run failed"):
            rows += [{"artifact": name, "target": r.get("target"), "precision": r.get("precision"),
                      "input": r.get("input"), "threads": t, "runtime": None, "error": why}
                     for t in report["config"]["threads"]]
    for (name, t), fig in sorted(figures.items()):
        r = by_name.get(name, {})
        py = (r.get("latency", {}).get(str(t), {}).get("model") or {})
        row = {"artifact": name, "target": r.get("target"), "precision": r.get("precision"), "input": r.get("input"),
               "threads": t, "runtime": fig.get("runtime"),
               "browser": {k: v for k, v in fig.items() if k != "runtime"}}
        if py.get("median_ms"):
            row["python"] = {"median_ms": py["median_ms"], "p90_ms": py.get("p90_ms"), "runs": py.get("runs")}
            row["ratio"] = round(fig["median_ms"] / py["median_ms"], 2)
        rows.append(row)
    return sorted(rows, key=lambda r: (r["artifact"], r["threads"]))


def merge_rows(old: dict | None, new: list[dict]) -> list[dict]:
    """The new rows, plus the old file's rows of other (artifact, threads, runtime) keys
    (e.g. latency.py's MediaPipe rows), so that a bench run does not drop them."""
    key = lambda r: (r.get("artifact"), r.get("threads"), r.get("runtime"))  # noqa: E731
    # an old row of the page's default runtime (None in files written before it was recorded)
    # is replaced by a new one of the same artifact and thread count
    fresh = {key(r) for r in new} | {(r.get("artifact"), r.get("threads"), None) for r in new}
    kept = [r for r in (old or {}).get("rows", []) if isinstance(r, dict) and key(r) not in fresh]
    return new + kept
