"""Bench measurements: every artifact of a model side by side, in one process and one run.

For each artifact (and the Keras reference, and an optional peer model): file size, load
time, latency median/p90 per thread count for the model alone and for the end-to-end photo
pipeline (decoded photo -> `contract.model_input` -> inference -> `contract.output_to_alpha`
-> composite), peak memory, parity against Keras (the verify machinery), accuracy on
`--data` (`evaluation.metrics`), speed-up against fp32 of the same target, achieved GFLOP/s
against this machine's matmul peak, and flags for known slow paths. One `BenchRow` per
artifact; `measure` returns the report dict that `bench.report` writes and prints.
"""
from __future__ import annotations

import os
import platform
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EdgemattingError, InputError
from ..modelio import SPEC_FILE, load_spec
from .timing import PeakRSS, matmul_peak_gflops, time_fn

#: Precisions converted by default when the export folder lacks them (int8-qat fine-tunes
#: a model and is only run when asked for with --precisions).
DEFAULT_PRECISIONS = ("fp32", "fp16", "dynamic", "int8", "int16x8")
#: Accuracy columns (the metrics of `evaluation.metrics`) shown for --data.
ACCURACY_KEYS = ("iou", "boundary_f", "mse", "sad")


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
    pipeline: bool = True  # the photo pipeline's per-stage table (bench.pipeline)
    #: its photo sizes, {name: (height, width)}; None: bench.pipeline.SIZES (600x800 and 12 MP)
    pipeline_sizes: dict | None = None

    def __post_init__(self):
        from ..formats import Precision, get_format

        if self.targets:
            self.targets = [get_format(t).name for t in self.targets]
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
        if isinstance(self.data_limit, bool) or not isinstance(self.data_limit, int) or self.data_limit < 1:
            raise InputError(f"--limit takes a positive number of images, not {self.data_limit!r}.")


@dataclass
class BenchRow:
    """One line of the bench table. ``latency[threads] = {"model": Timing, "e2e": Timing}``
    (Timing dicts of `timing.time_fn`); the Keras row uses the key "keras"."""

    artifact: str
    target: str
    precision: str
    input: str = ""
    status: str = "exported"  # exported | verified | failed | reference | peer
    reason: str = ""
    size_kb: float | None = None
    load_ms: float | None = None
    peak_mem_mb: float | None = None
    latency: dict[str, dict[str, Any]] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    parity: dict[str, Any] = field(default_factory=dict)
    accuracy: dict[str, float] = field(default_factory=dict)
    speedup_vs_fp32: dict[str, float] = field(default_factory=dict)
    gflops_per_s: dict[str, float] = field(default_factory=dict)
    pct_of_peak: dict[str, float] = field(default_factory=dict)

    @classmethod
    def failed(cls, target: str, precision: str, input_type: str, reason: str, name: str | None = None) -> "BenchRow":
        text = " ".join(line.strip() for line in reason.strip().splitlines())[:400] if reason else ""
        return cls(artifact=name or f"{target}-{precision}-{input_type}", target=target, precision=precision,
                   input=input_type, status="failed", reason=text)

    def fail(self, reason: str) -> "BenchRow":
        self.status, self.reason = "failed", reason
        return self

    def model_ms(self, threads) -> float | None:
        return (self.latency.get(str(threads), {}).get("model") or {}).get("median_ms")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ----------------------------------------------------------------------------- inputs
def _photos(cfg: BenchConfig, spec):
    """(photos for timing/accuracy, ground-truth alphas or None)."""
    if cfg.data:
        from ..data.folder import load_sample, scan_folder

        samples = scan_folder(cfg.data, purpose="bench", can_skip=False)[: cfg.data_limit]  # bench has no --skip-bad
        loaded = [load_sample(s) for s in samples]
        return [s["image"] for s in loaded], [s["alpha"] for s in loaded]
    from ..data.synthetic import SyntheticPortraits

    gen = SyntheticPortraits(size=cfg.photo_size, seed=4242)
    s = gen.sample(0)
    return [s["image"]], None


def _end_to_end(model, rgb: np.ndarray) -> np.ndarray:
    """What an app does per photo: the contract's pipeline (guided upsampling when the
    sidecar asks for it) and a composite, both on the runner's own photo pipeline (OpenCV by
    default, `runners.open(pipeline=)`), as predict does: not the numpy path, which cost
    about 9 ms of a 600x800 photo's 11 ms end to end."""
    return model.ops.composite(rgb, model.predict_photo(rgb, model.contract["guided_filter"]), (0, 0, 0),
                               as_image=True)


