"""Browser vs Python latency of the same artifacts at the same thread counts.

    .venv/bin/python web_demo/test/latency.py MODEL_DIR_OR_ARTIFACTS... [--threads 1,2] [--rounds 3]

For each thread count N and each .tflite / .onnx artifact:

* browser: the web demo's page in headless Chromium, cross-origin isolated (served by
  `edgematting.web_demo.DemoServer`), opened with ``?threads=N``; LiteRT.js or
  onnxruntime-web, wasm backend. The page's own figures: the first call, then the steady
  state, median and p90 of 20 runs after 3 warm-ups on the fixture photo's model input;
* Python: ``edgematting.runners.open(path, num_threads=N)`` (ai-edge-litert / onnxruntime),
  median of 20 ``model.run_raw(model.inputs([photo]))`` after 3 warm-ups.

With ``--mediapipe`` each .tflite is also run on the page's MediaPipe Tasks runtime
(``?runtime=mediapipe``: its ImageSegmenter, single-threaded wasm, given the model-size image;
the figure covers its whole ``segment`` call: image upload, normalization, inference and the
mask), once, beside Python on 1 thread.

Inference only, as the bench's model column. With ``--rounds R`` the whole is repeated R
times (browser and Python alternate) and the median of the R medians is reported, which
steadies the figures on a busy machine; the JSON also keeps each round's figures and the best
round's (the lowest median of each side: what an otherwise idle machine gets). Prints a Markdown table with the load average and
writes the figures as JSON (`edgematting.web_demo.write_browser_bench`, each row with its
artifact's sha256, size and mtime): by default ``MODEL_DIR/bench/browser.json`` when the
artifacts are a model's ``export/``, else ``--out``; `edgematting bench MODEL_DIR` then shows
them as its "browser" column (recorded, with their date) while the files stay the same.
The page driving lives in the library (`edgematting.web_demo.browser_timings`, also behind
``edgematting bench --browser``); this script adds the Python side, rounds and MediaPipe.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
PHOTO = HERE / "fixtures" / "portrait.png"
WARMUPS, RUNS = 3, 20


def python_latency(artifact: Path, photo: np.ndarray, threads: int, runs: int = RUNS, warmups: int = WARMUPS) -> dict:
    from edgematting import runners

    model = runners.open(artifact, num_threads=threads)
    x = model.inputs([photo])
    for _ in range(warmups):
        model.run_raw(x)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        model.run_raw(x)
        times.append((time.perf_counter() - t0) * 1000.0)
    return {"median": float(np.median(times)), "p90": float(np.percentile(times, 90, method="inverted_cdf")),
            "runs": runs, "warmups": warmups, "engine": model.engine}


def browser_latency(artifacts: list[Path], threads: int, chromium: str, runtime: str | None = None) -> dict[str, dict]:
    """{artifact name: the page's timing() for it} at `threads` threads (on `runtime` for
    .tflite files: 'litert', the default, or 'mediapipe'): `edgematting.web_demo.browser_timings`,
    which `edgematting bench --browser` uses too. Exits with the page's message on a refusal."""
    from edgematting.errors import EdgemattingError
    from edgematting.web_demo import browser_timings, ensure_npm_packages

    try:
        ensure_npm_packages()
        res = browser_timings(artifacts, [threads], chromium, runtime=runtime, photo=PHOTO)
    except EdgemattingError as e:
        sys.exit(f"error: {e}")
    for a in artifacts:
        if "error" in res[(a.name, threads)]:
            sys.exit(f"{a.name}: {res[(a.name, threads)]['error']}")
    return {a.name: res[(a.name, threads)] for a in artifacts}


def default_out(artifacts: list[Path]) -> Path | None:
    """MODEL_DIR/bench/browser.json when every artifact is in MODEL_DIR/export/."""
    from edgematting.web_demo import BROWSER_BENCH_FILE

    dirs = {a.resolve().parent for a in artifacts}
    if len(dirs) == 1 and (d := dirs.pop()).name == "export":
        return d.parent / "bench" / BROWSER_BENCH_FILE
    return None


