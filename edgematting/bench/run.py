"""`edgematting bench`: every artifact of a model side by side, in one run.

For each artifact (and the Keras reference, and an optional peer model): file size,
load time, latency median/p90 per thread count for the model alone and for the
end-to-end photo pipeline (decoded photo -> resize -> inference -> alpha resized back ->
composite, `edgematting.imageops`), peak memory, parity against Keras (the verify
machinery), accuracy on `--data`, speed-up against fp32 of the same target, achieved
GFLOP/s against this machine's matmul peak, and flags for known slow paths.
All timings come from one process in one run so that ratios hold on a noisy machine.
"""
from __future__ import annotations

import json
import platform
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import EdgemattingError, InputError
from ..modelio import SPEC_FILE, atomic_write_bytes, atomic_write_json, load_spec
from .timing import PeakRSS, matmul_peak_gflops, time_fn

#: Precisions converted by default when the export folder lacks them (int8-qat fine-tunes
#: a model and is only run when asked for with --precisions).
DEFAULT_PRECISIONS = ("fp32", "fp16", "dynamic", "int8", "int16x8")
SUFFIX_TARGET = {".tflite": "tflite", ".onnx": "onnx", ".mlpackage": "coreml"}


@dataclass
class BenchConfig:
    model: str
    targets: list[str] | None = None
    precisions: list[str] | None = None
    threads: list[int] = field(default_factory=lambda: [1])
    runs: int = 50
    warmup: int = 5
    data: str | None = None
    data_limit: int = 32
    peer: str | None = None
    out: str | None = None
    convert_missing: bool = True
    keep_float: int = 0  # >0: also build a TFLite int8 model with the N worst layers float
    int8_debug: bool = True  # per-layer int8 error report for full-integer TFLite
    photo_size: tuple[int, int] = (720, 960)  # synthetic photo when no --data

    def __post_init__(self):
        from ..converters.base import Precision, get_target

        if self.targets:
            self.targets = [get_target(t).name for t in self.targets]
        if self.precisions:
            valid = [p.value for p in Precision]
            bad = [p for p in self.precisions if p not in valid]
            if bad:
                raise InputError(f"Unknown precision(s) {bad}. Valid: {', '.join(valid)}.")
        if not self.threads or any(int(t) < 1 for t in self.threads):
            raise InputError("--threads takes positive integers, e.g. 1,2")
        self.threads = [int(t) for t in self.threads]
        if self.runs < 1 or self.warmup < 0:
            raise InputError("--runs must be >= 1 and --warmup >= 0")


# ----------------------------------------------------------------------------- inputs
def _photos(cfg: BenchConfig, spec):
    """(photos for timing/accuracy, ground-truth alphas or None)."""
    if cfg.data:
        from ..data.folder import load_sample, scan_folder

        samples = scan_folder(cfg.data)[: cfg.data_limit]
        loaded = [load_sample(s) for s in samples]
        return [s["image"] for s in loaded], [s["alpha"] for s in loaded]
    from ..data.synthetic import SyntheticPortraits

    gen = SyntheticPortraits(size=cfg.photo_size, seed=4242)
    s = gen.sample(0)
    return [s["image"]], None


class Pipeline:
    """Native pre/post-processing of one artifact, from its metadata only, as an app does.

    It is `edgematting.android.model_input` / `output_to_alpha` (the Python definition the
    Android demo's Java core is tested against), plus the NCHW transpose ONNX can ask for.
    """

    def __init__(self, meta: dict):
        from ..android import validate_metadata

        self.meta = dict(meta)
        self.nchw = meta["input"].get("layout", "NHWC") == "NCHW"
        if self.nchw:  # the app-side definition is NHWC; transpose around it
            self.meta["input"] = dict(meta["input"], layout="NHWC")
        validate_metadata(self.meta)  # fail here, once, with the offending key
        self.size = (int(meta["input"]["height"]), int(meta["input"]["width"]))

    def preprocess(self, rgb: np.ndarray) -> np.ndarray:
        from ..android import model_input

        x = model_input(rgb, self.meta)
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if self.nchw else x

    def postprocess(self, raw: np.ndarray, photo_hw: tuple[int, int]) -> np.ndarray:
        """Raw output -> alpha at photo size (dequantized, range mapped to [0, 1])."""
        from ..android import output_to_alpha

        a = np.asarray(raw)
        if a.ndim == 4 and a.shape[1] == 1 and a.shape[-1] != 1:  # NCHW output
            a = a.transpose(0, 2, 3, 1)
        return output_to_alpha(a, self.meta, photo_hw)


