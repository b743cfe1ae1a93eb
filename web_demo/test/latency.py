"""Browser vs Python latency of the same artifacts: median ms per frame, one thread.

    .venv/bin/python web_demo/test/latency.py MODEL_DIR_OR_ARTIFACTS... [--frames 50]

For each .tflite / .onnx artifact: the web demo's page in headless Chromium (LiteRT.js or
onnxruntime-web, wasm backend, 1 thread) times `frames` inferences on the fixture photo's
model input (`window.edgemattingDemo.bench`), and in the same run the Python runner
(ai-edge-litert / onnxruntime, 1 thread) times the same input the same way. Inference only,
as the README's bench columns. Prints a Markdown table and writes latency.json beside it
with --out.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
PHOTO = HERE / "fixtures" / "portrait.png"


def python_latency(artifact: Path, photo: np.ndarray, frames: int, warmup: int = 5) -> tuple[float, str]:
    from edgematting import contract
    from edgematting.runners import load_runner

    meta = contract.read_sidecar(artifact)
    runner = load_runner(artifact, num_threads=1)
    x = contract.model_input(photo, meta)
    for _ in range(warmup):
        runner.run_raw(x)
    times = []
    for _ in range(frames):
        t0 = time.perf_counter()
        runner.run_raw(x)
        times.append((time.perf_counter() - t0) * 1000.0)
    return float(np.median(times)), runner.engine


def browser_latency(artifacts: list[Path], frames: int, chromium: str) -> dict[str, dict]:
    from edgematting.web_demo import DemoServer, check_npm_packages

    check_npm_packages()
    srv = DemoServer(artifacts, port=0).start()
    steps = [{"do": "goto", "url": srv.url + f"?model={artifacts[0].name}"},
             {"do": "wait", "states": ["ready", "error"], "timeout_ms": 120000},
             {"do": "files", "selector": "#photo-input", "paths": [str(PHOTO)]},
             {"do": "wait", "states": ["done", "error"], "timeout_ms": 120000}]
    for i, a in enumerate(artifacts):
        if i:
            steps += [{"do": "select", "selector": "#model", "value": a.name},
                      {"do": "wait", "states": ["done", "error"], "timeout_ms": 120000}]
        steps += [{"do": "text", "selector": "#message", "save": f"{a.name}.message"},
                  {"do": "eval", "expr": f"window.edgemattingDemo.bench({frames}, 5)", "save": a.name}]
    with tempfile.TemporaryDirectory() as tmp:
        plan, out = Path(tmp) / "plan.json", Path(tmp) / "out.json"
        plan.write_text(json.dumps({"executable": chromium, "steps": steps}))
        try:
            r = subprocess.run(["node", str(HERE / "drive.mjs"), str(plan), str(out)], capture_output=True, text=True)
        finally:
            srv.stop()
        if not out.is_file():
            sys.exit(f"browser driver failed: {(r.stdout + r.stderr)[-2000:]}")
        res = json.loads(out.read_text())
    if "error" in res:
        sys.exit(f"browser driver failed: {res['error']} (page message: {res.get('message')})")
    for a in artifacts:
        if res["saved"][f"{a.name}.message"]:
            sys.exit(f"{a.name}: {res['saved'][a.name + '.message']}")
    return {a.name: res["saved"][a.name] for a in artifacts}


def main(argv=None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("artifacts", nargs="+", help="model directory or .tflite/.onnx files")
    ap.add_argument("--frames", type=int, default=50)
    ap.add_argument("--chromium", default=os.environ.get("EDGEMATTING_CHROMIUM", "/usr/bin/chromium"))
    ap.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = ap.parse_args(argv)

    from edgematting import contract
    from edgematting.web_demo import resolve_artifacts
    from edgematting.data.io import read_image

    artifacts = resolve_artifacts(args.artifacts)
    photo = read_image(PHOTO)
    browser = browser_latency(artifacts, args.frames, args.chromium)
    rows = []
    for a in artifacts:
        py_ms, py_engine = python_latency(a, photo, args.frames)
        meta = contract.read_sidecar(a)
        b = browser[a.name]
        rows.append({"artifact": a.name, "precision": meta.get("precision"),
                     "input": f"{meta['input']['height']}x{meta['input']['width']}",
                     "browser_ms": round(b["median"], 2), "browser_backend": b["backend"],
                     "python_ms": round(py_ms, 2), "python_engine": py_engine, "frames": args.frames})
    print("| artifact | input | browser (wasm, 1 thread) ms | Python (1 thread) ms | browser runtime | Python runtime |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['artifact']} | {r['input']} | {r['browser_ms']:.2f} | {r['python_ms']:.2f} | "
              f"{r['browser_backend']} | {r['python_engine']} |")
    if args.out:
        args.out.write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
