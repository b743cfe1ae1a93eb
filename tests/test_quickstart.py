"""The README's main job, `edgematting quickstart`, on a tiny configuration."""
import json

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
    ev = summary["evaluate"]
    assert 0.0 <= ev["iou"] <= 1.0 and ev["sad"] >= 0.0
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
