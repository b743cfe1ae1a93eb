"""Per-stage timing of the Python photo pipeline: the definition, the numpy fast path and the
OpenCV path, beside the model's own time.

    python -m edgematting.bench.pipeline [--artifact MODEL_int8.tflite] [--threads 1,2] [--runs N] [--json FILE]

For a 600x800 photo and a 12 MP (3000x4000) one, the best-of-N milliseconds of each stage
around the model, computed by the exact definitions of `edgematting.imageops`, by
`edgematting.imageops_fast` (numpy; bit for bit the definition's outputs, checked here) and
by `edgematting.imageops_cv` (OpenCV, the runtime's default; within its stated bounds of the
definition, measured here and printed), the OpenCV path at each ``--threads`` count: photo
-> model input, model output -> alpha at photo size (bilinear, and the guided filter:
`predict`'s default upsampling and the bench's end-to-end figure's, ``contract["guided_filter"]``),
composite over a colour, the same with an uncertain alpha (worst case), over the blurred
photo (numpy's blur is the definition's: timed up to 2 MP), RGBA cut-out, the
overhead an app pays per photo (input + alpha + composite) with bilinear and with guided
upsampling, and predict's way of doing alpha + composite (a strip of rows at a time, into
the PIL image it writes), bilinear and guided. With ``--artifact`` the model alone is timed in
the same process at each thread count, and both overheads are printed as multiples of it.

Times are the minimum over N runs, all variants alternating (within one round per thread
count; the definition's and numpy's best over all rounds), so that load from other
processes on a shared machine affects them alike (compare ratios, not absolute figures,
across machines). The definition and the numpy path are single-threaded whatever the count.

The alpha is a synthetic portrait's matte at model size, kept off exact 0/1 as a trained
model's is (``clip(alpha, 1e-4, 1 - 1e-4)``); the "uncertain alpha" row is the worst case
for the composites (an untrained model, every pixel soft).
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
GUIDED_STAGE = "output -> alpha, guided filter (predict's default)"
OVERHEAD = ("photo -> model input", "output -> alpha at photo size", "composite over a colour")
OVERHEAD_GUIDED = ("photo -> model input", GUIDED_STAGE, "composite over a colour")
OVERHEAD_ROW = "overhead per photo (input + alpha + composite)"
OVERHEAD_GUIDED_ROW = "overhead per photo, guided (input + guided alpha + composite)"
STRIPS_ROW = "alpha + composite a strip at a time (predict)"
STRIPS_GUIDED_ROW = "guided alpha + composite a strip at a time (predict's default)"
#: the blur's definition (numpy's too) is timed up to this many pixels (13 s a run at 12 MP)
BLUR_DEFINITION_PIXELS = 2e6
#: the overhead rows: (row, the stages it sums, its key in "overhead_vs_model")
TOTALS = ((OVERHEAD_ROW, OVERHEAD, "bilinear"), (OVERHEAD_GUIDED_ROW, OVERHEAD_GUIDED, "guided"))


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
        return pm.contract
    from ..modelio import ModelSpec
    from ..runners.photo import keras_contract

    return keras_contract(ModelSpec(architecture="fast-scnn", config={}, input_size=(256, 256)))


def _best_of_many(variants: dict, n: int) -> dict:
    """Best (minimum) ms of `n` runs of each ``name: (setup, fn)`` (setup untimed, may be
    None), all alternating so that they see the same load from whatever else runs."""
    for setup, fn in variants.values():
        if setup:
            setup()
        fn()
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(n):
        for name, (setup, fn) in variants.items():
            if setup:
                setup()
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return {k: round(v * 1e3, 3) for k, v in best.items()}


def _best_of(ref, fast, n: int) -> tuple[float, float]:
    """Best ms of `n` runs of two functions, alternating."""
    r = _best_of_many({"a": (None, ref), "b": (None, fast)}, n)
    return r["a"], r["b"]


def _model_ms(artifact: str, threads, runs: int) -> tuple[dict, str]:
    from .. import runners

    models = {str(t): runners.open(artifact, num_threads=t) for t in threads}
    x = next(iter(models.values())).inputs([_photo((800, 600))])
    got = _best_of_many({t: (None, lambda pm=pm: pm.run_raw(x)) for t, pm in models.items()}, runs * 2)
    return got, next(iter(models.values())).engine.split(" (")[0]


def measure(artifact: str | None = None, runs: int = 20, sizes=None, threads=(1, 2),
            definition_max_pixels: float | None = None) -> dict:
    """{"model_ms": {threads: ms}, "sizes": {name: {stage: {"definition": ms, "fast": ms,
    "opencv": {threads: ms}}}}, "bounds": {name: {...}}, "overhead_vs_model": {name: {threads:
    x}}, "overhead_vs_model_guided": {name: {threads: x}}} (bilinear / guided upsampling). The
    definition is timed on photos of at most `definition_max_pixels` (None: all); above, its
    column is None (the numpy path, checked equal to it, stands in for the checks)."""
    from .. import imageops_cv as cvops
    from ..contract import decode_output, encode_pixels, model_input
    from ..imageops import GuidedFilter
    from ..predict import render_strips

    threads = [int(t) for t in threads]
    contract = _contract(artifact)
    h, w = contract["height"], contract["width"]
    raw = _lowres_alpha(h, w)
    result: dict = {"model": str(artifact) if artifact else None, "model_input": [h, w], "runs": runs,
                    "threads": threads, "sizes": {}, "bounds": {}}
    if artifact:
        result["model_ms"], result["engine"] = _model_ms(artifact, threads, runs)
    colour = (0, 255, 0)
    ops = cvops.get_ops("opencv")
    gf = contract.get("guided_filter") or GuidedFilter()  # the artifact's own, else predict's default

    for name, hw in (sizes or SIZES).items():
        rgb = _photo(hw)
        low = decode_output(raw, contract)[0]
        with_def = definition_max_pixels is None or hw[0] * hw[1] <= definition_max_pixels
        a_fast = imageops_fast.alpha_to_photo(low, hw)
        g_fast = imageops_fast.guided_upsample(low, rgb, gf.radius, gf.eps)
        a_unc = np.full(hw, 0.5, np.float32) + np.float32(0.1) * np.sin(np.arange(hw[1], dtype=np.float32))[None]
        # the numpy path gives the definition's bytes; the OpenCV path is within its bounds
        x_fast = encode_pixels(imageops_fast.resize_bilinear(rgb, h, w)[None], contract)
        comp_fast = imageops_fast.composite(rgb, a_fast, colour)
        if with_def:
            assert np.array_equal(model_input(rgb, contract), x_fast)
            assert np.array_equal(imageops.alpha_to_photo(low, hw), a_fast)
            assert np.array_equal(imageops.guided_upsample(low, rgb, gf.radius, gf.eps), g_fast)
            assert np.array_equal(imageops.composite(rgb, a_fast, colour), comp_fast)
        cvops.set_threads(threads[0])
        a_cv = cvops.alpha_to_photo(low, hw)
        px_ref = imageops_fast.resize_bilinear(rgb, h, w)
        bounds = {
            "model_pixels": float(np.abs(cvops.model_pixels(rgb, h, w) - px_ref).max()),
            "alpha": float(np.abs(a_cv - a_fast).max()),
            "guided": float(np.abs(cvops.upsample_alpha(low, rgb, gf) - g_fast).max()),
            "composite": int(np.abs(cvops.composite(rgb, a_cv, colour).astype(np.int16) - comp_fast).max()),
            "composite_same_alpha_equal": bool(np.array_equal(cvops.composite(rgb, a_fast, colour), comp_fast)),
        }
        blur_def = with_def and hw[0] * hw[1] <= BLUR_DEFINITION_PIXELS
        if blur_def:  # numpy's blur is the definition's: seconds at 12 MP
            bounds["composite_blur"] = int(np.abs(cvops.composite(rgb, a_cv, "blur").astype(np.int16)
                                                  - imageops_fast.composite(rgb, a_fast, "blur")).max())
        bounds["within"] = bool(bounds["model_pixels"] < cvops.PIXEL_BOUND and bounds["alpha"] <= cvops.ALPHA_BOUND
                                and bounds["guided"] <= cvops.GUIDED_BOUND
                                and bounds["composite"] <= cvops.COMPOSITE_BOUND
                                and bounds.get("composite_blur", 0) <= cvops.COMPOSITE_BOUND
                                and bounds["composite_same_alpha_equal"])
        result["bounds"][name] = bounds
        n = max(3, runs if hw[0] * hw[1] < 2e6 else runs // 4)

        def variants(definition, fast, opencv):
            v = {"definition": definition} if with_def and definition else {}
            if fast:
                v["fast"] = fast
            v["opencv"] = opencv
            return v

        stages = {
            "photo -> model input": variants(
                lambda: model_input(rgb, contract),
                lambda: encode_pixels(imageops_fast.resize_bilinear(rgb, h, w)[None], contract),
                lambda: encode_pixels(cvops.model_pixels(rgb, h, w)[None], contract)),
            "output -> alpha at photo size": variants(
                lambda: imageops.alpha_to_photo(decode_output(raw, contract)[0], hw),
                lambda: imageops_fast.alpha_to_photo(decode_output(raw, contract)[0], hw),
                lambda: cvops.alpha_to_photo(decode_output(raw, contract)[0], hw)),
            GUIDED_STAGE: variants(
                lambda: imageops.guided_upsample(decode_output(raw, contract)[0], rgb, gf.radius, gf.eps),
                lambda: imageops_fast.guided_upsample(decode_output(raw, contract)[0], rgb, gf.radius, gf.eps),
                lambda: cvops.upsample_alpha(decode_output(raw, contract)[0], rgb, gf)),
            "composite over a colour": variants(
                lambda: imageops.composite(rgb, a_fast, colour),
                lambda: imageops_fast.composite(rgb, a_fast, colour),
                lambda: cvops.composite(rgb, a_fast, colour)),
            "composite, uncertain alpha (worst case)": variants(
                lambda: imageops.composite(rgb, a_unc, colour),
                lambda: imageops_fast.composite(rgb, a_unc, colour),
                lambda: cvops.composite(rgb, a_unc, colour)),
            "composite over the blurred photo": variants(  # numpy's blur is the definition's: 13 s at 12 MP
                (lambda: imageops.composite(rgb, a_fast, "blur")) if blur_def else None,
                (lambda: imageops_fast.composite(rgb, a_fast, "blur")) if blur_def else None,
                lambda: cvops.composite(rgb, a_fast, "blur")),
            "RGBA cut-out": variants(
                lambda: imageops.rgba_cutout(rgb, a_fast),
                lambda: imageops_fast.rgba_cutout(rgb, a_fast, as_image=True),
                lambda: cvops.rgba_cutout(rgb, a_fast, as_image=True)),
            STRIPS_ROW: variants(
                None,
                lambda: render_strips("composite", rgb, imageops_fast.AlphaRows(low, rgb), colour,
                                      ops=cvops.EXACT),
                lambda: render_strips("composite", rgb, ops.alpha_rows(low, rgb), colour, ops=ops)),
            STRIPS_GUIDED_ROW: variants(
                None,
                lambda: render_strips("composite", rgb, imageops_fast.AlphaRows(low, rgb, gf), colour,
                                      ops=cvops.EXACT),
                lambda: render_strips("composite", rgb, ops.alpha_rows(low, rgb, gf), colour, ops=ops)),
        }
        row = {}
        for stage, v in stages.items():
            # one round per thread count, all variants alternating within it: switching OpenCV's
            # pool size between calls would time its threads starting, not the stage
            got = {}
            for t in threads:
                cvops.set_threads(t)
                for k, ms in _best_of_many({k: (None, fn) for k, fn in v.items()}, n).items():
                    key = f"opencv t{t}" if k == "opencv" else k
                    got[key] = min(got.get(key, ms), ms)
            row[stage] = {"definition": got.get("definition"), "fast": got.get("fast"),
                          "opencv": {str(t): got[f"opencv t{t}"] for t in threads}}
        for total_row, parts, kind in TOTALS:
            total = {k: (None if any(row[s][k] is None for s in parts) else round(sum(row[s][k] for s in parts), 3))
                     for k in ("definition", "fast")}
            total["opencv"] = {str(t): round(sum(row[s]["opencv"][str(t)] for s in parts), 3) for t in threads}
            row[total_row] = total
            if result.get("model_ms"):
                key = "overhead_vs_model" if kind == "bilinear" else f"overhead_vs_model_{kind}"
                result.setdefault(key, {})[name] = {
                    str(t): round(total["opencv"][str(t)] / result["model_ms"][str(t)], 2) for t in threads}
        result["sizes"][name] = row
        result.setdefault("megapixels", {})[name] = round(hw[0] * hw[1] / 1e6, 3)
    return result


def _f(v) -> str:
    return "" if v is None else f"{v:.2f}"


def to_markdown(result: dict) -> str:
    threads = [str(t) for t in result.get("threads", [1])]
    lines = []
    if result.get("model_ms"):
        lines.append(f"model alone ({Path(result['model']).name}, {result.get('engine', '')}): "
                     + ", ".join(f"{result['model_ms'][t]:.3f} ms at {t} thread{'s' if t != '1' else ''}"
                                 for t in threads))
        lines.append("")
    cols = ["photo", "stage", "definition ms", "numpy ms"] + [f"opencv t{t} ms" for t in threads]
    lines.append("| " + " | ".join(cols) + " |")
    lines.append("|---|---|" + "---:|" * (len(cols) - 2))
    for name, row in result["sizes"].items():
        for stage, v in row.items():
            lines.append(f"| {name} | {stage} | {_f(v['definition'])} | {_f(v['fast'])} | "
                         + " | ".join(_f(v["opencv"][t]) for t in threads) + " |")
    lines.append("")
    for name, row in result["sizes"].items():
        for total_row, _, kind in TOTALS:
            if total_row not in row:  # a result from before the guided rows
                continue
            total, mp = row[total_row], result.get("megapixels", {}).get(name)
            per_mp = ", ".join(f"t{t} {total['opencv'][t] / mp:.2f}" for t in threads) if mp else ""
            text = f"{name}: overhead per photo ({kind} upsampling), OpenCV path, ms per megapixel: {per_mp}"
            key = "overhead_vs_model" if kind == "bilinear" else f"overhead_vs_model_{kind}"
            if result.get(key, {}).get(name):
                text += "; overhead / model alone: " + ", ".join(
                    f"t{t} {result[key][name][t]:.2f}x" for t in threads)
            lines.append(text)
    for name, b in result.get("bounds", {}).items():
        guided = f", guided alpha {b['guided']:.2g}" if "guided" in b else ""
        guided += f", composite over the blur {b['composite_blur']} level(s)" if "composite_blur" in b else ""
        lines.append(f"{name}: OpenCV vs definition: model input {b['model_pixels']:.3f} levels, alpha "
                     f"{b['alpha']:.2g}{guided}, composite {b['composite']} level(s), same-alpha composite "
                     f"{'equal' if b['composite_same_alpha_equal'] else 'DIFFERENT'}: "
                     f"{'within the bounds' if b['within'] else 'OUT OF BOUNDS'}")
    return "\n".join(lines) + "\n"


def print_table(result: dict, console) -> None:
    """The per-stage table as a rich table (Markdown when it does not fit or is not a
    terminal), then the overhead / model and bound lines."""
    from rich.table import Table

    from ..console import show_table

    threads = [str(t) for t in result.get("threads", [1])]
    title = "photo pipeline per stage (ms, best of N): definition, numpy, OpenCV"
    if result.get("model_ms"):
        title += "; model alone " + ", ".join(f"{result['model_ms'][t]:.2f} ms t{t}" for t in threads)
    tab = Table(title=title)
    for c in ["photo", "stage", "definition", "numpy"] + [f"opencv t{t}" for t in threads]:
        tab.add_column(c, justify="left" if c in ("photo", "stage") else "right")
    for name, row in result["sizes"].items():
        for stage, v in row.items():
            tab.add_row(name, stage, _f(v["definition"]), _f(v["fast"]), *[_f(v["opencv"][t]) for t in threads])
    show_table(tab, console)
    for line in to_markdown(result).splitlines():
        if line and not line.startswith("|") and not line.startswith("model alone"):
            console.print(line, highlight=False)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    ap = argparse.ArgumentParser(prog="python -m edgematting.bench.pipeline", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--artifact", default=None, help="also time this artifact alone (e.g. an int8 .tflite)")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--threads", default="1,2", help="OpenCV (and model) thread counts, e.g. 1,2")
    ap.add_argument("--sizes", default=",".join(SIZES), help=f"comma list of {', '.join(SIZES)}")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    unknown = [s for s in args.sizes.split(",") if s and s not in SIZES]
    if unknown:
        ap.error(f"--sizes takes {', '.join(SIZES)}, not {', '.join(unknown)}")
    sizes = {s: SIZES[s] for s in args.sizes.split(",") if s}
    result = measure(args.artifact, args.runs, sizes, [int(t) for t in args.threads.split(",") if t])
    sys.stdout.write(to_markdown(result))
    if args.json:
        from ..atomic import write_json

        write_json(args.json, result)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
