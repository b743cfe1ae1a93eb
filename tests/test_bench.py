"""`edgematting bench` on tiny models: real runs, consistent outputs, failures isolated."""
import csv
import io
import json
import shutil

import numpy as np
import pytest

from edgematting.bench import measure, report as bench_report_mod
from edgematting.bench import run as bench
from export_helpers import TEST_CALIB_SAMPLES


def test_pareto_front_keeps_only_undominated_points():
    pts = [(1.0, 0.80), (2.0, 0.90), (3.0, 0.85), (0.5, 0.70), (2.0, 0.95)]
    # (3.0, .85) is dominated by (2.0, .90); (2.0, .90) by (2.0, .95).
    assert sorted(bench_report_mod._pareto(pts)) == [0, 3, 4]


def test_slow_path_is_flagged_and_speedup_derived():
    lat = lambda ms: {"model": {"median_ms": ms, "p90_ms": ms, "mean_ms": ms, "runs": 3}}  # noqa: E731
    Row = measure.BenchRow
    rows = [
        Row(artifact="a", target="tflite", precision="fp32", input="float32 x3", latency={"1": lat(2.4)}),
        Row(artifact="b", target="tflite", precision="dynamic", input="float32 x3", latency={"1": lat(6.0)}),
        Row(artifact="c", target="tflite", precision="int8", input="float32 x3", latency={"1": lat(1.2)}),
    ]
    measure._derive(rows, [1], flops=int(1e9), peaks={1: 100.0})
    assert rows[1].speedup_vs_fp32["1"] == pytest.approx(2.4 / 6.0, abs=0.01)
    assert any("SLOW PATH" in f for f in rows[1].flags)
    assert not any("SLOW PATH" in f for f in rows[2].flags)
    assert rows[2].speedup_vs_fp32["1"] == pytest.approx(2.0)
    assert rows[0].gflops_per_s["1"] == pytest.approx(1e9 / 2.4e-3 / 1e9, rel=1e-2)
    assert rows[0].pct_of_peak["1"] == pytest.approx(100 * (1e9 / 2.4e-3 / 1e9) / 100.0, rel=1e-2)


def _tiny_peer(path):
    """A 64x64 model with MediaPipe's contract ([0,1] RGB in, probability out) that calls
    every pixel a person (sigmoid(20)): its IoU is known without running it, the share of
    ground-truth foreground in each image."""
    import numpy as np

    from edgematting._tf import keras, tf

    k = keras()
    inp = k.Input((64, 64, 3), batch_size=1)
    conv = k.layers.Conv2D(1, 3, padding="same", activation="sigmoid")
    out = conv(inp)
    conv.set_weights([np.zeros((3, 3, 3, 1), np.float32), np.full((1,), 20.0, np.float32)])
    path.write_bytes(tf().lite.TFLiteConverter.from_keras_model(k.Model(inp, out)).convert())
    return path


@pytest.fixture(scope="module")
def bench_report(confident_fast_scnn_dir, tmp_path_factory):
    from edgematting.data.synthetic import write_synthetic_folder

    root = tmp_path_factory.mktemp("bench")
    model_dir = root / "model"
    shutil.copytree(confident_fast_scnn_dir, model_dir)
    # Bench calibrates int8 on --data: as many images as the converter tests calibrate on
    # (with 3, int8 missed the tolerance row on the confident model: mean 0.022, IoU 0.97).
    data = write_synthetic_folder(root / "data", n=TEST_CALIB_SAMPLES, size=(80, 96), seed=3)
    # A broken artifact with a plausible sidecar: must show as failed, not stop the table.
    export = model_dir / "export"
    export.mkdir(exist_ok=True)
    (export / "broken_fp32.tflite").write_bytes(b"not a flatbuffer")
    side = {"target": "tflite", "precision": "fp32", "input": {"height": 64, "width": 64, "channels": 3,
            "dtype": "float32"}, "output": {}}
    (export / "broken_fp32.tflite.json").write_text(json.dumps(side))
    # A file replaced after conversion, beside the sidecar of the genuine file, whose
    # verification passed: the sidecar's figures belong to another file and must not show.
    from edgematting.converters import ExportConfig, convert_model

    genuine = convert_model(model_dir, ExportConfig(target="tflite", verify_samples=2), out_dir=root / "genuine",
                            progress=False)
    (export / "replaced_fp32.tflite").write_bytes(np.random.default_rng(0).integers(0, 256, 3000, np.uint8).tobytes())
    shutil.copy(genuine.sidecar, export / "replaced_fp32.tflite.json")
    peer = _tiny_peer(root / "peer.tflite")
    cfg = bench.BenchConfig(model=str(model_dir), targets=["tflite", "onnx"], precisions=["fp32", "int8"],
                            threads=[1, 2], runs=3, warmup=1, data=str(data), out=str(root / "out"),
                            int8_debug=True, keep_float=1, peer=str(peer),
                            pipeline_sizes={"600x800": (800, 600)})  # 12 MP: a minute here (test_photo_pipeline)
    return bench.run_bench(cfg), root / "out", model_dir, data


