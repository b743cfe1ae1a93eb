"""Per-stage timing of the Python photo pipeline: the definition vs the fast paths.

    python -m edgematting.bench.pipeline [--artifact MODEL_int8.tflite] [--runs N] [--json FILE]

For a 600x800 photo and a 12 MP (3000x4000) one, the best-of-N milliseconds of each stage
around the model, computed by the exact definitions of `edgematting.imageops` (before)
and by `edgematting.imageops_fast` (after; bit for bit the same outputs, checked here
too): photo -> model input, model output -> alpha at photo size, composite over a colour,
RGBA cut-out, and the sum of the stages an app runs per photo (input + alpha + composite).
With ``--artifact``, the model alone is timed in the same process (1 thread), so the
pipeline's overhead can be read against it. Times are the minimum over N runs, the
definition and the fast path alternating, so that load from other processes on a shared
machine affects both alike (compare ratios, not absolute figures, across machines).

The alpha is a synthetic portrait's matte at model size, kept off exact 0/1 as a trained
model's is (``clip(alpha, 1e-4, 1 - 1e-4)``); the "uncertain alpha" row is the worst case
for the fast composite (an untrained model, every pixel soft).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from .. import imageops, imageops_fast

SIZES = {"600x800": (800, 600), "12MP": (4000, 3000)}


def _photo(hw: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    from ..data.synthetic import SyntheticPortraits

    base = np.asarray(SyntheticPortraits(size=(800, 600), seed=7).sample(0)["image"])[..., :3].astype(np.uint8)
    if base.shape[:2] == hw:
        return base
    return np.asarray(Image.fromarray(base).resize((hw[1], hw[0]), Image.Resampling.BILINEAR))


def _lowres_alpha(h: int, w: int) -> np.ndarray:
    from ..data.synthetic import SyntheticPortraits

    gt = np.asarray(SyntheticPortraits(size=(h, w), seed=7).sample(0)["alpha"], np.float32)
    return np.clip(gt, np.float32(1e-4), np.float32(1 - 1e-4)).reshape(1, h, w, 1)


def _contract(artifact: str | None):
    if artifact:
        from .. import runners

        pm = runners.open(artifact)
        return pm.contract, pm
    from ..modelio import ModelSpec
    from ..runners.photo import keras_contract

    return keras_contract(ModelSpec(architecture="fast-scnn", config={}, input_size=(256, 256))), None


def _best_of(ref, fast, n: int) -> tuple[float, float]:
    """Best (minimum) ms of `n` runs of each, alternating ref and fast so that both see the
    same load from whatever else runs on the machine."""
    ref(), fast()
    best = [float("inf"), float("inf")]
    for _ in range(n):
        for k, fn in enumerate((ref, fast)):
            t0 = time.perf_counter()
            fn()
            best[k] = min(best[k], time.perf_counter() - t0)
    return round(best[0] * 1e3, 3), round(best[1] * 1e3, 3)


def measure(artifact: str | None = None, runs: int = 20, sizes=None) -> dict:
    """{"model_ms": .., "sizes": {name: {stage: {"definition": ms, "fast": ms}}}}."""
    from ..contract import decode_output, encode_pixels, model_input

    contract, pm = _contract(artifact)
    h, w = contract["height"], contract["width"]
    raw = _lowres_alpha(h, w)
    result: dict = {"model": str(artifact) if artifact else None, "model_input": [h, w], "runs": runs, "sizes": {}}
    if pm is not None:
        x = pm.inputs([_photo((800, 600))])
        result["model_ms"] = round(min(_best_of(lambda: pm.run_raw(x), lambda: pm.run_raw(x), runs * 2)), 3)
        result["engine"] = pm.engine
    colour = (0, 255, 0)
    for name, hw in (sizes or SIZES).items():
        rgb = _photo(hw)
        a_def = imageops.alpha_to_photo(decode_output(raw, contract)[0], hw)
        a_unc = np.full(hw, 0.5, np.float32) + np.float32(0.1) * np.sin(np.arange(hw[1], dtype=np.float32))[None]
        # the fast paths must give the definition's bytes
        assert np.array_equal(model_input(rgb, contract),
                              encode_pixels(imageops_fast.resize_bilinear(rgb, h, w)[None], contract))
        assert np.array_equal(a_def, imageops_fast.alpha_to_photo(decode_output(raw, contract)[0], hw))
        assert np.array_equal(imageops.composite(rgb, a_def, colour), imageops_fast.composite(rgb, a_def, colour))
        n = max(3, runs if hw[0] * hw[1] < 2e6 else runs // 4)
        stages = {
            "photo -> model input": (
                lambda: model_input(rgb, contract),
                lambda: encode_pixels(imageops_fast.resize_bilinear(rgb, h, w)[None], contract)),
            "output -> alpha at photo size": (
                lambda: imageops.alpha_to_photo(decode_output(raw, contract)[0], hw),
                lambda: imageops_fast.alpha_to_photo(decode_output(raw, contract)[0], hw)),
            "composite over a colour": (
                lambda: imageops.composite(rgb, a_def, colour),
                lambda: imageops_fast.composite(rgb, a_def, colour)),
            "composite, uncertain alpha (worst case)": (
                lambda: imageops.composite(rgb, a_unc, colour),
                lambda: imageops_fast.composite(rgb, a_unc, colour)),
            "RGBA cut-out": (
                lambda: imageops.rgba_cutout(rgb, a_def),
                lambda: imageops_fast.rgba_cutout(rgb, a_def, as_image=True)),
        }
        row = {}
        for stage, (ref, fast) in stages.items():
            d, f = _best_of(ref, fast, n)
            row[stage] = {"definition": d, "fast": f}
        keys = ("photo -> model input", "output -> alpha at photo size", "composite over a colour")
        row["overhead per photo (input + alpha + composite)"] = {
            k: round(sum(row[s][k] for s in keys), 3) for k in ("definition", "fast")}
        result["sizes"][name] = row
    return result


def to_markdown(result: dict) -> str:
    lines = []
    if result.get("model_ms") is not None:
        lines.append(f"model alone: {result['model_ms']:.3f} ms ({Path(result['model']).name}, {result['engine']})")
        lines.append("")
    lines.append("| photo | stage | definition ms | fast ms | x faster |")
    lines.append("|---|---|---:|---:|---:|")
    for name, row in result["sizes"].items():
        for stage, v in row.items():
            x = v["definition"] / v["fast"] if v["fast"] else float("inf")
            lines.append(f"| {name} | {stage} | {v['definition']:.2f} | {v['fast']:.2f} | {x:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    ap = argparse.ArgumentParser(prog="python -m edgematting.bench.pipeline", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--artifact", default=None, help="also time this artifact alone (e.g. an int8 .tflite)")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    result = measure(args.artifact, args.runs)
    sys.stdout.write(to_markdown(result))
    if args.json:
        from ..atomic import write_json

        write_json(args.json, result)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
