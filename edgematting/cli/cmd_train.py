"""edgematting train: train Fast-SCNN or MattingNet, with resume and fine-tuning."""
from __future__ import annotations

import argparse
import time

from ..models.registry import DEFAULT_ARCHITECTURE, REGISTRY, architecture_help, architecture_names

DEFAULTS = dict(
    model=DEFAULT_ARCHITECTURE, data="synthetic", input_size="256", epochs=10, batch_size=8, lr=3e-3,
    val_ratio=0.1, seed=0, strategy="default",
)


def register(sub):
    from .. import models
    from ..training.config import JitCompile, MixedPrecision, Strategy

    archs = REGISTRY.values()
    p = sub.add_parser(
        "train",
        help=f"train a {' or '.join(f'{a.task} ({a.name})' for a in archs)} model",
        description="Train a model on synthetic portraits or a folder with image/ and alpha/ "
        "(or mask/) subfolders. Keeps the best checkpoint by validation metric ("
        + ", ".join(f"{a.best_metric_label} for {a.name}" for a in archs)
        + "), logs history.csv/json and curves.png, and "
        "writes OUT/model.keras + OUT/model.json. An interrupted run (Ctrl-C, crash, kill) "
        "loses at most the epoch in progress: rerun with --resume.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", choices=architecture_names(), default=None,
                   help=f"architecture (default {DEFAULTS['model']}; with --resume: the run's). "
                   f"{architecture_help()}")
    p.add_argument("--data", default=None, help="'synthetic' or a dataset folder (default synthetic)")
    val = p.add_mutually_exclusive_group()
    val.add_argument("--val", default=None, help="validation folder (default: split off --data)")
    val.add_argument("--val-ratio", type=float, default=None, help="fraction of --data held out (default 0.1)")
    p.add_argument("--input-size", default=None, help="HEIGHT or HEIGHTxWIDTH, multiples of 16 (default 256)")
    p.add_argument("--width", type=float, default=None, help="channel width multiplier (default 1.0)")
    p.add_argument("--lite", action="store_true", default=None, help="lite variant (width = models.LITE_WIDTH)")
    p.add_argument("--model-option", action="append", default=None, metavar="KEY=VALUE",
                   help="architecture option, repeatable; VALUE is read as JSON when it parses. "
                   "E.g. --model-option head=fused [--model-option detail_stride=2]: a Fast-SCNN "
                   "head that fuses the 1/4 (or 1/2) features of the first stage, for sharper "
                   f"edges. Options (defaults): {models.options_help()}")
    p.add_argument("--loss-weight", action="append", default=None, metavar="TERM=W",
                   help="weight of one loss term, repeatable (0 turns it off), e.g. --loss-weight "
                   f"boundary=2. Terms (defaults): {_loss_terms_help()}")
    p.add_argument("--epochs", type=int, default=None, help="total epochs of the run (default 10)")
    p.add_argument("--batch-size", type=int, default=None, help="global batch size (default 8: better than 16 at equal training images, "
                   "docs/experiments.md)")
    p.add_argument("--lr", type=float, default=None,
                   help="peak learning rate, cosine decay with warm-up (default 3e-3; about 1e-3 when "
                   "fine-tuning with --init-weights)")
    p.add_argument("--progressive", default=None, metavar="SIZE:EPOCHS",
                   help="progressive resizing ('off': none, also with --minutes): first EPOCHS epochs at SIZE "
                   "(into OUT/progressive), then "
                   "--epochs at --input-size from its best weights at a third of --lr. E.g. --input-size 256 "
                   "--progressive 128:84 --epochs 12: most steps at a quarter of the cost; MattingNet's best "
                   "edges at equal training FLOPs (docs/experiments.md, Edges)")
    p.add_argument("--steps-per-epoch", type=int, default=None, help="steps per epoch (default: the dataset size)")
    p.add_argument("--out", required=True, help="run directory, e.g. runs/NAME")
    p.add_argument("--resume", action="store_true", help="continue the run in --out where it stopped")
    p.add_argument("--init-weights", default=None, metavar="PATH",
                   help="fine-tune from a model dir or .keras/.h5 file (layers matched by name and shape; a "
                   "prior-frame model (--model-option prior=true) from a 3-channel one gets zeros for the prior "
                   "channel, so it starts as that model: docs/reference.md, \"Recipe: warm start\")")
    p.add_argument("--seed", type=int, default=None, help="data seed (default 0)")
    p.add_argument("--no-augment", action="store_true", default=None, help="turn augmentation off")
    p.add_argument("--backgrounds", default=None, metavar="DIR", help="background photos to composite foregrounds onto")
    p.add_argument("--skip-bad", action="store_true", default=None, help="skip unreadable/unpaired files instead of failing")
    p.add_argument("--strategy", choices=[s.value for s in Strategy], default=None,
                   help="tf.distribute strategy (multiworker reads TF_CONFIG; default: default)")
    p.add_argument("--mixed-precision", default=None, metavar="{" + ",".join(m.value for m in MixedPrecision) + "}",
                   help="dtype policy while training: auto (default) = float16 on a GPU, float32 "
                   "on a CPU; bfloat16 for CPUs/TPUs with native bf16; off = float32. The output "
                   "layer stays float32 and the exported model.keras is always float32")
    p.add_argument("--jit-compile", default=None, metavar="{" + ",".join(j.value for j in JitCompile) + "}",
                   help="XLA-compile the training step: auto (default) = on with a GPU, off on a CPU")
    p.add_argument("--time-limit", type=float, default=None, metavar="MIN",
                   help="stop cleanly after the epoch in progress when MIN minutes are spent")
    p.add_argument("--minutes", type=float, default=None, metavar="N",
                   help="train the best measured recipe for an N-minute budget: a short probe measures "
                   "images/s here, then batch, lr, progressive stage, epochs and steps per epoch are set so "
                   "the run ends within N minutes (a time limit of N, counted from the start, stops it after "
                   "the epoch in progress). Flags you give win over the recipe (--progressive off drops its "
                   "first stage); model.json records the choice; --resume keeps the run's recipe. The table: "
                   "docs/reference.md, Training within a time budget")
    d = p.add_argument_group(
        "distillation", "Label photos with a teacher model and train on its soft mattes (no labelling needed); "
        "with --data as well, labelled and teacher-labelled photos are mixed.")
    d.add_argument("--teacher", default=None, metavar="SPEC",
                   help="mediapipe | mediapipe-landscape (after `edgematting peer fetch`), a model directory, "
                   "a converted artifact with its sidecar, or any .tflite/.onnx file (then say what its "
                   "sidecar would with the --teacher-* flags)")
    d.add_argument("--unlabelled", default=None, metavar="DIR", help="photos for the teacher to label")
    d.add_argument("--distill-weight", type=float, default=None, metavar="W",
                   help="loss weight of teacher-labelled photos (default 1)")
    d.add_argument("--teacher-input", default=None, metavar="NORM",
                   help="foreign teacher input: 0,1 | -1,1 | 0,255 | imagenet | 'mean=R,G,B;std=R,G,B' (pixel units)")
    d.add_argument("--teacher-channels", default=None, metavar="{RGB,BGR}", help="foreign teacher channel order")
    d.add_argument("--teacher-output", default=None, metavar="KIND",
                   help="foreign teacher output: probability | logits | 2class:K | channel:K (K = person)")
    d.add_argument("--teacher-size", default=None, metavar="HxW", help="foreign teacher input size, if not fixed")
    d.add_argument("--teacher-edges", action="store_true", default=None,
                   help="binary labels in --data take the teacher's soft matte inside their edge band (hair, soft "
                   "edges), the label everywhere else")
    p.add_argument("--calibrate-alpha", action=argparse.BooleanOptionalAction, default=None,
                   help="at the end of the run, fit alpha' = clip((alpha - lo) / (hi - lo), 0, 1) on the "
                   "validation split (lowest SAD with boundary F, IoU and near-edge SAD kept) and fold it into the "
                   "exported model, so that the alpha is 0 or 1 away from the edge (default: on; "
                   "docs/experiments.md, A decisive alpha). `edgematting calibrate` does it for a trained model")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def _loss_terms_help() -> str:
    from dataclasses import fields

    from ..models.registry import REGISTRY

    def fmt(v):
        return ",".join(map(str, v)) if isinstance(v, tuple) else f"{v:g}"

    return "; ".join(f"{spec.name}: " + ", ".join(f"{f.name}={fmt(f.default)}" for f in fields(spec.loss_weights_class()))
                     for spec in REGISTRY.values())