def _gt_foreground_share(data):
    """Mean share of pixels with alpha >= 0.5, read straight from the alpha PNGs."""
    from PIL import Image

    return float(np.mean([(np.asarray(Image.open(p), np.float64) / 255 >= 0.5).mean()
                          for p in sorted((data / "alpha").iterdir())]))


def test_rows_come_from_real_runs(bench_report):
    from edgematting.verify import TOLERANCES

    report, out, _, data = bench_report
    ok = [r for r in report["rows"] if r["status"] in ("verified", "exported")]
    targets = {(r["target"], r["precision"]) for r in ok}
    assert {("tflite", "fp32"), ("tflite", "int8"), ("onnx", "fp32"), ("onnx", "int8")} <= targets
    for r in ok:
        for t in ("1", "2"):
            m = r["latency"][t]["model"]
            assert 0 < m["median_ms"] <= m["p90_ms"] + 1e-9
            assert r["latency"][t]["e2e"]["median_ms"] > 0
        assert r["size_kb"] > 0
    keras = next(r for r in report["rows"] if r["target"] == "keras")
    trivial = _gt_foreground_share(data)  # the IoU of calling everything foreground
    print(f"\nkeras IoU {keras['accuracy']['iou']:.4f}, all-foreground IoU {trivial:.4f}")
    assert keras["accuracy"]["iou"] > trivial + 0.1  # the confident model segments the portraits
    for r in ok:
        print(r["artifact"], r["parity"], r["accuracy"])
        tol = TOLERANCES[(r["target"], r["precision"])]
        if r["precision"] == "fp32" and r["input"].startswith("float32"):
            # same float graph: parity within the table's bound, and the same accuracy as
            # Keras, computed by bench's app-side pipeline instead of the Keras path
            assert r["parity"]["max_abs"] <= tol.max_abs
            assert r["accuracy"]["iou"] == pytest.approx(keras["accuracy"]["iou"], abs=0.01)
        else:
            # quantized: a real, bounded difference (not a copy of the fp32 row's figures)
            assert r["parity"]["max_abs"] > 10 * TOLERANCES[(r["target"], "fp32")].max_abs
            assert r["parity"]["mean_abs"] <= tol.mean_abs
            assert r["accuracy"]["iou"] == pytest.approx(keras["accuracy"]["iou"], abs=0.05)


def test_parity_figures_are_the_verifiers(bench_report):
    """The parity columns are what verify_artifact computes for that artifact (on the images
    the conversion verified on, recorded in its sidecar), not figures of another row."""
    from edgematting.contract import read_sidecar
    from edgematting.verify import verify_artifact

    report, out, model_dir, data = bench_report
    row = next(r for r in report["rows"] if r["target"] == "onnx" and r["precision"] == "int8")
    path = model_dir / "export" / row["artifact"]
    ver = read_sidecar(path)["verification"]
    again = verify_artifact(path, model_dir, n=ver["n"], data=None if ver["data"] == "synthetic" else ver["data"])
    assert row["parity"]["max_abs"] == pytest.approx(again.max_abs, rel=1e-6)
    assert row["parity"]["mean_abs"] == pytest.approx(again.mean_abs, rel=1e-6)


def test_failed_artifact_is_reported_and_table_completes(bench_report):
    report, *_ = bench_report
    broken = [r for r in report["rows"] if r["artifact"] == "broken_fp32.tflite"]
    assert broken and broken[0]["status"] == "failed" and broken[0]["reason"]
    assert len([r for r in report["rows"] if r["status"] == "verified"]) >= 4


def test_a_replaced_file_never_shows_the_figures_of_the_file_it_replaced(bench_report):
    report, *_ = bench_report
    row = next(r for r in report["rows"] if r["artifact"] == "replaced_fp32.tflite")
    assert row["status"] == "failed" and ("flatbuffer" in row["reason"] or "cannot load" in row["reason"]), row
    assert not row["parity"] and not row["accuracy"], row


