"""edgematting bench: size, latency, parity and accuracy of every export, side by side."""
from __future__ import annotations

import argparse

from ._console import DefaultsHelpFormatter


def _csv(s: str) -> list[str]:
    return [v.strip() for v in s.split(",") if v.strip()]


def register(sub):
    p = sub.add_parser(
        "bench",
        help="benchmark every export of a model side by side (latency, size, parity, accuracy)",
        description="Benchmark all artifacts of a model in one run, so the ratios hold on a "
        "noisy machine: file size, load time, latency (median, p90) per thread count for the "
        "model alone and for the end-to-end photo pipeline (decoded photo -> resize -> "
        "inference -> alpha back to photo size -> composite), peak memory, parity with the "
        "Keras model, accuracy on --data, speed-up against fp32 of the same target, achieved "
        "GFLOP/s against this machine's matmul peak, and flags for known slow paths. Missing "
        "artifacts are converted first. Writes bench.md, bench.json, bench.csv and "
        "latency_vs_accuracy.png (Pareto front marked) to --out.",
        formatter_class=DefaultsHelpFormatter,
    )
    p.add_argument("model", metavar="MODEL_OR_EXPORT_DIR", help="model dir (with model.json) or its export/ folder")
    p.add_argument("--targets", type=_csv, default=None, help="comma list, e.g. tflite,onnx (default: all)")
    p.add_argument("--precisions", type=_csv, default=None, help="comma list (default: fp32,fp16,dynamic,int8,int16x8)")
    p.add_argument("--threads", type=_csv, default=None, help="comma list of thread counts, e.g. 1,2 (default 1; "
                   "1,2 with --video)")
    p.add_argument("--runs", type=int, default=50, help="timed runs per measurement")
    p.add_argument("--warmup", type=int, default=5, help="untimed warm-up runs")
    p.add_argument("--data", default=None, help="labelled folder (image/ + alpha/) for accuracy and photos")
    p.add_argument("--limit", type=int, default=32, help="at most this many --data images")
    p.add_argument("--peer", default=None, help="'mediapipe' (see `edgematting peer fetch`) or PATH.tflite")
    p.add_argument("--keep-float", type=int, default=0, metavar="N",
                   help="also build full-int8 TFLite with the N worst layers (per the int8 debugger) in float")
    p.add_argument("--no-int8-debug", action="store_true", help="skip the per-layer int8 error report")
    p.add_argument("--no-convert", action="store_true", help="benchmark only what the export folder holds")
    p.add_argument("--out", default=None, help="output folder (default: MODEL_DIR/bench)")
    p.add_argument("--memory", action="store_true",
                   help="instead: peak memory and seconds per megapixel of `predict` with this model on 12, 27 "
                   "and 108 MP photos it makes, each in a fresh process, with and without --refine trimap "
                   "(python -m edgematting.bench.memory, which also runs without a model)")
    p.add_argument("--video", action="store_true",
                   help="instead: frames/s of `predict VIDEO` end to end (decode -> model -> composite -> encode) "
                   "on a synthetic 1280x720 clip of 60 frames, and ms per frame of each stage, per --threads "
                   "(python -m edgematting.bench.video, which also runs without a model)")
    p.add_argument("--browser", action="store_true",
                   help="after the Python rows, also measure each .tflite/.onnx artifact on the web demo page in "
                   "headless Chromium (wasm, cross-origin isolated) at each --threads count: a 'browser' column "
                   "(steady-state median ms) and its ratio to Python, recorded in bench/browser.json. Needs node, "
                   "`npm ci --prefix web_demo` and a Chromium ($EDGEMATTING_CHROMIUM, default /usr/bin/chromium), "
                   "checked before anything is measured. Without it, figures recorded in browser.json for these "
                   "very files (sha256) are shown, marked with their date")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from ..errors import InputError

    if args.browser and (args.memory or args.video):
        raise InputError("--browser goes with the artifact table, not with --memory or --video.")
    if args.memory:
        from ..bench.memory import run as run_memory
        from ..predict import check_model_path

        check_model_path(args.model)
        run_memory(args.model)
        return 0
    try:
        threads = [int(t) for t in args.threads or (["1", "2"] if args.video else ["1"])]
    except ValueError:
        raise InputError(f"--threads takes integers, e.g. 1,2 (got {','.join(args.threads)})") from None
    if args.video:
        from ..bench.video import run as run_video
        from ..predict import check_model_path

        check_model_path(args.model)
        run_video(args.model, threads, json_path=args.out and f"{args.out}/video.json")
        return 0
    from ..bench.run import BenchConfig, run_bench

    cfg = BenchConfig(
        model=args.model, targets=args.targets, precisions=args.precisions, threads=threads,
        runs=args.runs, warmup=args.warmup, data=args.data, data_limit=args.limit, peer=args.peer,
        out=args.out, convert_missing=not args.no_convert, keep_float=args.keep_float,
        int8_debug=not args.no_int8_debug,
    )
    measurer = None
    if args.browser:  # node, npm packages, Chromium: checked before minutes of measuring
        from ..web_demo import bench_measurer

        measurer = bench_measurer()
    report = run_bench(cfg, browser=measurer)
    if (report.get("browser") or {}).get("error"):
        from ..errors import DependencyError

        raise DependencyError(f"The browser run failed ({report['browser']['error']}); the Python figures are "
                              f"written: {report['json'].replace('bench.json', 'bench.md')}.")
    failed = [r for r in report["rows"] if r["status"] == "failed"]
    from ._console import next_hint

    print(next_hint("open", report["json"].replace("bench.json", "bench.md"))
          + ("" if not failed else f"  ({len(failed)} artifact(s) failed: see the notes column)"))
    return 0