def main(argv=None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("artifacts", nargs="+", help="model directory or .tflite/.onnx files")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    ap.add_argument("--rounds", type=int, default=1, help="repeat everything R times, report the median (default 1)")
    ap.add_argument("--chromium", default=os.environ.get("EDGEMATTING_CHROMIUM", "/usr/bin/chromium"))
    ap.add_argument("--out", type=Path, default=None, help="JSON output (default MODEL_DIR/bench/browser.json)")
    ap.add_argument("--mediapipe", action="store_true",
                    help="also run each .tflite on MediaPipe Tasks (one thread), beside Python on 1 thread")
    args = ap.parse_args(argv)

    from edgematting import contract
    from edgematting.data.io import read_image
    from edgematting.web_demo import resolve_artifacts, write_browser_bench

    artifacts = resolve_artifacts(args.artifacts)
    thread_counts = [int(t) for t in args.threads.split(",")]
    photo = read_image(PHOTO)
    tflites = [a for a in artifacts if a.suffix == ".tflite"]
    if args.mediapipe and not tflites:
        sys.exit("--mediapipe: no .tflite among the artifacts")
    # (artifact, threads, page runtime): LiteRT.js / onnxruntime-web at each count, MediaPipe on 1
    runs = [(artifacts, n, None) for n in thread_counts] + ([(tflites, 1, "mediapipe")] if args.mediapipe else [])
    samples: dict[tuple[str, int, str | None], dict[str, list]] = {}
    load_before = os.getloadavg()
    for _ in range(args.rounds):
        for arts, n, runtime in runs:
            browser = browser_latency(arts, n, args.chromium, runtime)
            for a in arts:
                py = python_latency(a, photo, n)
                s = samples.setdefault((a.name, n, runtime), {"browser": [], "python": []})
                s["browser"].append(browser[a.name])
                s["python"].append(py)
    load_after = os.getloadavg()

    def med(xs, key):
        return round(float(np.median([x[key] for x in xs])), 3)

    def best(xs):
        return round(float(min(x["median"] for x in xs)), 3)

    rows = []
    order = {a.name: i for i, a in enumerate(artifacts)}
    for (name, n, runtime), s in sorted(samples.items(), key=lambda kv: (order[kv[0][0]], kv[0][2] or "", kv[0][1])):
        meta = contract.read_sidecar(artifacts[order[name]])
        b, p = s["browser"], s["python"]
        row = {"artifact": name, "precision": meta.get("precision"), "target": meta.get("target"),
               "input": f"{meta['input']['height']}x{meta['input']['width']}", "input_dtype": meta["input"]["dtype"],
               "threads": n, "runtime": b[0].get("runtime"), "rounds": args.rounds,
               "browser": {"first_ms": med(b, "first"), "median_ms": med(b, "median"), "p90_ms": med(b, "p90"),
                           "runs": b[0]["runs"], "warmups": b[0]["warmups"], "threads": b[0]["threads"],
                           "backend": b[0]["backend"], "cross_origin_isolated": b[0]["crossOriginIsolated"]},
               "python": {"median_ms": med(p, "median"), "p90_ms": med(p, "p90"), "runs": RUNS,
                          "warmups": WARMUPS, "engine": p[0]["engine"]}}
        row["ratio"] = round(row["browser"]["median_ms"] / row["python"]["median_ms"], 2)
        row["best_round"] = {"browser_median_ms": best(b), "python_median_ms": best(p),
                             "ratio": round(best(b) / best(p), 2)}
        row["round_medians"] = {"browser_ms": [round(x["median"], 3) for x in b],
                                "python_ms": [round(x["median"], 3) for x in p]}
        rows.append(row)
    print(f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after ({os.cpu_count()} cores); "
          f"median of {args.rounds} round(s)")
    print("| artifact | input | threads | browser first call ms | browser steady median / p90 ms | "
          "Python median ms | browser / Python | best round: browser / Python ms | browser runtime | Python runtime |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        b, p, br = r["browser"], r["python"], r["best_round"]
        print(f"| {r['artifact']} | {r['input']} | {r['threads']} | {b['first_ms']:.2f} | {b['median_ms']:.2f} / "
              f"{b['p90_ms']:.2f} | {p['median_ms']:.2f} | {r['ratio']:.2f}x | {br['browser_median_ms']:.2f} / "
              f"{br['python_median_ms']:.2f} ({br['ratio']:.2f}x) | {b['backend']} | {p['engine']} |")
    out = args.out or default_out(artifacts)
    if out is not None:
        write_browser_bench(rows, out, source="web_demo/test/latency.py", artifacts=artifacts,
                            extra={"load_average": [round(x, 2) for x in (*load_before, *load_after)]})
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