def test_json_csv_markdown_agree(bench_report):
    report, out, *_ = bench_report
    on_disk = json.loads((out / "bench.json").read_text())
    flat = bench.flat_rows(on_disk)
    rows = list(csv.DictReader(io.StringIO((out / "bench.csv").read_text())))
    assert [r["artifact"] for r in rows] == [f["artifact"] for f in flat]
    for r, f in zip(rows, flat):
        for k, v in f.items():
            if isinstance(v, float):
                assert float(r[k]) == pytest.approx(v)
            else:
                assert r[k] == ("" if v is None else str(v))
    md = (out / "bench.md").read_text().split("\n## ")[0].splitlines()  # the artifacts' table (then the pipeline's)
    table = [l for l in md if l.startswith("| ")][1:]
    assert len(table) == len(flat)
    for line, f in zip(table, flat):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[0] == f["artifact"]
        i = list(f).index("model_ms_t1")
        assert cells[i] == ("" if f["model_ms_t1"] is None else str(f["model_ms_t1"]))
    assert (out / "latency_vs_accuracy.png").stat().st_size > 1000
    # the photo pipeline's per-stage table, beside the int8 model's own time (bench.pipeline)
    pipe = on_disk["pipeline"]
    assert pipe["model"].endswith("_int8.tflite") and set(pipe["model_ms"]) == {"1", "2"}
    assert set(pipe["sizes"]) == {"600x800"} and all(b["within"] for b in pipe["bounds"].values())
    assert "## Photo pipeline per stage" in (out / "bench.md").read_text()


def test_peer_row_measured_in_the_same_run(bench_report):
    report, out, _, data = bench_report
    peers = [r for r in report["rows"] if r["target"] == "peer"]
    assert len(peers) == 1
    assert peers[0]["latency"]["1"]["model"]["median_ms"] > 0
    # the tiny peer calls everything foreground: its IoU is the foreground share of each image
    assert peers[0]["accuracy"]["iou"] == pytest.approx(_gt_foreground_share(data), abs=1e-6)
    lines = bench.peer_comparison(report)
    assert len(lines) == 4 and "end-to-end" in lines[0]  # header, rule, one row per thread count
    for t, line in zip((1, 2), lines[2:]):  # "ours / peer (ours / peer as a ratio)" from the rows
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[0] == str(t)
        ours = next(r for r in report["rows"] if r["artifact"] == cells[4])
        for cell, key in zip(cells[1:3], ("model", "e2e")):
            a, b = ours["latency"][str(t)][key]["median_ms"], peers[0]["latency"][str(t)][key]["median_ms"]
            assert cell == f"{a:.2f} / {b:.2f} ({a / b:.2f}x)", (cell, a, b)
    assert "\n".join(lines) in (out / "bench.md").read_text()


def test_peer_rows_absent_not_faked(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEMATTING_CACHE_DIR", str(tmp_path / "empty"))
    from edgematting.peer import resolve_peer

    assert resolve_peer("mediapipe") is None
    assert measure._peer_rows(bench.BenchConfig(model=".", peer="mediapipe"), [], None) == []
    assert bench.peer_comparison({"rows": [], "config": {"threads": [1]}}) == []


def test_bench_cli_errors(tmp_path):
    from edgematting.cli import main

    assert main(["bench", str(tmp_path / "missing")]) == 2
    assert main(["bench", str(tmp_path), "--threads", "x"]) == 2
    assert main(["bench", str(tmp_path), "--targets", "tflte"]) == 2


@pytest.mark.parametrize("pipeline", ["opencv", "exact"])
def test_end_to_end_runs_the_runners_own_photo_pipeline(tiny_fast_scnn_dir, pipeline, monkeypatch):
    """The bench's end-to-end figure is what predict does: the runner's pipeline for the alpha
    and for the composite (it once composited on the numpy path whatever the runner's, 9 of
    a 600x800 photo's 11 ms), and the composite is the one that pipeline makes."""
    from edgematting import imageops_cv, imageops_fast, runners

    model = runners.open(tiny_fast_scnn_dir, pipeline=pipeline)
    own = imageops_cv if pipeline == "opencv" else imageops_fast
    other = imageops_fast if pipeline == "opencv" else imageops_cv
    rgb = np.random.default_rng(0).integers(0, 256, (60, 44, 3), np.uint8)
    calls = []
    real = own.composite
    from dataclasses import replace

    spy = replace(model.ops, composite=lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setattr(type(model), "ops", property(lambda self: spy))
    monkeypatch.setattr(other, "composite", lambda *a, **k: pytest.fail("composited on the other pipeline"))
    out = np.asarray(measure._end_to_end(model, rgb))
    assert calls == [1] and out.shape == (60, 44, 3)
    want = real(rgb, model.predict_photo(rgb, model.contract["guided_filter"]), (0, 0, 0))
    np.testing.assert_array_equal(out, want)
