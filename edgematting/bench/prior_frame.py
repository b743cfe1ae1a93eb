"""Does the previous frame's alpha as a 4th input help? Train with and without it, then score clips.

``python -m edgematting.bench.prior_frame --out runs/prior --minutes 5`` trains a Fast-SCNN
without and with the prior channel (`edgematting.prior`) for the same wall-clock time (same
data, seed, size, schedule; ``--only NAME`` trains one, so that two processes started
together share the machine's load), then evaluates both, and the no-prior model with
``--smooth``, on held-out synthetic clips with `evaluation.clips.evaluate_clips` (what
``edgematting evaluate MODEL --clips DIR`` runs: a prior-frame model is fed its own previous
output, as `predict_video` does): the table of docs/experiments.md ("A prior-frame model").

``--prior-sim v2`` trains the prior model with another simulation of its priors
(`prior.PRESETS`, or a JSON object of `prior.PriorSimConfig` fields), ``--stop-after-epochs
N`` stops a run planned for ``--epochs`` after N epochs (the recorded runs' schedule without
their clock), and ``--diagnose MODEL...`` scores models frame by frame with their own, the
true previous and a zero prior (`diagnose`): "Prior v2" in docs/experiments.md.
``--init-weights MODEL --lr LR [--seed N]`` fine-tunes both from a trained model (the prior model from
a 3-channel one starts as that model, its prior channel's weights zero): "Prior v3".
"""
from __future__ import annotations

import argparse
import json
import time
from contextlib import contextmanager
from pathlib import Path


def _train(out: Path, prior: bool, minutes: float, args) -> dict:
    from ..prior import simulation
    from ..training import TrainConfig, train

    cfg = TrainConfig(model="fast-scnn", input_size=args.size, width=args.width, epochs=args.epochs,
                      batch_size=args.batch_size, steps_per_epoch=args.steps, synthetic_pool=args.pool,
                      n_synthetic_val=32, seed=args.seed, time_limit=minutes, calibrate_alpha=False,
                      model_options={"prior": True} if prior else {}, out=str(out),
                      **({"lr": args.lr} if args.lr else {}), init_weights=args.init_weights)
    t0 = time.perf_counter()
    with _stop_after(args.stop_after_epochs), simulation(args.prior_sim):
        r = train(cfg, progress=False)
    return {"seconds": time.perf_counter() - t0, "epochs": r.epochs_run, "steps": r.optimizer_iterations,
            "best_val_iou": r.best_metric, "stopped": r.stopped_early}


@contextmanager
def _stop_after(epochs: int | None):
    """Within the block, `train` stops after `epochs` epochs as a time limit would stop it:
    the schedule stays the one planned for ``--epochs`` (the recorded runs: 24 planned, 21
    run when their 20 minutes ran out), the best model is exported as usual."""
    if not epochs:
        yield
        return
    from .._tf import keras
    from ..training import loop

    class StopAfter(keras().callbacks.Callback):
        def __init__(self, ctx):
            super().__init__()
            self.ctx = ctx

        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 >= epochs:
                self.ctx.stopped_early = f"stop_after_epochs {epochs}"
                self.model.stop_training = True

    original = loop._callbacks
    loop._callbacks = lambda ctx: [*original(ctx), StopAfter(ctx)]
    try:
        yield
    finally:
        loop._callbacks = original


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
    p.add_argument("--prior-sim", default="v1", metavar="NAME|JSON",
                   help="the prior model's simulated priors: a preset of edgematting.prior.PRESETS (v1: the "
                   "first runs' truth perturbed; v2: fast moves, more empty priors, holes, false blobs, soft "
                   "mattes, wrong shapes) or a JSON object of PriorSimConfig fields (default: v1)")
    p.add_argument("--stop-after-epochs", type=int, metavar="N",
                   help="stop after N epochs with the schedule planned for --epochs, as the recorded runs' "
                   "time limit did (24 planned, 21 run): the same steps and learning rates without the clock")
    p.add_argument("--init-weights", metavar="MODEL",
                   help="start both models from this model's weights (edgematting train --init-weights; a "
                   "prior model from a 3-channel one gets zeros for the prior channel: \"Prior v3\")")
    p.add_argument("--seed", type=int, default=0, help="data seed of the training runs (default 0, the recorded "
                   "runs'; another seed also draws another pool of portraits)")
    p.add_argument("--lr", type=float, help="peak learning rate (default: train's 3e-3; about a third of it "
                   "when fine-tuning with --init-weights)")
    p.add_argument("--diagnose", nargs="+", metavar="MODEL",
                   help="only diagnose these models on --clips-dir (IoU per frame with their own, the true "
                   "previous and a zero prior, by frame index) into --out/diagnose.json, and stop")
    p.add_argument("--clips-dir", help="the held-out clips for --diagnose (default: --out/clips)")
    a = p.parse_args(argv)
    from ..errors import EdgemattingError, InputError
    from ..prior import PriorSimConfig

    try:
        sim = a.prior_sim.strip()
        a.prior_sim = PriorSimConfig.from_dict(json.loads(sim) if sim.startswith("{") else sim).to_dict()
    except (InputError, ValueError, TypeError) as e:
        p.error(f"--prior-sim: {e}")
    if a.stop_after_epochs is not None and not 0 < a.stop_after_epochs <= a.epochs:
        p.error(f"--stop-after-epochs must be in 1..--epochs ({a.epochs}), got {a.stop_after_epochs}.")
    root = Path(a.out)
    if a.diagnose:
        from .. import atomic

        try:
            found = {m: diagnose(m, a.clips_dir or root / "clips") for m in a.diagnose}
        except EdgemattingError as e:
            p.exit(1, f"error: {e}\n")
        atomic.write_json(root / "diagnose.json", found)
        print(_diagnose_table(found))
        return 0
    results: dict = {"args": vars(a)}
    if not a.skip_train:
        from ..data.pipeline import DataConfig, build_synthetic_pool

        # the pool first, so that neither model's time limit pays for generating it
        build_synthetic_pool(DataConfig(input_size=(a.size, a.size), synthetic_pool=a.pool, seed=a.seed))
        for name, prior in (("no-prior", False), ("prior", True)):
            if a.only in (None, name):
                try:
                    results[f"train_{name}"] = _train(root / name, prior, a.minutes, a)
                except EdgemattingError as e:  # e.g. --init-weights not found or not a match
                    p.exit(1, f"error: {e}\n")
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


