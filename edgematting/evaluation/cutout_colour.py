"""Colour error of cut-outs placed on a new background, on synthetic portraits.

The synthetic generator knows each photo's true foreground colours, background and matte,
so the composite a perfect cut-out would give on a *new* background is known exactly:
``alpha * fg + (1 - alpha) * new_bg``. A cut-out made from the photo (its own pixels, or
the estimated foreground colours of `edgematting.refine.estimate_foreground`) and an alpha
(the ground truth, the model's, or the model's refined) is composited on the same new
background and compared with it: mean absolute difference in 0..255 levels (mean over
pixels and channels), over the ground truth's unknown band (`metrics.unknown_band`) and
over the whole image.

    python -m edgematting.evaluation.cutout_colour runs/fast_scnn --n 64 --size 320 --seed 10000

The photos are exactly those of ``write_synthetic_folder(dir, n, (size, size), seed)``.
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from .. import imageops
from .metrics import unknown_band


def colour_errors(photo, fg_true, alpha_true, new_bg, alpha, foreground) -> dict:
    """{'band': ..., 'image': ...}: mean |composite - true composite| in 0..255 levels."""
    truth = imageops.composite(fg_true, alpha_true, new_bg).astype(np.float32)
    ours = imageops.composite(photo, alpha, new_bg, foreground=foreground).astype(np.float32)
    err = np.abs(ours - truth).mean(-1)
    band = unknown_band(alpha_true)
    return {"band": float(err[band].mean()) if band.any() else float("nan"), "image": float(err.mean())}


def measure(model=None, n: int = 64, size: int = 320, seed: int = 10000, refine=None, batch: int = 8) -> dict:
    """Colour errors for alpha in {ground truth, model[, model refined]} x colours in {photo,
    estimated}. `model`: a model directory (None: ground-truth alpha only). `refine`: a
    `RefineConfig` with refine="trimap" for the refined rows. Returns {row: {band, image}}."""
    from ..data.synthetic import SyntheticPortraits
    from ..refine import RefineConfig, estimate_foreground, refine_alpha

    gen = SyntheticPortraits(size=(size, size), seed=seed)
    bgs = SyntheticPortraits(size=(size, size), seed=seed + 1)  # new backgrounds, never the photo's
    fn = spec = None
    if model is not None:
        from ..predict import load_predictor

        fn, spec = load_predictor(model)
    cfg = RefineConfig()
    rows: dict[str, list] = {}
    for start in range(0, n, batch):
        samples = [gen.sample(i) for i in range(start, min(n, start + batch))]
        alphas = {"ground-truth alpha": [s["alpha"] for s in samples]}
        if fn is not None:
            from ..predict import predict_alphas

            pred = predict_alphas(fn, spec, [s["image"] for s in samples])
            alphas["model alpha"] = pred
            if refine is not None and refine.enabled:
                alphas[f"model alpha, --refine trimap ({refine.method.value})"] = [
                    refine_alpha(s["image"], a, refine) for s, a in zip(samples, pred)]
        for k, s in enumerate(samples):
            new_bg = bgs.background(10**6 + start + k)
            for name, al in alphas.items():
                a = al[k]
                for colours, fg in (("photo colours", s["image"]), ("estimated colours", estimate_foreground(s["image"], a, cfg))):
                    rows.setdefault(f"{name}, {colours}", []).append(
                        colour_errors(s["image"], s["fg"], s["alpha"], new_bg, a, fg))
    return {k: {m: float(np.nanmean([r[m] for r in v])) for m in ("band", "image")} for k, v in rows.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", nargs="?", default=None, help="model directory (omit: ground-truth alpha only)")
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--size", type=int, default=320)
    p.add_argument("--seed", type=int, default=10000)
    p.add_argument("--refine-method", default=None, help="also rows with --refine trimap and this method")
    p.add_argument("--json", default=None, help="write the table as JSON here")
    a = p.parse_args(argv)
    from ..refine import RefineConfig

    refine = RefineConfig(refine="trimap", method=a.refine_method) if a.refine_method else None
    res = measure(a.model, a.n, a.size, a.seed, refine)
    print(f"| {a.n} synthetic {a.size}x{a.size} photos (seed {a.seed}), new background | "
          "colour error, unknown band | whole image |")
    print("|---|---|---|")
    for k, v in res.items():
        print(f"| {k} | {v['band']:.2f} | {v['image']:.2f} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
