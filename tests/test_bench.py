"""`edgematting bench` on tiny models: real runs, consistent outputs, failures isolated."""
import csv
import io
import json
import shutil

import pytest

from edgematting.bench import measure, report as bench_report_mod
from edgematting.bench import run as bench


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
    """A 64x64 model with MediaPipe's contract ([0,1] RGB in, probability out)."""
    from edgematting._tf import keras, tf

    k = keras()
    inp = k.Input((64, 64, 3), batch_size=1)
    out = k.layers.Conv2D(1, 3, padding="same", activation="sigmoid")(inp)
    path.write_bytes(tf().lite.TFLiteConverter.from_keras_model(k.Model(inp, out)).convert())
    return path


@pytest.fixture(scope="module")
def bench_report(tiny_fast_scnn_dir, tmp_path_factory):
    from edgematting.data.synthetic import write_synthetic_folder

    root = tmp_path_factory.mktemp("bench")
    model_dir = root / "model"
    shutil.copytree(tiny_fast_scnn_dir, model_dir)
    data = write_synthetic_folder(root / "data", n=3, size=(80, 96), seed=3)
    # A broken artifact with a plausible sidecar: must show as failed, not stop the table.
    export = model_dir / "export"
    export.mkdir(exist_ok=True)
    (export / "broken_fp32.tflite").write_bytes(b"not a flatbuffer")
    side = {"target": "tflite", "precision": "fp32", "input": {"height": 64, "width": 64, "channels": 3,
            "dtype": "float32"}, "output": {}}
    (export / "broken_fp32.tflite.json").write_text(json.dumps(side))
    peer = _tiny_peer(root / "peer.tflite")
    cfg = bench.BenchConfig(model=str(model_dir), targets=["tflite", "onnx"], precisions=["fp32", "int8"],
                            threads=[1, 2], runs=3, warmup=1, data=str(data), out=str(root / "out"),
                            int8_debug=True, keep_float=1, peer=str(peer))
    return bench.run_bench(cfg), root / "out"


def test_rows_come_from_real_runs(bench_report):
    report, out = bench_report
    ok = [r for r in report["rows"] if r["status"] in ("verified", "exported")]
    targets = {(r["target"], r["precision"]) for r in ok}
    assert {("tflite", "fp32"), ("tflite", "int8"), ("onnx", "fp32"), ("onnx", "int8")} <= targets
    for r in ok:
        for t in ("1", "2"):
            m = r["latency"][t]["model"]
            assert 0 < m["median_ms"] <= m["p90_ms"] + 1e-9
            assert r["latency"][t]["e2e"]["median_ms"] > 0
        assert r["size_kb"] > 0
        assert 0.0 <= r["accuracy"]["iou"] <= 1.0
        assert r["parity"]["max_abs"] >= 0
    # the keep-float variant exists and the int8 layer report was written
    assert any("keepfloat1" in r["artifact"] for r in ok)
    assert (out / "int8_layer_errors.csv").exists()
    assert report["peak_gflops"]["1"] > 0


def test_failed_artifact_is_reported_and_table_completes(bench_report):
    report, _ = bench_report
    broken = [r for r in report["rows"] if r["artifact"] == "broken_fp32.tflite"]
    assert broken and broken[0]["status"] == "failed" and broken[0]["reason"]
    assert len([r for r in report["rows"] if r["status"] == "verified"]) >= 4


def test_json_csv_markdown_agree(bench_report):
    report, out = bench_report
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
    md = (out / "bench.md").read_text().splitlines()
    table = [l for l in md if l.startswith("| ")][1:]
    assert len(table) == len(flat)
    for line, f in zip(table, flat):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[0] == f["artifact"]
        i = list(f).index("model_ms_t1")
        assert cells[i] == ("" if f["model_ms_t1"] is None else str(f["model_ms_t1"]))
    assert (out / "latency_vs_accuracy.png").stat().st_size > 1000


def test_peer_row_measured_in_the_same_run(bench_report):
    report, _ = bench_report
    peers = [r for r in report["rows"] if r["target"] == "peer"]
    assert len(peers) == 1
    assert peers[0]["latency"]["1"]["model"]["median_ms"] > 0 and 0 <= peers[0]["accuracy"]["iou"] <= 1
    lines = bench.peer_comparison(report)
    assert len(lines) == 2 and all("end-to-end" in l for l in lines)


def test_peer_rows_absent_not_faked(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEMATTING_CACHE_DIR", str(tmp_path / "empty"))
    from edgematting.bench.peer import resolve_peer

    assert resolve_peer("mediapipe") is None
    assert measure._peer_rows(bench.BenchConfig(model=".", peer="mediapipe"), [], None) == []
    assert bench.peer_comparison({"rows": [], "config": {"threads": [1]}}) == []


def test_bench_cli_errors(tmp_path):
    from edgematting.cli import main

    assert main(["bench", str(tmp_path / "missing")]) == 2
    assert main(["bench", str(tmp_path), "--threads", "x"]) == 2
    assert main(["bench", str(tmp_path), "--targets", "tflte"]) == 2