def _accuracy(predict_alpha, photos, gts) -> dict:
    from ..evaluation.metrics import evaluate_alpha, summarize

    rows = [evaluate_alpha(predict_alpha(rgb), gt, keys=ACCURACY_KEYS) for rgb, gt in zip(photos, gts)]
    return summarize(rows, ACCURACY_KEYS)


# ------------------------------------------------------------------------- artifacts
def _find_artifacts(export_dir: Path, cfg: BenchConfig) -> list[Path]:
    from ..contract import read_sidecar
    from ..formats import artifact_suffixes, target_of

    found = []
    if export_dir.exists():
        suffixes = artifact_suffixes()
        for p in sorted(export_dir.iterdir()):
            if p.suffix not in suffixes or p.name.startswith("."):
                continue
            if cfg.targets and target_of(p) not in cfg.targets:
                continue
            meta = read_sidecar(p, required=False) or {}
            if cfg.precisions and meta.get("precision") not in cfg.precisions:
                continue
            found.append(p)
    return found


def _wanted_configs(cfg: BenchConfig) -> tuple[list, list[BenchRow]]:
    from ..converters import ExportConfig
    from ..formats import FORMATS

    targets = cfg.targets or list(FORMATS)
    precisions = cfg.precisions or list(DEFAULT_PRECISIONS)
    wanted = [(t, p, "float") for t in targets for p in precisions if FORMATS[t].supports(p)]
    if "tflite" in targets and "int8" in precisions:
        wanted.append(("tflite", "int8", "uint8"))  # the camera-bytes path apps use
    configs, failed = [], []
    for target, precision, input_type in wanted:
        try:
            configs.append(ExportConfig(target=target, precision=precision, input_type=input_type,
                                        calib=cfg.data, calib_samples=16, verify_data=cfg.data))
        except EdgemattingError as e:
            failed.append(BenchRow.failed(target, precision, input_type, str(e)))
    return configs, failed


def _convert_missing(model_dir: Path, export_dir: Path, cfg: BenchConfig, console) -> list[BenchRow]:
    """Convert what the export folder lacks; failures become failed rows."""
    from ..converters import convert

    configs, failed = _wanted_configs(cfg)
    run = convert(model_dir, configs, export_dir, progress=True, console=console, skip_existing=True)
    for c, e in run.failures:
        failed.append(BenchRow.failed(c.target, c.precision, c.input_type, f"{type(e).__name__}: {e}"))
    return failed


def _parity(path: Path, meta: dict, model_dir: Path, data: str | None) -> tuple[dict, str]:
    """Parity figures: from the sidecar when it verified this very file (its recorded
    sha256 matches), else verify now: a replaced or damaged file never shows the figures
    of the file it replaced."""
    from .. import atomic
    from ..verify import verify_artifact

    ver = meta.get("verification")
    recorded = (ver or {}).get("sha256") or (meta.get("conversion") or {}).get("sha256")
    if ver and recorded and recorded == atomic.digest(path):
        return ver, ("verified" if ver.get("passed") else "failed")

    d = verify_artifact(path, model_dir=model_dir, data=data, raise_on_failure=False).to_dict()
    return d, ("verified" if d.get("passed") else "failed")


