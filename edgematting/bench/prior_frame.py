"""Does the previous frame's alpha as a 4th input help? Train with and without it, then score clips.

``python -m edgematting.bench.prior_frame --out runs/prior --minutes 5`` trains a Fast-SCNN
without and with the prior channel (`edgematting.prior`) for the same wall-clock time (same
data, seed, size, schedule; ``--only NAME`` trains one, so that two processes started
together share the machine's load), then evaluates both, and the no-prior model with
``--smooth``, on held-out synthetic clips with `evaluation.clips.evaluate_clips` (what
``edgematting evaluate MODEL --clips DIR`` runs: a prior-frame model is fed its own previous
output, as `predict_video` does): the table of docs/experiments.md ("A prior-frame model").
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def _train(out: Path, prior: bool, minutes: float, args) -> dict:
    from ..training import TrainConfig, train

    cfg = TrainConfig(model="fast-scnn", input_size=args.size, width=args.width, epochs=args.epochs,
                      batch_size=args.batch_size, steps_per_epoch=args.steps, synthetic_pool=args.pool,
                      n_synthetic_val=32, seed=0, time_limit=minutes, calibrate_alpha=False,
                      model_options={"prior": True} if prior else {}, out=str(out))
    t0 = time.perf_counter()
    r = train(cfg, progress=False)
    return {"seconds": time.perf_counter() - t0, "epochs": r.epochs_run, "steps": r.optimizer_iterations,
            "best_val_iou": r.best_metric, "stopped": r.stopped_early}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m edgematting.bench.prior_frame", description=__doc__.split("\n")[0])
    p.add_argument("--out", default="runs/prior-frame")
    p.add_argument("--minutes", type=float, default=5.0, help="training time of each model")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--width", type=float, default=0.5)
    p.add_argument("--epochs", type=int, default=16)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--pool", type=int, default=400)
    p.add_argument("--clips", type=int, default=6, help="held-out clips (edgematting clips make --n)")
    p.add_argument("--frames", type=int, default=48, help="frames per clip")
    p.add_argument("--skip-train", action="store_true", help="evaluate the models already in --out")
    p.add_argument("--only", choices=("no-prior", "prior"), help="train this one model only (run both at once, "
                   "in two processes, so that they share the machine's load equally), then stop")
    a = p.parse_args(argv)
    root = Path(a.out)
    results: dict = {"args": vars(a)}
    if not a.skip_train:
        from ..data.pipeline import DataConfig, build_synthetic_pool

        # the pool first, so that neither model's time limit pays for generating it
        build_synthetic_pool(DataConfig(input_size=(a.size, a.size), synthetic_pool=a.pool, seed=0))
        for name, prior in (("no-prior", False), ("prior", True)):
            if a.only in (None, name):
                results[f"train_{name}"] = _train(root / name, prior, a.minutes, a)
                print(name, results[f"train_{name}"], flush=True)
                (root / f"train_{name}.json").write_text(json.dumps(results[f"train_{name}"], indent=1))
        if a.only:
            return 0
    from ..evaluation.clips import evaluate_clips, make_clips

    clips = root / "clips"
    if not clips.is_dir():
        make_clips(clips, n=a.clips, frames=a.frames)
    for name in ("no-prior", "prior"):
        r = evaluate_clips(root / name, clips, smooth=True if name == "no-prior" else None, out=False,
                           progress=False)
        results[name] = r["variants"]["none"]["mean"]
        if name == "no-prior":
            results["no-prior --smooth"] = r["variants"]["smooth"]["mean"]
    (root / "results.json").write_text(json.dumps(results, indent=1))
    print(_table(results))
    return 0


def _table(results: dict) -> str:
    keys = [k for k in ("iou", "boundary_f", "sad", "flicker", "dtssd") if k in results["prior"]]
    lines = ["| model | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for name in ("no-prior", "no-prior --smooth", "prior"):
        lines.append(f"| {name} | " + " | ".join(f"{results[name][k]:.4g}" for k in keys) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
