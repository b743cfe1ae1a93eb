"""edgematting evaluate: segmentation and matting metrics on a folder dataset."""
from __future__ import annotations


def register(sub):
    p = sub.add_parser(
        "evaluate",
        help="IoU, boundary F and matting errors (SAD, MSE, Grad, Conn) on a folder dataset",
        description="Predict every photo of DIR (image/ and alpha/ subfolders) at the model's "
        "input size, resize each alpha back to the photo's own resolution and compare it with "
        "the full-resolution ground truth: person IoU, DAVIS boundary F, and the Deep Image "
        "Matting errors SAD, MSE, MAD, Grad and Conn over the whole image and over an "
        "automatically derived unknown band around the person's edge and away from it, and stray "
        "regions (predicted parts where there is no person, people missed). Prints a table and "
        "writes a JSON report with a row per image. With --clips DIR instead: video clips with a matte "
        "per frame, streamed frame by frame, with IoU, boundary F and SAD per frame and flicker and dtSSD "
        "per clip (--smooth: also with temporal smoothing).",
    )
    p.add_argument("model", metavar="MODEL", help="model directory (model.keras + model.json), or a converted "
                   ".tflite/.onnx/.mlpackage with its sidecar (what the phone computes)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", metavar="DIR", help="dataset folder with image/ and alpha/")
    src.add_argument("--clips", metavar="DIR", help="instead: video clips with a matte per frame (DIR/<clip>.mp4 + "
                     "DIR/<clip>/alpha/*.png; `edgematting clips make DIR`): IoU, boundary F, SAD per frame, "
                     "flicker and dtSSD per clip")
    p.add_argument("--smooth", type=float, nargs="?", const=0.5, default=None, metavar="W",
                   help="with --clips: also score with predict's --smooth (temporal smoothing, W the current "
                   "frame's share; default when given: 0.5), beside the model's own alpha")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="evaluate the first N images only (with --clips: the first N clips)")
    p.add_argument("--skip-bad", action="store_true", help="skip unreadable or unpaired files instead of stopping")
    p.add_argument("--out", default=None, metavar="FILE",
                   help="JSON report (default: MODEL/eval-<data folder>-<hash>.json, named by the data set; "
                   "ARTIFACT.eval-<data folder>-<hash>.json for an artifact)")
    p.add_argument("--batch-size", type=int, default=8, help="images per model call (default: 8)")
    p.add_argument("--threads", type=int, default=1, help="runtime threads for an artifact (default 1)")
    from .cmd_predict import add_keep_largest_arguments, add_upsample_arguments

    add_upsample_arguments(p)
    add_keep_largest_arguments(p)
    from ..refine import add_refine_arguments

    add_refine_arguments(p, cutouts=False)
    p.add_argument("--teacher", default=None, metavar="SPEC",
                   help="also report agreement with this teacher (as `train --teacher`); --data may then be "
                   "a folder of photos without mattes")
    p.add_argument("--teacher-input", default=None, help="foreign teacher input normalization (see train --help)")
    p.add_argument("--teacher-channels", default="RGB", help="foreign teacher channel order")
    p.add_argument("--teacher-output", default=None, help="foreign teacher output kind (see train --help)")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from pathlib import Path

    from rich.console import Console

    from ..evaluation.evaluate import evaluate_model, print_report

    from ..imageops import parse_upsample
    from ..refine import refine_config_from_args
    from .cmd_predict import keep_largest_from_args

    console = Console()
    if args.clips is not None:
        return _run_clips(args, console)
    if args.smooth is not None:
        from ..errors import InputError

        raise InputError("--smooth applies to --clips (it smooths the alpha from frame to frame).")
    guided = parse_upsample(args.upsample, args.guided_radius, args.guided_eps)
    teacher = None
    if args.teacher:
        from ..teacher import TeacherOptions, resolve_teacher

        teacher = resolve_teacher(args.teacher, TeacherOptions(input=args.teacher_input, channels=args.teacher_channels,
                                                               output=args.teacher_output))
    result = evaluate_model(
        args.model,
        args.data,
        limit=args.limit,
        skip_bad=args.skip_bad,
        progress=console.is_terminal,
        out=args.out,
        batch_size=args.batch_size,
        teacher=teacher,
        guided=guided,
        num_threads=args.threads,
        refine=refine_config_from_args(args),
        keep_largest=keep_largest_from_args(args),
    )
    print_report(result, console)
    console.print(f"report: {result['json']}", highlight=False, soft_wrap=True)
    from ..formats import target_of
    from ._console import next_hint

    if target_of(args.model) == "keras":
        print(next_hint("edgematting", "convert", args.model, "--target", "all"))
    else:
        print(next_hint("edgematting", "bench", Path(args.model).resolve().parent.parent))
    return 0


def _run_clips(args, console) -> int:
    from ..errors import InputError
    from ..evaluation.clips import evaluate_clips, print_report
    from ..imageops import parse_upsample

    for flag, on in (("--skip-bad", args.skip_bad), ("--teacher", args.teacher),
                     ("--refine", args.refine not in (None, "none")), ("--keep-largest", args.keep_largest)):
        if on:
            raise InputError(f"{flag} is not available with --clips (it scores the model's alpha, upsampled as "
                             "--upsample says, with and without --smooth); drop it.")
    guided = parse_upsample(args.upsample, args.guided_radius, args.guided_eps)
    result = evaluate_clips(args.model, args.clips, smooth=args.smooth, out=args.out, num_threads=args.threads,
                            batch_size=args.batch_size, limit=args.limit, progress=console.is_terminal,
                            guided=guided)
    print_report(result, console)
    console.print(f"report: {result['json']}", highlight=False, soft_wrap=True)
    from ._console import next_hint

    print(next_hint("edgematting", "predict", args.model, "VIDEO.mp4", "--out", "cut.mp4", "--smooth"))
    return 0