def _bench_artifact(path: Path, model_dir: Path, cfg: BenchConfig, photos, gts, console) -> BenchRow:
    from .. import runners
    from ..contract import read_sidecar, validate_metadata
    from ..formats import target_of

    meta = read_sidecar(path, required=False) or {}
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size
    row = BenchRow(
        artifact=path.name, target=meta.get("target") or target_of(path), precision=meta.get("precision", "?"),
        input=f"{meta.get('input', {}).get('dtype', '?')} x{meta.get('input', {}).get('channels', 3)}",
        size_kb=round(size / 1024, 1),
    )
    try:
        parity, status = _parity(path, meta, model_dir, cfg.data)
        row.parity = {k: parity.get(k) for k in ("max_abs", "mean_abs", "psnr", "iou", "engine", "data") if k in parity}
        row.status = status
        if status == "failed":
            row.reason = "; ".join(parity.get("failures", []))[:300] or "parity check failed"
    except Exception as e:  # typed or not, one broken artifact must not stop the table
        return row.fail(f"verify: {type(e).__name__}: {e}")

    try:
        validate_metadata({k: v for k, v in meta.items() if k not in ("conversion", "verification")})
    except EdgemattingError as e:
        return row.fail(f"metadata: {e}")
    timed = row.target != "coreml" or platform.system() == "Darwin"
    if not timed:
        row.flags.append("no Core ML runtime off macOS: no latency; parity/accuracy from the MIL reference interpreter")
    for t in cfg.threads:
        try:
            with PeakRSS() as mem:
                t0 = time.perf_counter()
                model = runners.open(path, num_threads=t)
                load_ms = (time.perf_counter() - t0) * 1e3
                if timed:
                    x = model.inputs(photos[:1])
                    model_t = time_fn(lambda: model.run_raw(x), cfg.runs, cfg.warmup)
                    e2e_t = time_fn(lambda: _end_to_end(model, photos[0]), max(5, cfg.runs // 5), 1)
                    row.latency[str(t)] = {"model": model_t.to_dict(), "e2e": e2e_t.to_dict()}
            if row.load_ms is None:
                row.load_ms = round(load_ms, 1)
            row.peak_mem_mb = max(row.peak_mem_mb or 0.0, round(mem.delta_mb, 1))
            if t == cfg.threads[0] and gts is not None:
                row.accuracy = _accuracy(lambda rgb: model.predict_photo(rgb, model.contract["guided_filter"]),
                                         photos, gts)
        except EdgemattingError as e:
            row.fail(f"{type(e).__name__}: {e}")
            break
        except Exception as e:  # a broken artifact must not stop the table
            row.fail(f"{type(e).__name__}: {e}")
            console.print(f"[red]{path.name}: {traceback.format_exc(limit=2)}")
            break
    return row


def _keras_row(model_dir: Path, spec, cfg: BenchConfig, photos, gts) -> BenchRow:
    from .. import runners

    with PeakRSS() as mem:
        t0 = time.perf_counter()
        model = runners.open(model_dir)
        load_ms = (time.perf_counter() - t0) * 1e3
        row = BenchRow(artifact="model.keras", target="keras", precision="fp32", input="float32 x3",
                       size_kb=round((model_dir / "model.keras").stat().st_size / 1024, 1),
                       status="reference", load_ms=round(load_ms, 1))
        x = model.inputs(photos[:1])
        m = time_fn(lambda: model.run_raw(x), max(5, cfg.runs // 5), 2)
        row.latency["keras"] = {"model": m.to_dict()}
    row.peak_mem_mb = round(mem.delta_mb, 1)
    if gts is not None:
        row.accuracy = _accuracy(model.predict_photo, photos, gts)
    return row


def _peer_rows(cfg: BenchConfig, photos, gts) -> list[BenchRow]:
    from ..peer import resolve_peer

    peer = resolve_peer(cfg.peer)
    if peer is None:
        return []
    row = BenchRow(artifact=peer.path.name, target="peer", precision="fp32 (peer)", input="float32 x3",
                   size_kb=round(peer.path.stat().st_size / 1024, 1), status="peer", reason=peer.name)
    for t in cfg.threads:
        with PeakRSS() as mem:
            t0 = time.perf_counter()
            r = peer.open(num_threads=t)
            if row.load_ms is None:
                row.load_ms = round((time.perf_counter() - t0) * 1e3, 1)
            x = r.inputs(photos[:1])
            m = time_fn(lambda: r.run_raw(x), cfg.runs, cfg.warmup)
            e = time_fn(lambda: _end_to_end(r, photos[0]), max(5, cfg.runs // 5), 1)
            row.latency[str(t)] = {"model": m.to_dict(), "e2e": e.to_dict()}
        row.peak_mem_mb = max(row.peak_mem_mb or 0.0, round(mem.delta_mb, 1))
        if t == cfg.threads[0] and gts is not None:
            row.accuracy = _accuracy(r.predict_photo, photos, gts)
    return [row]


# ---------------------------------------------------------------------- derived columns
def _derive(rows: list[BenchRow], threads: list[int], flops: int | None, peaks: dict[int, float]) -> None:
    fp32 = {r.target: r for r in rows if r.precision == "fp32" and r.target not in ("keras", "peer")
            and r.input.startswith("float32")}
    for r in rows:
        r.speedup_vs_fp32, r.gflops_per_s = {}, {}
        for t in threads:
            ms = r.model_ms(t)
            if not ms:
                continue
            base = fp32[r.target].model_ms(t) if r.target in fp32 else None
            if base and r.target != "peer":
                s = base / ms
                r.speedup_vs_fp32[str(t)] = round(s, 2)
                if r.precision != "fp32" and s < 0.9:
                    r.flags.append(
                        f"SLOW PATH: {r.precision} runs {1 / s:.1f}x slower than fp32 "
                        f"({ms:.2f} vs {base:.2f} ms, {t} thread{'s' if t > 1 else ''})"
                    )
            if flops and r.target != "peer":
                g = flops / (ms * 1e-3) / 1e9
                r.gflops_per_s[str(t)] = round(g, 2)
                if peaks.get(t):
                    r.pct_of_peak[str(t)] = round(100 * g / peaks[t], 1)
        r.flags = list(dict.fromkeys(r.flags))


def _pipeline_table(cfg: BenchConfig, artifacts: list[Path], console) -> dict | None:
    """The photo pipeline's per-stage table (`bench.pipeline`: definition, numpy, OpenCV at
    each --threads count, 600x800 and 12 MP) beside the full-int8 TFLite model's own time (the
    float-I/O file when there is one). The definition is timed on the 600x800 photo only (it
    takes seconds a stage at 12 MP). A failure is reported in the table's place."""
    from ..contract import read_sidecar
    from ..formats import target_of
    from .pipeline import measure as measure_pipeline

    def meta(p):
        return read_sidecar(p, required=False) or {}

    int8 = [p for p in artifacts if target_of(p) == "tflite" and meta(p).get("precision") == "int8"]
    float_io = [p for p in int8 if (meta(p).get("input") or {}).get("dtype") == "float32"]
    art = (float_io or int8 or [None])[0]
    try:
        return measure_pipeline(str(art) if art else None, runs=max(3, min(cfg.runs, 10)), threads=cfg.threads,
                                sizes=cfg.pipeline_sizes, definition_max_pixels=2e6)
    except Exception as e:  # the artifact table stands without it
        console.print(f"[yellow]photo pipeline table: {type(e).__name__}: {e}")
        return {"error": f"{type(e).__name__}: {e}"}


# ------------------------------------------------------------------------------ main
def resolve_model(path: str) -> tuple[Path, Path]:
    """(model dir, export dir) from a model directory or its export folder."""
    root = Path(path)
    if not root.exists():
        raise InputError(f"Not found: {root}. Pass a model directory or its export folder.")
    if (root / SPEC_FILE).exists():
        return root, root / "export"
    if (root.parent / SPEC_FILE).exists():
        return root.parent, root
    raise InputError(f"{root} is neither a model directory (with {SPEC_FILE}) nor its export folder.")


def measure(cfg: BenchConfig, console, out: Path) -> dict:
    """Convert what is missing, measure every artifact; return the report dict."""
    model_dir, export_dir = resolve_model(cfg.model)
    spec = load_spec(model_dir)
    from ..peer import resolve_peer

    peer = resolve_peer(cfg.peer)
    if peer is not None:
        peer.open()  # a file that is no model fails here, before minutes of converting and timing
    photos, gts = _photos(cfg, spec)  # a bad --data folder too
    failed_rows = _convert_missing(model_dir, export_dir, cfg, console) if cfg.convert_missing else []
    if cfg.int8_debug or cfg.keep_float:
        from .int8_debug import int8_error_report

        int8_error_report(model_dir, export_dir, out, keep_float=cfg.keep_float, data=cfg.data, console=console)
    artifacts = _find_artifacts(export_dir, cfg)
    if not artifacts and not failed_rows:
        raise InputError(f"No artifacts in {export_dir}. Run `edgematting convert {model_dir} --target all` first.")

    from ..models import build_model, count_flops

    flops = int(count_flops(build_model(spec.architecture, **spec.config)))
    peaks = {t: matmul_peak_gflops(t) for t in cfg.threads}

    rows = [_keras_row(model_dir, spec, cfg, photos, gts)]
    from rich.progress import Progress

    with Progress(console=console, transient=True, disable=not console.is_terminal) as prog:
        task = prog.add_task("benchmarking", total=len(artifacts))
        for p in artifacts:
            prog.update(task, description=f"benchmarking {p.name}")
            rows.append(_bench_artifact(p, model_dir, cfg, photos, gts, console))
            prog.advance(task)
    rows += failed_rows
    rows += _peer_rows(cfg, photos, gts)
    _derive(rows, cfg.threads, flops, peaks)
    pipeline = _pipeline_table(cfg, artifacts, console) if cfg.pipeline else None
    if cfg.peer and not any(r.target == "peer" for r in rows):
        console.print(f"[yellow]peer '{cfg.peer}' not available: no peer rows. Run `edgematting peer fetch` first.")
    return {
        "model": spec.name, "model_dir": str(model_dir), "architecture": spec.architecture,
        "input_size": list(spec.input_size), "flops": flops,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "peak_gflops": {str(k): round(v, 2) for k, v in peaks.items()},
        "photo_size": list(photos[0].shape[:2]), "data": cfg.data,
        "config": {"threads": cfg.threads, "runs": cfg.runs, "warmup": cfg.warmup},
        "rows": [r.to_dict() for r in rows],
        "pipeline": pipeline,
    }
