"""`edgematting quickstart`: the whole job end to end on built-in synthetic data.

train (time-boxed) -> evaluate on held-out synthetic portraits -> cut out sample images
-> convert to every target (fp32, and full-int8 TFLite) with verification -> benchmark.
No downloads: every input is generated here.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import EdgemattingError
from .models.registry import DEFAULT_ARCHITECTURE, get_architecture


@dataclass
class QuickstartConfig:
    out: Path = Path("runs/quickstart")
    model: str = DEFAULT_ARCHITECTURE
    input_size: tuple[int, int] = (256, 256)
    width: float = 1.0
    minutes: float = 10.0
    batch_size: int = 16
    steps_per_epoch: int = 25
    lr: float = 3e-3
    val_images: int = 64
    seed: int = 0
    convert: bool = True
    bench: bool = True
    bench_runs: int = 30
    bench_images: int = 16
    resume: bool = False
    steps: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.out = Path(self.out)
        self.model = get_architecture(self.model, what="model").name
        from .training.recipes import check_minutes

        self.minutes = check_minutes(self.minutes)  # 0, negative, NaN: InputError


def run_quickstart(cfg: QuickstartConfig, console=None) -> dict:
    from rich.console import Console

    console = console or Console()
    out = cfg.out
    out.mkdir(parents=True, exist_ok=True)
    model_dir = out / cfg.model.replace("-", "_")
    data_dir = out / "heldout"
    samples_dir = out / "samples"
    summary: dict = {"model_dir": str(model_dir)}
    t0 = time.time()

    # 1. held-out synthetic portraits at a size other than the model's, so evaluation
    #    exercises resize-back (seed far from the training seeds).
    from .data.synthetic import write_synthetic_folder

    h, w = cfg.input_size
    if not (data_dir / "image").exists():
        console.rule("[bold]1/5 held-out synthetic data")
        write_synthetic_folder(data_dir, n=cfg.val_images, size=(h + h // 4, w + w // 4), seed=10_000 + cfg.seed)
    console.print(f"held-out set: {data_dir} ({cfg.val_images} images)")

    # 2. train, time-boxed. A short probe measures this machine's training speed so the
    #    number of epochs (and so the cosine LR schedule) fits the time budget; the time
    #    limit still stops training cleanly if the machine slows down.
    console.rule(f"[bold]2/5 train {cfg.model} for {cfg.minutes:g} min")
    from .training import STATE_FILE, TrainConfig, train

    resume = cfg.resume or (model_dir / STATE_FILE).exists()
    if resume:
        epochs = json.loads((model_dir / STATE_FILE).read_text()).get("config", {}).get("epochs", 1000)
    else:
        from .training.recipes import epochs_for_budget, measure_images_per_second

        # the probe and the sizing `train --minutes` uses (validation and checkpoints take 15%)
        ips = measure_images_per_second(cfg.model, cfg.input_size, cfg.batch_size, width=cfg.width)
        epochs = epochs_for_budget(cfg.minutes * 60, ips, cfg.steps_per_epoch, cfg.batch_size)
        console.print(f"training speed here: {ips:.1f} images/s -> {epochs} epochs of "
                      f"{cfg.steps_per_epoch} steps")
    tcfg = TrainConfig(
        model=cfg.model,
        data="synthetic",
        val=str(data_dir),
        input_size=cfg.input_size,
        width=cfg.width,
        epochs=int(epochs),
        steps_per_epoch=cfg.steps_per_epoch,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        out=str(model_dir),
        time_limit=cfg.minutes,
        seed=cfg.seed,
        resume=resume,
    )
    result = train(tcfg)
    summary["train"] = {
        "epochs": result.epochs_run,
        "best_epoch": result.best_epoch,
        "best_metric": result.best_metric,
        "images_per_second": result.images_per_second,
    }

    # 3. evaluate on the held-out set at the images' own resolution
    console.rule("[bold]3/5 evaluate")
    from .evaluation.evaluate import evaluate_model, print_report

    from .imageops import GuidedFilter

    ev = evaluate_model(model_dir, data_dir, guided=GuidedFilter())
    print_report(ev, console)
    summary["evaluate"] = ev.get("mean", ev)

    # 4. cut-outs
    console.rule("[bold]4/5 cut out sample images")
    from .data.io import list_images
    from .predict import predict_images

    images = list_images(data_dir / "image")[:6]
    from .imageops import GuidedFilter

    written = predict_images(model_dir, images, samples_dir, output="rgba", grid=out / "cutouts.png",
                             guided=GuidedFilter())
    predict_images(model_dir, images, samples_dir / "blur", output="composite", background="blur",
                   guided=GuidedFilter())
    summary["cutouts"] = [str(p) for p in written]

    # 5. convert + verify, then benchmark
    if cfg.convert:
        console.rule("[bold]5/5 convert, verify and benchmark")
        from .converters import ExportConfig, convert

        configs = [ExportConfig(target=t, precision=p, input_type=i) for t, p, i in (
            ("tflite", "fp32", "float"), ("tflite", "int8", "uint8"), ("onnx", "fp32", "float"),
            ("coreml", "fp16", "float"))]
        run = convert(model_dir, configs, console=console)  # a failure does not stop the others
        arts = [{"file": str(a.path), "verification": a.metadata.get("verification")} for a in run.artifacts]
        arts += [{"target": c.target, "precision": c.precision, "error": str(e)} for c, e in run.failures]
        summary["artifacts"] = arts
        if cfg.bench:
            try:
                from .bench.run import BenchConfig, run_bench

                from .peer import cached_mediapipe

                b = run_bench(BenchConfig(
                    model=str(model_dir), data=str(data_dir), data_limit=cfg.bench_images,
                    runs=cfg.bench_runs, warmup=5, threads=[1, 2],
                    peer="mediapipe" if cached_mediapipe() else None,
                ), console)
                summary["bench"] = str(b.get("json", ""))
            except EdgemattingError as e:
                console.print(f"[red]benchmark failed: {e}")

    summary["seconds"] = round(time.time() - t0, 1)
    (out / "quickstart.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return summary