def config_from_args(args, measure=None, started=None):
    """TrainConfig from parsed args; with --resume, unset flags come from the run. With
    --minutes, the recipe for the budget (`training.recipes.plan_for_budget`; `measure`
    replaces its images/s probe, for tests; `started`, a time.monotonic() reading, is when
    the budget began: by default now)."""
    from ..models import parse_model_options
    from ..training import TrainConfig, load_run_config, resumable

    minutes = getattr(args, "minutes", None)
    started = time.monotonic() if started is None else started  # the probe is part of the budget
    if minutes is not None:
        from ..training.recipes import check_minutes

        check_minutes(minutes)
        if args.time_limit is not None:
            from ..errors import InputError

            raise InputError("--minutes N sets the time limit itself (N minutes); pass --minutes or "
                             "--time-limit, not both.")
    progressive_off = str(args.progressive).strip().lower() in ("off", "none") if args.progressive else False

    given = {
        "model": args.model,
        "data": args.data,
        "val": args.val,
        "val_ratio": args.val_ratio,
        "input_size": args.input_size,
        "width": args.width,
        "lite": args.lite,
        "model_options": parse_model_options(args.model_option) if args.model_option else None,
        "loss_weights": (parse_model_options(args.loss_weight, "--loss-weight", "boundary=2")
                         if args.loss_weight else None),
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "steps_per_epoch": args.steps_per_epoch,
        "seed": args.seed,
        "augment": False if args.no_augment else None,
        "backgrounds": args.backgrounds,
        "skip_bad": args.skip_bad,
        "strategy": args.strategy,
        "mixed_precision": args.mixed_precision,
        "jit_compile": args.jit_compile,
        "progressive": None if progressive_off else args.progressive,
        "time_limit": args.time_limit,
        "init_weights": args.init_weights,
        "teacher": args.teacher,
        "unlabelled": args.unlabelled,
        "distill_weight": args.distill_weight,
        "teacher_input": args.teacher_input,
        "teacher_channels": args.teacher_channels,
        "teacher_output": args.teacher_output,
        "teacher_size": args.teacher_size,
        "teacher_edges": args.teacher_edges,
        "calibrate_alpha": args.calibrate_alpha,
    }
    if args.val_ratio is not None and (args.data or ("" if args.unlabelled else "synthetic")) == "synthetic" \
            and not args.resume:
        from ..errors import InputError

        raise InputError(
            "--val-ratio splits a dataset folder; with --data synthetic validation uses "
            "fresh synthetic portraits. Drop --val-ratio, or pass --data DIR."
        )
    if args.resume:
        if resumable(args.out):
            if args.lite:
                given["width"] = None  # --lite decides the width below, not the stored one
            if minutes is not None:  # the run keeps its recipe; N minutes is this call's budget
                given["time_limit"] = minutes
            return load_run_config(args.out, **given)
    cfg = {**DEFAULTS, **{k: v for k, v in given.items() if v is not None}}
    if args.unlabelled and args.data is None:
        cfg["data"] = None  # teacher-labelled photos only
    cfg = TrainConfig(out=args.out, resume=args.resume, **cfg)  # checks every flag before the probe
    if minutes is None:
        return cfg
    from ..training.recipes import plan_for_budget

    user = {k for k, v in given.items() if v is not None} | ({"progressive"} if progressive_off else set())
    return plan_for_budget(cfg, minutes, user, measure=measure, started=started).config


