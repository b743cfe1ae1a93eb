"""The README's main job, `edgematting quickstart`, on a tiny configuration."""
import json
from pathlib import Path

import pytest

from edgematting.cli import main


def _run(tmp_path, *extra):
    out = tmp_path / "qs"
    rc = main(["quickstart", "--out", str(out), "--input-size", "64", "--width", "0.25",
               "--minutes", "0.15", "--batch-size", "8", *extra])
    return rc, out


def test_quickstart_trains_evaluates_and_cuts_out(tmp_path):
    rc, out = _run(tmp_path, "--no-convert")
    assert rc == 0
    summary = json.loads((out / "quickstart.json").read_text())
    model_dir = out / "fast_scnn"
    assert (model_dir / "model.keras").exists() and (model_dir / "model.json").exists()
    assert summary["train"]["epochs"] >= 1
    # the summary's evaluation is the report evaluate wrote, over every held-out image, and
    # its numbers come from this model: the first image's SAD/MSE recomputed with numpy
    # (a range check such as 0 <= iou <= 1 could not fail)
    import numpy as np

    from edgematting import imageops
    from edgematting.data.io import read_alpha, read_image
    from edgematting.modelio import load_model_dir

    from edgematting.evaluation.evaluate import default_report_path

    report = json.loads(default_report_path(model_dir, out / "heldout").read_text())
    assert summary["evaluate"] == report["mean"]
    assert report["images"] == len(list((out / "heldout" / "image").iterdir())) == len(report["per_image"])
    first = report["per_image"][0]
    photo = read_image(first["image"])
    gt = read_alpha(out / "heldout" / "alpha" / Path(first["image"]).name).astype(np.float64)
    model, spec = load_model_dir(model_dir)
    y = model.predict_on_batch(imageops.to_model_input(photo, spec.input_size, spec.mean, spec.std))
    g = imageops.GuidedFilter()  # quickstart evaluates as predict does: guided upsampling
    alpha = imageops.guided_upsample(np.asarray(y)[0, ..., 0], photo, g.radius, g.eps)
    err = np.abs(alpha.astype(np.float64).reshape(gt.shape) - gt)
    assert first["sad"] == pytest.approx(err.sum() / 1000, rel=1e-4)
    assert first["mse"] == pytest.approx(np.mean(err**2), rel=1e-4)
    assert len(summary["cutouts"]) == 6
    from PIL import Image

    im = Image.open(summary["cutouts"][0])
    assert im.mode == "RGBA"
    assert (out / "cutouts.png").stat().st_size > 1000
    assert "artifacts" not in summary


@pytest.mark.slow
def test_quickstart_end_to_end_with_conversion_and_bench(tmp_path):
    rc, out = _run(tmp_path)
    assert rc == 0
    summary = json.loads((out / "quickstart.json").read_text())
    arts = summary["artifacts"]
    assert len(arts) == 4 and all("error" not in a for a in arts), arts
    assert all(a["verification"]["passed"] for a in arts)
    bench = json.loads((out / "fast_scnn" / "bench" / "bench.json").read_text())
    assert any(r["target"] == "tflite" and r["status"] == "verified" for r in bench["rows"])
