"""Peak memory and seconds per megapixel of `predict` on 12, 27 and 108 MP photos.

    python -m edgematting.bench.memory [MODEL] [--sizes 12,27,108] [--modes fg,trimap]
                                       [--output rgba] [--upsample guided] [--json FILE]
    edgematting bench MODEL --memory            (the same, with that model)

Makes the photos itself (a synthetic portrait, `SyntheticPortraits(seed=0)`, enlarged to
3000x4000, 4500x6000 and 9000x12000 with a little noise so that the JPEG and the PNG
written are photo-like; cached under ``EDGEMATTING_CACHE_DIR`` or ``~/.cache/edgematting``)
and runs each (size, mode) in a fresh Python process, as `edgematting predict` does:
model loaded, one small warm-up photo, then the timed photo. Per run it prints the peak
resident memory of that process (``VmHWM``, everything included: Python, TensorFlow, the
model) and the seconds per megapixel of the timed `predict_images` call (read, model,
upsampling, refinement / foreground estimation, PNG written).

Modes: ``plain`` (no refinement, no foreground estimation: ``refine=None``), ``fg`` (the
CLI's default: foreground estimation on), ``trimap`` (``--refine trimap``, closed-form,
with foreground estimation); ``evaluate`` and ``evaluate-trimap``: `evaluate_model` on a
folder holding the photo and its matte (the portrait's, enlarged: a PNG), every metric.
Upsampling is the CLI's default (the guided filter).

Without MODEL, a tiny Fast-SCNN (256x256 input, random weights) is built and run for its
cost (TensorFlow and the model are in memory and run as usual), but its ~0.5-everywhere
alpha is replaced by the synthetic portrait's own matte at model size: a trained model's
confident alpha with soft edges (an untrained one makes every pixel partial, which is not
what a photo meets; ``--alpha model`` keeps it: the worst case). With MODEL, its own alpha
is used.

A run whose resident memory passes ``--cap-gb`` (default: 16, or 80% of the memory
available when less) is killed and reported as such, so the benchmark never pushes the
machine into its out-of-memory killer. Measure on an idle machine: the load average is
printed with the figures.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

#: megapixels -> (height, width): portrait phone photos, 4:3
SIZES = {12: (4000, 3000), 27: (6000, 4500), 108: (12000, 9000)}
MODES = ("plain", "fg", "trimap", "evaluate", "evaluate-trimap")
MODEL_SIZE = (256, 256)
_BASE = (1200, 900)  # the synthetic portrait's own size, enlarged to each photo size


def cache_dir() -> Path:
    root = os.environ.get("EDGEMATTING_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "edgematting")
    return Path(root) / "bench-memory"


def _base():
    from ..data.synthetic import SyntheticPortraits

    s = SyntheticPortraits(size=_BASE, seed=0).sample(0)
    return np.asarray(s["image"])[..., :3].astype(np.uint8), np.asarray(s["alpha"], np.float32)


def make_photo(mp: int, folder: Path) -> Path:
    """The `mp` megapixel JPEG (made once, then reused)."""
    from PIL import Image

    h, w = SIZES[mp]
    path = folder / f"portrait_{mp}mp_{w}x{h}.jpg"
    if path.is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    base, _ = _base()
    big = np.asarray(Image.fromarray(base).resize((w, h), Image.BILINEAR)).copy()
    rng = np.random.default_rng(0)
    for y in range(0, h, 512):  # photo-like grain, a strip at a time
        strip = big[y:y + 512].astype(np.int16)
        strip += rng.integers(-6, 7, strip.shape, dtype=np.int16)
        big[y:y + 512] = np.clip(strip, 0, 255).astype(np.uint8)
    tmp = path.with_name(path.name + ".part")
    Image.fromarray(big).save(tmp, format="JPEG", quality=92)
    os.replace(tmp, path)
    return path


def _vm(field: str, pid: str = "self") -> int:
    """A /proc/PID/status field in bytes (0 when gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


# -- the measured process ----------------------------------------------------------------
def _child(job: dict) -> dict:
    import warnings

    from .. import imageops
    from ..predict import load_predictor, predict_images
    from ..refine import RefineConfig

    warnings.simplefilter("ignore")  # PIL's decompression-bomb warning at 108 MP
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None
    if job["model"]:
        model, spec = load_predictor(job["model"])
    else:
        model, spec = _tiny_oracle(Path(job["tmp"]), job["alpha"] == "matte")
    mode = job["mode"]
    guided = imageops.GuidedFilter() if job["upsample"] == "guided" else None
    tmp = Path(job["tmp"])
    if mode.startswith("evaluate"):
        from ..evaluation.evaluate import evaluate_model

        refine = RefineConfig(refine="trimap") if mode == "evaluate-trimap" else None
        kw = dict(spec=spec, progress=False, out=False, guided=guided, refine=refine)
        warm = tmp / "warm"
        for sub, img in (("image", Image.fromarray(_base()[0])), ("alpha", _matte_image(_base()[1]))):
            (warm / sub).mkdir(parents=True)
            img.resize((300, 400)).save(warm / sub / "w.png")
        evaluate_model(model, warm, **kw)
        base_rss = _vm("VmRSS")
        t0 = time.perf_counter()
        evaluate_model(model, job["data"], **kw)
        return {"peak_rss": _vm("VmHWM"), "baseline_rss": base_rss, "seconds": time.perf_counter() - t0}
    refine = None if mode == "plain" else RefineConfig(refine="trimap" if mode == "trimap" else "none")
    kw = dict(output=job["output"], progress=False, spec=spec, guided=guided, refine=refine)
    warm = tmp / "warm.jpg"
    Image.fromarray(_base()[0]).resize((300, 400)).save(warm)
    predict_images(model, [warm], tmp / "warm_out", **kw)
    base_rss = _vm("VmRSS")
    t0 = time.perf_counter()
    (out,) = predict_images(model, [job["photo"]], tmp / "out", **kw)
    seconds = time.perf_counter() - t0
    return {"peak_rss": _vm("VmHWM"), "baseline_rss": base_rss, "seconds": seconds,
            "out_bytes": os.path.getsize(out)}


def _matte_image(alpha: np.ndarray):
    from PIL import Image

    return Image.fromarray(np.clip(np.floor(alpha * 255.0 + 0.5), 0, 255).astype(np.uint8), "L")


def make_data(mp: int, folder: Path) -> Path:
    """A folder (image/ + alpha/) with the `mp` megapixel photo and its matte enlarged."""
    from PIL import Image

    photo = make_photo(mp, folder)
    data = folder / f"data_{mp}mp"
    if (data / "alpha" / f"{photo.stem}.png").is_file():
        return data
    (data / "image").mkdir(parents=True, exist_ok=True)
    (data / "alpha").mkdir(parents=True, exist_ok=True)
    if not (data / "image" / photo.name).exists():
        try:
            os.link(photo, data / "image" / photo.name)
        except OSError:
            import shutil

            shutil.copyfile(photo, data / "image" / photo.name)
    h, w = SIZES[mp]
    tmp = data / "alpha" / f".{photo.stem}.png.part"
    _matte_image(_base()[1]).resize((w, h), Image.BILINEAR).save(tmp, format="PNG")
    os.replace(tmp, data / "alpha" / f"{photo.stem}.png")
    return data


def _tiny_oracle(tmp: Path, matte: bool = True):
    """A tiny random Fast-SCNN, run for its cost, whose alpha is replaced by the synthetic
    portrait's matte at model size (see the module docstring)."""
    from .. import imageops
    from .._tf import keras
    from ..modelio import ModelSpec, save_model_dir
    from ..models import architecture_config, build_model
    from ..predict import load_predictor

    keras().utils.set_random_seed(0)
    config = architecture_config("fast-scnn", input_size=MODEL_SIZE, width=0.25)
    d = save_model_dir(build_model("fast-scnn", **config),
                       ModelSpec(architecture="fast-scnn", config=config, input_size=MODEL_SIZE), tmp / "tiny")
    pm, spec = load_predictor(d)
    if not matte:
        return pm, spec
    matte = imageops.resize_bilinear(_base()[1], *MODEL_SIZE)[None, :, :, None]

    def oracle(x):
        pm.run_raw(np.asarray(x, np.float32))  # the model's cost
        return np.repeat(matte, len(x), axis=0)

    return oracle, spec


# -- the driver --------------------------------------------------------------------------
def measure(photo: Path, mode: str, model=None, output="rgba", upsample="guided", cap_bytes=None,
            alpha="matte", data=None) -> dict:
    """One run in a fresh process: {"peak_rss", "baseline_rss", "seconds", ...} or
    {"killed": cap} when its memory passed `cap_bytes`. `data`: the folder the evaluate
    modes run on (`make_data`)."""
    with tempfile.TemporaryDirectory(prefix="em-bench-memory-") as tmp:
        job = {"photo": str(photo), "data": str(data) if data else None, "mode": mode,
               "model": str(model) if model else None, "output": output, "upsample": upsample, "tmp": tmp,
               "alpha": alpha}
        res_path = Path(tmp) / "result.json"
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        env.setdefault("TF_USE_LEGACY_KERAS", "1")
        log = open(Path(tmp) / "log.txt", "w+")  # a file, not a pipe: a chatty child never blocks
        p = subprocess.Popen([sys.executable, "-m", "edgematting.bench.memory", "--child", json.dumps(job),
                              "--result", str(res_path)], env=env, stdout=log, stderr=subprocess.STDOUT)
        killed, watched = False, 0
        while p.poll() is None:
            rss = _vm("VmRSS", str(p.pid))
            watched = max(watched, rss)
            if cap_bytes and rss > cap_bytes:
                p.kill()
                killed = True
                break
            time.sleep(0.05)
        p.wait()
        log.seek(0)
        out = log.read()
        log.close()
        if killed:
            return {"killed": True, "peak_rss": watched}
        if p.returncode != 0 or not res_path.is_file():
            return {"error": f"exit {p.returncode}: {out.strip().splitlines()[-1] if out.strip() else ''}",
                    "peak_rss": watched}
        return json.loads(res_path.read_text())


def default_cap() -> int:
    avail = 0
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
    except OSError:
        pass
    cap = 16 * 2**30
    return min(cap, int(0.8 * avail)) if avail else cap


def run(model=None, sizes=(12, 27, 108), modes=("fg", "trimap"), output="rgba", upsample="guided",
        cap_gb=None, json_path=None, photos_dir=None, alpha="matte", print_fn=print) -> list[dict]:
    cap = int(cap_gb * 2**30) if cap_gb else default_cap()
    folder = Path(photos_dir) if photos_dir else cache_dir()
    load = os.getloadavg()
    who = model or ("tiny Fast-SCNN 256x256 + the portrait's matte" if alpha == "matte" else
                    "tiny Fast-SCNN 256x256, its own alpha (~0.5: every pixel partial)")
    print_fn(f"predict --output {output} --upsample {upsample}; model: {who}; {os.cpu_count()} CPUs; "
             f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; cap {cap / 2**30:.1f} GiB")
    print_fn(f"{'photo':>16} {'mode':>7} {'peak RSS':>10} {'baseline':>9} {'s/MP':>7} {'seconds':>8}")
    rows = []
    for mp in sizes:
        photo = make_photo(mp, folder)
        h, w = SIZES[mp]
        for mode in modes:
            data = make_data(mp, folder) if mode.startswith("evaluate") else None
            r = measure(photo, mode, model, output, upsample, cap, alpha, data)
            r.update(mp=mp, width=w, height=h, mode=mode, megapixels=h * w / 1e6)
            rows.append(r)
            name = f"{mp} MP {w}x{h}"
            if r.get("killed"):
                print_fn(f"{name:>16} {mode:>7} {'> ' + format(cap / 2**30, '.1f') + ' GiB':>10}  killed at the cap")
            elif r.get("error"):
                print_fn(f"{name:>16} {mode:>7} failed: {r['error']}")
            else:
                r["s_per_mp"] = r["seconds"] / r["megapixels"]
                print_fn(f"{name:>16} {mode:>7} {r['peak_rss'] / 2**30:>7.2f} GiB "
                         f"{r['baseline_rss'] / 2**30:>5.2f} GiB {r['s_per_mp']:>7.3f} {r['seconds']:>8.1f}")
    if json_path:
        Path(json_path).write_text(json.dumps({"load_average": load, "cpus": os.cpu_count(), "rows": rows}, indent=2))
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m edgematting.bench.memory", description=__doc__.split("\n\n")[0])
    ap.add_argument("model", nargs="?", default=None, help="model dir or artifact (default: tiny model + the matte)")
    ap.add_argument("--sizes", default="12,27,108", help="comma list of megapixels among 12,27,108")
    ap.add_argument("--modes", default="fg,trimap", help=f"comma list among {','.join(MODES)}")
    ap.add_argument("--output", default="rgba", choices=["rgba", "alpha", "composite"])
    ap.add_argument("--upsample", default="guided", choices=["guided", "bilinear"])
    ap.add_argument("--alpha", default="matte", choices=["matte", "model"],
                    help="without MODEL: the portrait's matte (default) or the tiny untrained model's own "
                    "alpha (~0.5 everywhere: the worst case, every pixel partial)")
    ap.add_argument("--cap-gb", type=float, default=None, help="kill a run above this resident memory")
    ap.add_argument("--photos", default=None, help="folder for the generated photos (default: the cache)")
    ap.add_argument("--json", default=None, help="also write the rows as JSON")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--result", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        Path(a.result).write_text(json.dumps(_child(json.loads(a.child))))
        return 0
    sizes = [int(s) for s in a.sizes.split(",") if s.strip()]
    modes = [m.strip() for m in a.modes.split(",") if m.strip()]
    bad = [s for s in sizes if s not in SIZES] + [m for m in modes if m not in MODES]
    if bad:
        ap.error(f"unknown size or mode: {bad}")
    run(a.model, sizes, modes, a.output, a.upsample, a.cap_gb, a.json, a.photos, a.alpha)
    return 0


if __name__ == "__main__":
    sys.exit(main())