def run(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from ..training import train

    from ..training import resumable

    resumed = args.resume and resumable(args.out)
    cfg = config_from_args(args)  # --minutes: the budget counts from here (imports before it do not)
    console = Console()
    if cfg.recipe:
        from ..training.recipes import describe

        if not resumed:
            for line in describe(cfg.recipe):
                console.print(line, highlight=False, soft_wrap=True)
        elif getattr(args, "minutes", None) is not None:
            console.print(f"resuming with the run's recipe ({cfg.recipe['band']} band for "
                          f"{cfg.recipe['minutes']:g} min); this call stops at {args.minutes:g} min", highlight=False)
    result = train(cfg, progress=not args.quiet)

    table = Table(title=f"training {cfg.architecture} -> {result.out_dir}")
    table.add_column("item")
    table.add_column("value", justify="right")
    table.add_row("epochs run (this call)", str(result.epochs_run))
    if result.stage:
        table.add_row("stage", result.stage)
    table.add_row("epochs completed", f"{result.epochs_completed} / {result.epochs_planned or cfg.epochs}")
    if result.best_metric is not None:
        table.add_row(f"best {result.metric_name}", f"{result.best_metric:.4f} (epoch {result.best_epoch})")
    if result.images_per_second:
        table.add_row("training images/s", f"{result.images_per_second:.1f}")
    table.add_row("replicas", str(result.num_replicas))
    if result.stopped_early:
        table.add_row("stopped", "time limit reached")
    cal = result.alpha_calibration
    if cal:
        b, a = cal.get("before") or {}, cal.get("after") or {}
        change = (f" (SAD {b['sad']:.3f} -> {a['sad']:.3f}, boundary F {b['boundary_f']:.3f} -> "
                  f"{a['boundary_f']:.3f})" if b.get("sad") is not None and a.get("sad") is not None
                  and b.get("boundary_f") is not None and a.get("boundary_f") is not None else "")
        table.add_row("alpha calibration", "identity (model unchanged)" if cal.get("identity")
                      else f"lo {cal['lo']:.2f}, hi {cal['hi']:.2f}{change}")
    from ._console import next_hint, show_table

    show_table(table, console)
    out = result.out_dir
    console.print(f"model: {out}/model.keras + model.json   logs: {out}/history.csv, {out}/curves.png")
    first_stage = result.stage.startswith("1/")
    if result.epochs_completed < (result.epochs_planned or cfg.epochs) or first_stage:
        console.print("continue: " + next_hint("edgematting", "train", "--out", cfg.out, "--resume")[6:],
                      highlight=False, soft_wrap=True)
    if first_stage:
        return 0
    print(next_hint("edgematting", "evaluate", out, "--data", "YOUR_VAL_DIR"))
    return 0