#: frame-index buckets of `diagnose`'s IoU (frame 0 has an empty prior)
BUCKETS = ((0, 1), (1, 6), (6, 24), (24, None))


def diagnose(model, clips_dir, limit: int | None = None) -> dict:
    """Why a prior-frame model scores what it scores: IoU per frame (bilinear, at the frame's
    size, the threshold of model.json, as `evaluate_clips`) with three priors: its **own**
    previous output (as `evaluate --clips`, what an app does), the **true** previous matte
    (frame t-1's truth at model size: a perfect, one-frame-late prior), and **zero** (every
    frame a first frame); also the IoU of the true previous matte itself (how far the figure
    moved). Returns means, means by frame-index bucket (`BUCKETS`) and per clip."""
    import numpy as np

    from ..evaluation.clips import clip_frames, scan_clips
    from ..evaluation.metrics import evaluate_alpha
    from ..imageops_fast import AlphaRows, resize_bilinear
    from ..predict import load_predictor

    runner, spec = load_predictor(model, None, num_threads=1)
    c = runner.contract
    mh, mw = c["height"], c["width"]
    modes = ("own", "true", "zero") if c.get("prior") else ("zero",)
    iou = {m: [] for m in (*modes, "lag")}  # per clip: the list of per-frame IoU

    def score(a_lr, rgb, gt):
        a = AlphaRows(a_lr, rgb, None)
        return evaluate_alpha(a.rows(0, a.shape[0]), gt, threshold=spec.threshold, keys=("iou",))["iou"]

    names = []
    for clip in scan_clips(clips_dir)[:limit]:
        names.append(clip.name)
        for m in iou:
            iou[m].append([])
        own = prev_gt = None
        for rgb, gt in clip_frames(clip):
            true = None if prev_gt is None else resize_bilinear(prev_gt, mh, mw)
            for m in modes:
                prior = {"own": own, "true": true, "zero": None}[m]
                a = runner.run(runner.inputs([rgb], [prior]))[0]
                if m == "own":
                    own = np.clip(a, 0.0, 1.0)
                iou[m][-1].append(score(a, rgb, gt))
            iou["lag"][-1].append(float("nan") if prev_gt is None else
                                  evaluate_alpha(prev_gt, gt, threshold=0.5, keys=("iou",))["iou"])
            prev_gt = gt

    def bucket(rows, lo, hi):
        vals = [v for r in rows for v in r[lo:hi]]
        return float(np.nanmean(vals)) if vals and not np.isnan(vals).all() else float("nan")

    out = {"model": str(model), "clips": names, "modes": list(iou)}
    for m, rows in iou.items():
        out[m] = {"mean": bucket(rows, 0, None),
                  "by_frame": {f"{lo}-{'' if hi is None else hi - 1}": bucket(rows, lo, hi) for lo, hi in BUCKETS},
                  "per_clip": [bucket([r], 0, None) for r in rows],
                  "per_frame": [[round(float(v), 4) for v in r] for r in rows]}
    return out


def _table(results: dict) -> str:
    keys = [k for k in ("iou", "boundary_f", "sad", "flicker", "dtssd") if k in results["prior"]]
    lines = ["| model | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for name in ("no-prior", "no-prior --smooth", "prior"):
        lines.append(f"| {name} | " + " | ".join(f"{results[name][k]:.4g}" for k in keys) + " |")
    return "\n".join(lines)


def _diagnose_table(found: dict) -> str:
    lines = ["| model | prior | IoU | " + " | ".join(f"frames {k}" for k in next(iter(found.values()))["zero"]["by_frame"])
             + " |", "|---|---|---|" + "---|" * len(BUCKETS)]
    for name, d in found.items():
        for m in d["modes"]:
            lines.append(f"| {name} | {m} | {d[m]['mean']:.3f} | "
                         + " | ".join(f"{v:.3f}" for v in d[m]["by_frame"].values()) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
