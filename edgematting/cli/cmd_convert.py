"""`edgematting convert MODEL --target ... --precision ...`: convert, verify, tabulate."""
from __future__ import annotations

import argparse
from pathlib import Path

HELP = "Convert a model directory to TFLite, Core ML and/or ONNX, and verify each artifact."


def _registry():
    from ..converters.base import REGISTRY, Precision

    return REGISTRY, [p.value for p in Precision]


def register(sub) -> argparse.ArgumentParser:
    registry, precisions = _registry()
    targets = list(registry) + ["all"]
    p = sub.add_parser(
        "convert", help=HELP, description=HELP,
        epilog="Supported combinations:\n" + "\n".join(
            f"  {t}: {', '.join(s.precisions)} (input {'/'.join(s.input_types)}, "
            f"channels {'/'.join(map(str, s.channels))})" for t, s in registry.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", help="model directory (model.keras + model.json)")
    # Choices come from REGISTRY; they are checked by the library (which suggests the
    # closest name and exits 2/4) rather than by argparse, whose error has no suggestion.
    p.add_argument("--target", default="tflite", metavar="{" + ",".join(targets) + "}",
                   help="target format, or 'all' (every target that supports the precision)")
    p.add_argument("--precision", default="fp32", metavar="{" + ",".join(precisions) + "}")
    p.add_argument("--calib", default="synthetic", help="calibration images: 'synthetic' or a folder")
    p.add_argument("--calib-samples", type=int, default=64, metavar="N")
    p.add_argument("--input", dest="input_type", default="float", metavar="{float,uint8}",
                   help="float: normalized float input; uint8: raw pixels, normalization in the model")
    p.add_argument("--channels", type=int, default=3, metavar="{3,4}",
                   help="4 = RGBA/BGRA input (alpha ignored), e.g. Android bitmaps")
    p.add_argument("--out", default=None, help="output folder (default: MODEL/export)")
    g = p.add_argument_group("TFLite")
    g.add_argument("--tflite-io", default=None, metavar="{int8,uint8,float}",
                   help="I/O type around a full-integer body (default: uint8 with --input uint8, else float)")
    g = p.add_argument_group("ONNX")
    g.add_argument("--opset", type=int, default=17)
    g.add_argument("--nchw", action="store_true", help="NCHW input layout")
    g.add_argument("--no-dynamic-batch", dest="dynamic_batch", action="store_false",
                   help="fixed batch size 1")
    g = p.add_argument_group("Core ML")
    g.add_argument("--coreml-target", default="iOS15", metavar="{iOS15,iOS16,iOS17,iOS18}")
    g.add_argument("--palettize", type=int, default=None, metavar="{2,4,6,8}")
    g.add_argument("--alpha-image", action="store_true", help="grayscale image output")
    g.add_argument("--author", default="")
    g.add_argument("--license", default="")
    g = p.add_argument_group("verification")
    g.add_argument("--no-verify", dest="verify", action="store_false",
                   help="skip the parity check against the Keras model")
    g.add_argument("--verify-samples", type=int, default=8, metavar="N")
    p.set_defaults(func=run)
    return p


def _config_kwargs(args) -> dict:
    from ..errors import InputError

    if args.channels not in (3, 4):
        raise InputError(f"--channels takes 3 or 4, not {args.channels}.")
    if args.coreml_target not in ("iOS15", "iOS16", "iOS17", "iOS18"):
        raise InputError(f"--coreml-target takes iOS15, iOS16, iOS17 or iOS18, not {args.coreml_target}.")
    if args.tflite_io not in (None, "int8", "uint8", "float"):
        raise InputError(f"--tflite-io takes int8, uint8 or float, not {args.tflite_io}.")
    if args.verify_samples < 1:
        raise InputError("--verify-samples must be at least 1.")
    return dict(
        precision=args.precision, input_type=args.input_type, channels=args.channels,
        calib=args.calib, calib_samples=args.calib_samples, tflite_io=args.tflite_io,
        coreml_target=args.coreml_target, coreml_palettize=args.palettize,
        coreml_alpha_image=args.alpha_image, author=args.author, license=args.license,
        opset=args.opset, nchw=args.nchw, dynamic_batch=args.dynamic_batch,
        verify=args.verify, verify_samples=args.verify_samples,
    )


def run(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from ..converters import CALIBRATED, ExportConfig, convert_model, plan_targets
    from ..converters.base import get_target
    from ..errors import InputError, UnsupportedError

    console = Console(stderr=True)
    kw = _config_kwargs(args)
    # Validate everything before loading anything: unknown names exit 2, unsupported 4.
    if args.target == "all":
        ExportConfig(target="tflite", **{**kw, "precision": "fp32", "input_type": "float", "channels": 3})
        todo, skipped = plan_targets(args.precision, args.input_type, args.channels)
        if not todo:
            # re-run one check to raise the precise error (unknown precision -> 2, else 4)
            ExportConfig(target="tflite", **kw)
            raise UnsupportedError(
                f"No target supports precision '{args.precision}' with --input {args.input_type} "
                f"--channels {args.channels}.")
        for t, why in skipped.items():
            console.print(f"[yellow]skipping {t}[/]: {why}")
    else:
        get_target(args.target)
        todo = [args.target]
    configs = [ExportConfig(target=t, **kw) for t in todo]
    model_dir = Path(args.model)
    if not model_dir.exists():
        raise InputError(f"Model not found: {model_dir}. Train one with `edgematting train` first.")
    if args.precision not in CALIBRATED and args.calib != "synthetic":
        console.print(f"[yellow]note[/]: --calib is not used by precision {args.precision}.")
    if args.precision in CALIBRATED:
        from ..calibration import check_source

        check_source(args.calib)

    from ..modelio import load_model_dir

    with console.status(f"Loading {model_dir}"):
        model, spec = load_model_dir(model_dir)
    artifacts, errors = [], []
    for cfg in configs:
        try:
            artifacts.append(convert_model(model_dir, cfg, args.out, progress=True,
                                           model=model, spec=spec, console=console))
        except KeyboardInterrupt:
            raise
        except Exception as e:
            if len(configs) == 1:
                raise
            errors.append((cfg.target, e))
            console.print(f"[red]{cfg.target} {cfg.precision} failed[/]: {e}")

    table = Table(title="Artifacts")
    for col in ("file", "size KB", "convert s", "verification", "max abs", "mean abs", "IoU", "engine"):
        table.add_column(col, justify="right" if col in ("size KB", "convert s", "max abs", "mean abs", "IoU") else "left")
    for a in artifacts:
        r = a.verification
        table.add_row(
            str(a.path), f"{a.size_bytes / 1024:.1f}", f"{a.convert_seconds:.1f}",
            ("[green]passed[/]" if r.passed else "[red]FAILED[/]") if r else "skipped",
            f"{r.max_abs:.2e}" if r else "-", f"{r.mean_abs:.2e}" if r else "-",
            f"{r.iou:.4f}" if r else "-", r.engine if r else "-",
        )
    Console().print(table)
    if errors:
        first = errors[0][1]
        first.args = (f"{first} [failed targets: {', '.join(t for t, _ in errors)}]",)
        raise first
    print(f"next: edgematting bench {model_dir}")
    return 0