def _end_to_end(run_raw, pipe: Pipeline, rgb: np.ndarray) -> np.ndarray:
    from ..imageops import composite

    alpha = pipe.postprocess(run_raw(pipe.preprocess(rgb)), rgb.shape[:2])
    return composite(rgb, alpha, (0, 0, 0))


def _accuracy(predict_alpha, photos, gts) -> dict:
    from ..evaluation import metrics as M

    rows = []
    for rgb, gt in zip(photos, gts):
        pred = predict_alpha(rgb)
        rows.append({
            "iou": M.iou(pred, gt), "boundary_f": M.boundary_f(pred, gt),
            "mse": M.mse(pred, gt), "sad": M.sad(pred, gt),
        })
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]} if rows else {}


# ------------------------------------------------------------------------- artifacts
def _find_artifacts(export_dir: Path, cfg: BenchConfig) -> list[Path]:
    found = []
    if export_dir.exists():
        for p in sorted(export_dir.iterdir()):
            target = SUFFIX_TARGET.get(p.suffix)
            if not target or p.name.startswith("."):
                continue
            if cfg.targets and target not in cfg.targets:
                continue
            side = p.with_name(p.name + ".json")
            meta = json.loads(side.read_text()) if side.exists() else {}
            if cfg.precisions and meta.get("precision") not in cfg.precisions:
                continue
            found.append(p)
    return found


def _wanted_conversions(cfg: BenchConfig):
    from ..converters.base import REGISTRY

    targets = cfg.targets or list(REGISTRY)
    precisions = cfg.precisions or list(DEFAULT_PRECISIONS)
    out = []
    for t in targets:
        for p in precisions:
            if REGISTRY[t].supports(p):
                out.append((t, p, "float"))
    if "tflite" in targets and "int8" in precisions:
        out.append(("tflite", "int8", "uint8"))  # the camera-bytes path apps use
    return out


def _convert_missing(model_dir: Path, export_dir: Path, cfg: BenchConfig, console) -> list[dict]:
    """Convert what the export folder lacks; failures become failed rows."""
    from ..converters import convert_model
    from ..converters.base import ExportConfig, artifact_filename

    spec = load_spec(model_dir)
    failed = []
    for target, precision, input_type in _wanted_conversions(cfg):
        try:
            ec = ExportConfig(target=target, precision=precision, input_type=input_type,
                              calib=cfg.data or "synthetic", calib_samples=16)
        except EdgemattingError as e:
            failed.append(_failed_row(target, precision, input_type, str(e)))
            continue
        if (export_dir / artifact_filename(spec.name, ec)).exists():
            continue
        console.print(f"converting {target} {precision} ({input_type} input) ...")
        try:
            convert_model(model_dir, ec, out_dir=export_dir)
        except EdgemattingError as e:
            failed.append(_failed_row(target, precision, input_type, f"{type(e).__name__}: {e}"))
    return failed


def _failed_row(target, precision, input_type, reason, name=None) -> dict:
    return {
        "artifact": name or f"{target}-{precision}-{input_type}", "target": target,
        "precision": precision, "input": input_type, "status": "failed",
        "reason": " ".join(line.strip() for line in reason.strip().splitlines())[:400] if reason else "",
        "latency": {},
    }


def _parity(path: Path, meta: dict, model_dir: Path, data: str | None) -> tuple[dict, str]:
    """Parity figures: from the sidecar when convert verified it, else verify now."""
    ver = meta.get("verification")
    if ver:
        return ver, ("verified" if ver.get("passed") else "failed")
    from ..verify import verify_artifact

    d = verify_artifact(path, model_dir=model_dir, data=data, raise_on_failure=False).to_dict()
    return d, ("verified" if d.get("passed") else "failed")


