"""`edgematting clips make DIR`: held-out synthetic video clips with a true matte per frame."""
from __future__ import annotations


def _size(s: str) -> tuple[int, int]:
    from ..errors import InputError

    try:
        w, h = (int(v) for v in s.lower().split("x"))
    except ValueError:
        raise InputError(f"--size takes WIDTHxHEIGHT, e.g. 192x256 (got {s!r}).") from None
    return h, w


def register(sub):
    p = sub.add_parser(
        "clips",
        help="make held-out synthetic video clips with a true matte per frame (for evaluate --clips)",
        description="Video clips with per-frame ground truth, in the clip folder format that "
        "`edgematting evaluate MODEL --clips DIR` reads (DIR/<clip>.mp4 + DIR/<clip>/alpha/000000.png ...).",
    )
    sp = p.add_subparsers(dest="clips_command", metavar="ACTION", required=True)
    m = sp.add_parser(
        "make", help="write N synthetic clips (still/move/turn over a static/moving background)",
        description="Write N synthetic clips: one procedural portrait each (seeds from 10000, held out "
        "from training on synthetic data), still, swaying (move) or leaning (turn), over a static "
        "background or a panning one (cycling over the six combinations), as H.264 mp4 (CRF 18) and "
        "the exact 8-bit matte of every frame, plus clips.json saying what made them.")
    m.add_argument("out", metavar="DIR", help="clip folder to write (created; existing clips of the same name "
                   "are replaced)")
    m.add_argument("--n", type=int, default=6, help="number of clips (default 6: every motion x background)")
    m.add_argument("--frames", type=int, default=48, help="frames per clip (default 48)")
    m.add_argument("--size", type=_size, default=(256, 192), metavar="WxH", help="frame size (default 192x256)")
    m.add_argument("--seed", type=int, default=10_000, help="first clip's portrait seed (default 10000)")
    m.add_argument("--fps", type=float, default=25.0, help="frame rate (default 25)")
    m.add_argument("--png", action="store_true", help="frames as PNG in DIR/<clip>/image/ (lossless) instead "
                   "of an mp4")
    m.set_defaults(func=run)
    return p


def run(args) -> int:
    from ..evaluation.clips import make_clips
    from ._console import next_hint

    out = make_clips(args.out, n=args.n, frames=args.frames, size=args.size, seed=args.seed, fps=args.fps,
                     video=not args.png)
    print(f"wrote {args.n} clips of {args.frames} frames ({args.size[1]}x{args.size[0]}) to {out}")
    print(next_hint("edgematting", "evaluate", "MODEL", "--clips", str(out), "--smooth"))
    return 0