def _bench_artifact(path: Path, model_dir: Path, cfg: BenchConfig, photos, gts, console) -> dict:
    from ..runners import load_runner

    side = path.with_name(path.name + ".json")
    meta = json.loads(side.read_text()) if side.exists() else {}
    target = meta.get("target") or SUFFIX_TARGET[path.suffix]
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size
    row = {
        "artifact": path.name, "target": target, "precision": meta.get("precision", "?"),
        "input": f"{meta.get('input', {}).get('dtype', '?')} x{meta.get('input', {}).get('channels', 3)}",
        "size_kb": round(size / 1024, 1), "status": "exported", "reason": "", "latency": {},
        "flags": [],
    }
    try:
        parity, status = _parity(path, meta, model_dir, cfg.data)
        row["parity"] = {k: parity.get(k) for k in ("max_abs", "mean_abs", "psnr", "iou", "engine") if k in parity}
        row["status"] = status
        if status == "failed":
            row["reason"] = "; ".join(parity.get("failures", []))[:300] or "parity check failed"
    except Exception as e:  # typed or not, one broken artifact must not stop the table
        row["status"], row["reason"] = "failed", f"verify: {type(e).__name__}: {e}"
        return row

    try:
        pipe = Pipeline(meta) if meta else None
    except EdgemattingError as e:
        row["status"], row["reason"] = "failed", f"metadata: {e}"
        return row
    timed = target != "coreml" or platform.system() == "Darwin"
    if not timed:
        row["flags"].append("no Core ML runtime off macOS: no latency; parity/accuracy from the MIL reference interpreter")
    for t in cfg.threads:
        try:
            with PeakRSS() as mem:
                t0 = time.perf_counter()
                runner = load_runner(path, num_threads=t)
                load_ms = (time.perf_counter() - t0) * 1e3
                if timed and pipe is not None:
                    x = pipe.preprocess(photos[0])
                    model_t = time_fn(lambda: runner.run_raw(x), cfg.runs, cfg.warmup)
                    e2e_t = time_fn(lambda: _end_to_end(runner.run_raw, pipe, photos[0]), max(5, cfg.runs // 5), 1)
                    row["latency"][str(t)] = {"model": model_t.to_dict(), "e2e": e2e_t.to_dict()}
            row.setdefault("load_ms", round(load_ms, 1))
            row["peak_mem_mb"] = max(row.get("peak_mem_mb", 0.0), round(mem.delta_mb, 1))
            if t == cfg.threads[0] and gts is not None and pipe is not None:
                row["accuracy"] = _accuracy(
                    lambda rgb: pipe.postprocess(runner.run_raw(pipe.preprocess(rgb)), rgb.shape[:2]),
                    photos, gts,
                )
        except EdgemattingError as e:
            row["status"], row["reason"] = "failed", f"{type(e).__name__}: {e}"
            break
        except Exception as e:  # a broken artifact must not stop the table
            row["status"], row["reason"] = "failed", f"{type(e).__name__}: {e}"
            console.print(f"[red]{path.name}: {traceback.format_exc(limit=2)}")
            break
    return row


def _keras_row(model_dir: Path, spec, cfg: BenchConfig, photos, gts) -> dict:
    from ..modelio import load_model_dir

    with PeakRSS() as mem:
        t0 = time.perf_counter()
        model, spec = load_model_dir(model_dir)
        load_ms = (time.perf_counter() - t0) * 1e3
        from ..imageops import to_model_input

        prep = lambda rgb: to_model_input(rgb, spec.input_size, spec.mean, spec.std)  # noqa: E731
        fn = model.__call__
        run_raw = lambda x: fn(x, training=False).numpy()  # noqa: E731
        row = {"artifact": "model.keras", "target": "keras", "precision": "fp32", "input": "float32 x3",
               "size_kb": round((model_dir / "model.keras").stat().st_size / 1024, 1),
               "status": "reference", "reason": "", "latency": {}, "flags": [], "load_ms": round(load_ms, 1)}
        x = prep(photos[0])
        m = time_fn(lambda: run_raw(x), max(5, cfg.runs // 5), 2)
        row["latency"]["keras"] = {"model": m.to_dict()}
    row["peak_mem_mb"] = round(mem.delta_mb, 1)
    if gts is not None:
        from ..imageops import alpha_to_photo

        row["accuracy"] = _accuracy(lambda rgb: alpha_to_photo(run_raw(prep(rgb)), rgb.shape[:2]), photos, gts)
    return row


def _peer_rows(cfg: BenchConfig, photos, gts) -> list[dict]:
    from ..imageops import composite
    from .peer import resolve_peer

    peer = resolve_peer(cfg.peer)
    if peer is None:
        return []
    row = {"artifact": peer.path.name, "target": "peer", "precision": "fp32 (peer)", "input": "float32 x3",
           "size_kb": round(peer.path.stat().st_size / 1024, 1), "status": "peer",
           "reason": peer.name, "latency": {}, "flags": []}
    for t in cfg.threads:
        with PeakRSS() as mem:
            t0 = time.perf_counter()
            r = peer.runner(num_threads=t)
            row.setdefault("load_ms", round((time.perf_counter() - t0) * 1e3, 1))
            x = r.preprocess(photos[0])
            m = time_fn(lambda: r.run_raw(x), cfg.runs, cfg.warmup)
            e = time_fn(lambda: composite(photos[0], r.predict_photo(photos[0]), (0, 0, 0)), max(5, cfg.runs // 5), 1)
            row["latency"][str(t)] = {"model": m.to_dict(), "e2e": e.to_dict()}
        row["peak_mem_mb"] = max(row.get("peak_mem_mb", 0.0), round(mem.delta_mb, 1))
        if t == cfg.threads[0] and gts is not None:
            row["accuracy"] = _accuracy(r.predict_photo, photos, gts)
    return [row]


# ---------------------------------------------------------------------- derived columns
def _derive(rows: list[dict], threads: list[int], flops: int | None, peaks: dict[int, float]) -> None:
    fp32 = {r["target"]: r for r in rows if r.get("precision") == "fp32" and r["target"] not in ("keras", "peer")
            and r.get("input", "").startswith("float32")}
    for r in rows:
        r.setdefault("flags", [])
        r["speedup_vs_fp32"] = {}
        r["gflops_per_s"] = {}
        for t in threads:
            lat = r.get("latency", {}).get(str(t), {}).get("model")
            if not lat:
                continue
            base = fp32.get(r["target"], {}).get("latency", {}).get(str(t), {}).get("model")
            if base and r["target"] not in ("peer",):
                s = base["median_ms"] / lat["median_ms"]
                r["speedup_vs_fp32"][str(t)] = round(s, 2)
                if r.get("precision") not in ("fp32",) and s < 0.9:
                    r["flags"].append(
                        f"SLOW PATH: {r['precision']} runs {1 / s:.1f}x slower than fp32 "
                        f"({lat['median_ms']:.2f} vs {base['median_ms']:.2f} ms, {t} thread{'s' if t > 1 else ''})"
                    )
            if flops and r["target"] != "peer":
                g = flops / (lat["median_ms"] * 1e-3) / 1e9
                r["gflops_per_s"][str(t)] = round(g, 2)
                if peaks.get(t):
                    r.setdefault("pct_of_peak", {})[str(t)] = round(100 * g / peaks[t], 1)
        r["flags"] = list(dict.fromkeys(r["flags"]))


def _pareto(points: list[tuple[float, float]]) -> list[int]:
    """Indices of points not dominated (lower latency and higher accuracy are better)."""
    front = []
    for i, (li, ai) in enumerate(points):
        if not any((lj <= li and aj >= ai) and (lj < li or aj > ai) for j, (lj, aj) in enumerate(points) if j != i):
            front.append(i)
    return front


# --------------------------------------------------------------------------- outputs
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
        f["notes"] = " | ".join(([r["reason"]] if r.get("reason") else []) + r.get("flags", []))
        out.append(f)
    return out


def _r(v, nd=3):
    return None if v is None else round(float(v), nd)


def to_markdown(report: dict) -> str:
    rows = flat_rows(report)
    cols = list(rows[0]) if rows else []
    fmt = lambda v: "" if v is None else str(v).replace("|", "/")  # noqa: E731
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r[c]) for c in cols) + " |" for r in rows]
    m = report["machine"]
    head = [
        f"# edgematting bench: {report['model']}",
        "",
        f"{m['platform']}, {m['cpus']} CPUs; matmul peak (LiteRT): "
        + ", ".join(f"{v:.1f} GFLOP/s @{k} thread(s)" for k, v in report["peak_gflops"].items())
        + (f"; model FLOPs {report['flops'] / 1e9:.3f} G" if report.get("flops") else ""),
        "",
    ]
    return "\n".join(head + lines) + "\n"


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
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, ((x, y), lab) in enumerate(zip(pts, labels)):
        ax.scatter(x, y, s=60 if i in front else 30, c="tab:red" if i in front else "tab:blue", zorder=3)
        ax.annotate(lab, (x, y), fontsize=7, xytext=(4, 3), textcoords="offset points")
    fp = sorted(pts[i] for i in front)
    ax.plot([p[0] for p in fp], [p[1] for p in fp], "r--", lw=1, label="Pareto front")
    ax.set_xscale("log")  # slow paths (e.g. int16x8) sit an order of magnitude away
    ax.set_xlabel(f"latency, model alone (ms, median, {t} thread, log scale)")
    ax.set_ylabel("IoU on --data" if any(r.get("accuracy") for r in report["rows"]) else "mask IoU vs Keras")
    ax.set_title(f"{report['model']}: latency vs accuracy")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    import io

    buf = io.BytesIO()
    fig.savefig(buf, dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path


def print_table(report: dict, console) -> None:
    """The headline columns as a rich table; every note (reasons, slow paths) listed below it.

    The full set of columns is in bench.md / bench.csv / bench.json.
    """
    from rich.table import Table

    threads = report["config"]["threads"]
    prefix = report["model"] + "_"
    tab = Table(title=f"edgematting bench: {report['model']} (ms = median, model alone / end-to-end photo)")
    cols = ["artifact", "status", "KB"] + [f"ms t{t}" for t in threads] + [f"e2e t{t}" for t in threads] + \
        [f"x fp32 t{threads[0]}", "max abs", "IoU/keras", "IoU data"]
    for c in cols:
        tab.add_column(c, no_wrap=c == "artifact", justify="left" if c in ("artifact", "status") else "right")
    notes = []
    for f in flat_rows(report):
        name = f["artifact"][len(prefix):] if f["artifact"].startswith(prefix) else f["artifact"]
        st = {"verified": "green", "failed": "red", "peer": "cyan"}.get(f["status"], "white")
        flag = " *" if f["notes"] else ""
        tab.add_row(
            name + flag, f"[{st}]{f['status']}", _s(f["size_kb"]),
            *[_s(f[f"model_ms_t{t}"]) for t in threads], *[_s(f[f"e2e_ms_t{t}"]) for t in threads],
            _s(f[f"speedup_t{threads[0]}"]), _s(f["max_abs"]), _s(f["parity_iou"]), _s(f["iou"]),
        )
        if f["notes"]:
            notes.append(f"* {name}: {f['notes']}")
    console.print(tab)
    for n in notes:
        console.print(n, highlight=False)


def _s(v):
    return "" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))


# ------------------------------------------------------------------------------ main
def run_bench(cfg: BenchConfig, console=None) -> dict:
    """Run the whole benchmark; returns the report dict (also written under cfg.out)."""
    from rich.console import Console

    console = console or Console()
    root = Path(cfg.model)
    if not root.exists():
        raise InputError(f"Not found: {root}. Pass a model directory or its export folder.")
    if (root / SPEC_FILE).exists():
        model_dir, export_dir = root, root / "export"
    elif (root.parent / SPEC_FILE).exists():
        model_dir, export_dir = root.parent, root
    else:
        raise InputError(f"{root} is neither a model directory (with {SPEC_FILE}) nor its export folder.")
    spec = load_spec(model_dir)
    out = Path(cfg.out) if cfg.out else model_dir / "bench"

    failed_rows = _convert_missing(model_dir, export_dir, cfg, console) if cfg.convert_missing else []
    if cfg.int8_debug or cfg.keep_float:
        from .int8_debug import int8_error_report

        int8_error_report(model_dir, export_dir, out, keep_float=cfg.keep_float, data=cfg.data, console=console)
    artifacts = _find_artifacts(export_dir, cfg)
    if not artifacts and not failed_rows:
        raise InputError(f"No artifacts in {export_dir}. Run `edgematting convert {model_dir} --target all` first.")
    photos, gts = _photos(cfg, spec)

    flops = None
    try:
        from ..models import build_model, count_flops

        flops = int(count_flops(build_model(spec.architecture, **spec.config)))
    except Exception:  # a compatible model dir of another architecture: no FLOPs column
        flops = None
    peaks = {}
    for t in cfg.threads:
        peaks[t] = matmul_peak_gflops(t)

    rows = [_keras_row(model_dir, spec, cfg, photos, gts)]
    from rich.progress import Progress

    with Progress(console=console, transient=True) as prog:
        task = prog.add_task("benchmarking", total=len(artifacts))
        for p in artifacts:
            prog.update(task, description=f"benchmarking {p.name}")
            rows.append(_bench_artifact(p, model_dir, cfg, photos, gts, console))
            prog.advance(task)
    rows += failed_rows
    rows += _peer_rows(cfg, photos, gts)
    _derive(rows, cfg.threads, flops, peaks)
    if cfg.peer and not any(r["target"] == "peer" for r in rows):
        console.print(f"[yellow]peer '{cfg.peer}' not available: no peer rows. Run `edgematting peer fetch` first.")

    import os

    report = {
        "model": spec.name, "model_dir": str(model_dir), "architecture": spec.architecture,
        "input_size": list(spec.input_size), "flops": flops,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "peak_gflops": {str(k): round(v, 2) for k, v in peaks.items()},
        "photo_size": list(photos[0].shape[:2]), "data": cfg.data,
        "config": {"threads": cfg.threads, "runs": cfg.runs, "warmup": cfg.warmup},
        "rows": rows,
    }
    report["peer_comparison"] = peer_comparison(report)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "bench.json", report)
    atomic_write_bytes(out / "bench.md", to_markdown(report).encode())
    atomic_write_bytes(out / "bench.csv", to_csv(report).encode())
    png = plot_pareto(report, out / "latency_vs_accuracy.png")
    print_table(report, console)
    for line in report["peer_comparison"]:
        console.print(line)
    console.print(f"written: {out / 'bench.md'}, bench.json, bench.csv" + (f", {png.name}" if png else ""))
    report["json"] = str(out / "bench.json")
    return report


def peer_comparison(report: dict) -> list[str]:
    """Lines comparing the fastest full-int8 TFLite row with the peer, per thread count."""
    peer = next((r for r in report["rows"] if r["target"] == "peer"), None)
    if not peer:
        return []
    ours = [r for r in report["rows"] if r["target"] == "tflite" and r["precision"] == "int8" and r.get("latency")]
    lines = []
    for t in report["config"]["threads"]:
        cand = [r for r in ours if str(t) in r["latency"]]
        if not cand or str(t) not in peer["latency"]:
            continue
        best = min(cand, key=lambda r: r["latency"][str(t)]["e2e"]["median_ms"])
        a, b = best["latency"][str(t)], peer["latency"][str(t)]
        line = (
            f"vs {peer['reason']} ({t} thread{'s' if t > 1 else ''}): model {a['model']['median_ms']:.2f} vs "
            f"{b['model']['median_ms']:.2f} ms (x{b['model']['median_ms'] / a['model']['median_ms']:.2f}), "
            f"end-to-end {a['e2e']['median_ms']:.2f} vs {b['e2e']['median_ms']:.2f} ms "
            f"(x{b['e2e']['median_ms'] / a['e2e']['median_ms']:.2f}) [{best['artifact']}]"
        )
        if best.get("accuracy") and peer.get("accuracy"):
            line += f"; IoU {best['accuracy']['iou']:.4f} vs {peer['accuracy']['iou']:.4f}"
        lines.append(line)
    return lines
