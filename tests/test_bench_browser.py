"""`edgematting bench`'s "browser" column (issue 25): the web demo page's steady-state figures in
headless Chromium beside the Python rows.

* Formatting (rich table, Markdown, CSV, JSON) from a constructed report: figures, the
  browser / Python ratio, "n/a" with the reason for what a browser cannot run, "recorded DATE".
* browser.json: recorded figures count only for the very file they were measured on (sha256,
  or size + mtime), never by name; stale entries are left out with one note; a bench run keeps
  the file's other rows (latency.py's MediaPipe figures).
* Errors: no node / npm packages / Chromium -> one line naming the fix, exit code 7, before
  anything is measured; a browser run that dies leaves the Python rows written.
* One real run in headless Chromium on the tiny model (`bench --browser`), skipped as the
  Chromium test of tests/test_web_demo.py is where Node, the npm packages or Chromium are missing.
"""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
from pathlib import Path

import pytest

from edgematting.bench import browser as B
from edgematting.bench import report as R
from edgematting.bench import run as bench_run
from edgematting.errors import DependencyError

REPO = Path(__file__).resolve().parents[1]
WEB = REPO / "web_demo"
CHROMIUM = os.environ.get("EDGEMATTING_CHROMIUM", "/usr/bin/chromium")


def _lat(ms):
    return {"model": {"median_ms": ms, "p90_ms": ms * 1.1, "runs": 5}, "e2e": {"median_ms": ms * 3, "p90_ms": ms * 4}}


def _report(threads=(1, 2)) -> dict:
    """A bench report as `measure` makes it: the Keras reference, two artifacts the page runs,
    one it refuses, a Core ML package, a failed file and a peer."""
    def row(name, target, precision, status="verified", latency=None, reason=""):
        return {"artifact": name, "target": target, "precision": precision, "input": "float32 x3", "status": status,
                "reason": reason, "size_kb": 10.0, "load_ms": 1.0, "peak_mem_mb": 1.0,
                "latency": latency or {}, "flags": [], "parity": {}, "accuracy": {}, "speedup_vs_fp32": {},
                "gflops_per_s": {}, "pct_of_peak": {}}

    rows = [row("model.keras", "keras", "fp32", "reference", {"keras": {"model": {"median_ms": 9.0, "p90_ms": 9.5}}}),
            row("m_fp32.tflite", "tflite", "fp32", latency={str(t): _lat(2.0 * t) for t in threads}),
            row("m_fp32.onnx", "onnx", "fp32", latency={str(t): _lat(4.0) for t in threads}),
            row("m_int8_ioint8.tflite", "tflite", "int8", latency={str(t): _lat(1.0) for t in threads}),
            row("m_fp32.mlpackage", "coreml", "fp32"),
            row("broken_fp32.tflite", "tflite", "fp32", "failed", reason="verify: ValueError: not a flatbuffer"),
            row("peer.tflite", "peer", "fp32 (peer)", "peer", {str(t): _lat(3.0) for t in threads}, reason="mediapipe")]
    return {"model": "m", "machine": {"platform": "test", "cpus": 2}, "peak_gflops": {"1": 10.0}, "flops": None,
            "config": {"threads": list(threads), "runs": 5, "warmup": 1}, "rows": rows, "pipeline": None,
            "peer_comparison": []}


def _fig(ms, threads):
    return {"median_ms": ms, "p90_ms": ms + 1, "first_ms": ms * 10, "runs": 20, "warmups": 3, "threads": threads,
            "backend": f"wasm {threads}", "runtime": "litert", "cross_origin_isolated": True}


REFUSED = "LiteRT.js 2.5.3 cannot run m_int8_ioint8.tflite: int8 input. LiteRT.js has no int8 input or output tensors"


def _with_browser(source="measured", date="2026-12-04T08:00:00Z"):
    rep = _report()
    figures = {("m_fp32.tflite", 1): _fig(5.0, 1), ("m_fp32.tflite", 2): _fig(3.0, 2),
               ("m_fp32.onnx", 1): _fig(8.0, 1), ("m_fp32.onnx", 2): _fig(6.0, 2)}
    return B.attach(rep, figures, {"m_int8_ioint8.tflite": REFUSED}, source, date=date, file="/x/bench/browser.json")


# ---------------------------------------------------------------------------- formatting
def test_flat_rows_carry_browser_figures_ratio_and_reasons():
    rows = {f["artifact"]: f for f in R.flat_rows(_with_browser())}
    t = rows["m_fp32.tflite"]
    assert (t["browser_ms_t1"], t["browser_p90_t1"], t["browser_ms_t2"]) == (5.0, 6.0, 3.0)
    # browser / Python of the same artifact and thread count: 5 / 2 and 3 / 4
    assert (t["browser_x_py_t1"], t["browser_x_py_t2"]) == (2.5, 0.75)
    assert rows["m_fp32.onnx"]["browser_x_py_t1"] == 2.0 and t["browser_source"] == "measured"
    assert t["browser_note"] == ""
    # what the browser cannot run says why, and carries no figure
    assert rows["m_int8_ioint8.tflite"]["browser_note"] == REFUSED and rows["m_int8_ioint8.tflite"]["browser_ms_t1"] is None
    assert "no browser runtime for coreml" in rows["m_fp32.mlpackage"]["browser_note"]
    assert "failed in Python" in rows["broken_fp32.tflite"]["browser_note"]
    # not artifacts of this model: no browser entry at all
    assert rows["model.keras"]["browser_note"] == "" and rows["model.keras"]["browser_source"] == ""
    assert rows["peer.tflite"]["browser_ms_t1"] is None and rows["peer.tflite"]["browser_note"] == ""


def test_markdown_csv_json_and_table_agree_on_the_browser_column():
    rep = _with_browser()
    md = R.to_markdown(rep)
    header = next(line for line in md.splitlines() if line.startswith("| artifact"))
    cols = [c.strip() for c in header.strip("|").split("|")]
    for c in ("browser_ms_t1", "browser_ms_t2", "browser_x_py_t1", "browser_source", "browser_note"):
        assert c in cols
    cells = {line.split("|")[1].strip(): [c.strip() for c in line.strip().strip("|").split("|")]
             for line in md.splitlines() if line.startswith("| m_") or line.startswith("| broken")}
    assert cells["m_fp32.tflite"][cols.index("browser_ms_t1")] == "5.0"
    assert cells["m_int8_ioint8.tflite"][cols.index("browser_ms_t1")] == "n/a"  # not a blank
    assert "headless Chromium" in md and "measured in this run" in md

    got = list(csv.DictReader(io.StringIO(R.to_csv(rep))))
    assert list(got[0]) == cols
    assert {r["artifact"]: r["browser_x_py_t2"] for r in got}["m_fp32.tflite"] == "0.75"

    back = json.loads(json.dumps(rep))  # bench.json
    t = next(r for r in back["rows"] if r["artifact"] == "m_fp32.tflite")
    assert t["browser"]["latency"]["2"]["median_ms"] == 3.0 and back["browser"]["source"] == "measured"

    from rich.console import Console

    con = Console(record=True, width=250, force_terminal=True)
    R.print_table(rep, con)
    text = con.export_text()
    assert "browser t1" in text and "x py t2" in text and "x2.50" in text and "x0.75" in text
    assert f"* int8_ioint8.tflite: browser: {REFUSED}" in text  # the model name prefix is dropped
    assert "* fp32.mlpackage: browser: no browser runtime for coreml" in text


def test_recorded_figures_are_marked_with_their_date():
    rep = _with_browser(source="recorded", date="2026-11-30T10:00:00Z")
    rows = {f["artifact"]: f for f in R.flat_rows(rep)}
    assert rows["m_fp32.tflite"]["browser_source"] == "recorded 2026-11-30"
    assert "recorded 2026-11-30 in /x/bench/browser.json" in R.to_markdown(rep)
    from rich.console import Console

    con = Console(record=True, width=250, force_terminal=True)
    R.print_table(rep, con)
    assert "browser t1 (rec.)" in con.export_text()


def test_no_browser_column_without_figures():
    rep = _report()
    f = R.flat_rows(rep)[1]
    assert not any(k.startswith("browser") for k in f)
    assert "headless Chromium" not in R.to_markdown(rep)


def test_page_running_other_thread_counts_is_said():
    rep = B.attach(_report(threads=(2,)), {("m_fp32.tflite", 2): _fig(5.0, 1)}, {}, "measured")
    row = next(r for r in rep["rows"] if r["artifact"] == "m_fp32.tflite")
    assert "other thread counts than asked (2->1)" in row["browser"]["reason"]


# ----------------------------------------------------------------- browser.json matching
def _export(tmp_path) -> dict[str, Path]:
    ex = tmp_path / "model" / "export"
    ex.mkdir(parents=True)
    arts = {}
    for name, data in (("m_fp32.tflite", b"tflite bytes"), ("m_fp32.onnx", b"onnx bytes!"),
                       ("m_int8_ioint8.tflite", b"int8 bytes")):
        (ex / name).write_bytes(data)
        arts[name] = ex / name
    return arts


def _rows(names, threads=(1, 2), ms=5.0):
    return [{"artifact": n, "threads": t, "runtime": "litert", "browser": _fig(ms + t, t)} for n in names for t in threads]


def test_recorded_entries_count_only_for_the_same_file(tmp_path):
    arts = _export(tmp_path)
    path = tmp_path / "model" / "bench" / B.BROWSER_BENCH_FILE
    B.write_browser_bench(_rows(arts), path, source="test", artifacts=list(arts.values()))
    doc = B.load_browser_bench(path)
    assert all(r["sha256"] and r["bytes"] and r["mtime_ns"] for r in doc["rows"])
    figures, _, notes = B.recorded_figures(doc, arts, [1, 2])
    assert set(figures) == {(n, t) for n in arts for t in (1, 2)} and notes == []
    assert figures[("m_fp32.onnx", 2)]["median_ms"] == 7.0

    # same name, other content of the same size (and the old mtime put back): the sha256 tells
    st = arts["m_fp32.tflite"].stat()
    arts["m_fp32.tflite"].write_bytes(b"TFLITE bytes")
    os.utime(arts["m_fp32.tflite"], ns=(st.st_atime_ns, st.st_mtime_ns))
    # another file size: stale without hashing
    arts["m_fp32.onnx"].write_bytes(b"a longer onnx file")
    figures, _, notes = B.recorded_figures(doc, arts, [1, 2])
    assert set(figures) == {("m_int8_ioint8.tflite", 1), ("m_int8_ioint8.tflite", 2)}
    assert len(notes) == 1 and "m_fp32.tflite, m_fp32.onnx" in notes[0] and doc["date"] in notes[0]
    # only the bench's thread counts
    assert set(B.recorded_figures(doc, {"m_int8_ioint8.tflite": arts["m_int8_ioint8.tflite"]}, [2])[0]) == \
        {("m_int8_ioint8.tflite", 2)}


def test_name_alone_never_matches_and_size_mtime_does(tmp_path):
    arts = _export(tmp_path)
    st = arts["m_fp32.onnx"].stat()
    doc = {"format": B.BROWSER_BENCH_FORMAT, "date": "2026-12-01T00:00:00Z", "rows": [
        # as the Chromium test and old latency.py runs wrote them: no fingerprint
        {"artifact": "m_fp32.tflite", "threads": 1, "runtime": "litert", "browser": _fig(5.0, 1)},
        {"artifact": "m_fp32.onnx", "threads": 1, "runtime": "ort", "browser": _fig(6.0, 1),
         "bytes": st.st_size, "mtime_ns": st.st_mtime_ns},
        {"artifact": "m_fp32.onnx", "threads": 2, "runtime": "ort", "browser": _fig(6.0, 2),
         "bytes": st.st_size, "mtime_ns": st.st_mtime_ns + 1},
        # MediaPipe figures are not the column's (the page's default runtime is)
        {"artifact": "m_int8_ioint8.tflite", "threads": 1, "runtime": "mediapipe", "browser": _fig(4.0, 1)},
    ]}
    figures, _, notes = B.recorded_figures(doc, arts, [1, 2])
    assert set(figures) == {("m_fp32.onnx", 1)}
    assert len(notes) == 1 and "m_fp32.tflite" in notes[0] and "m_fp32.onnx" in notes[0]


def test_bench_shows_recorded_figures_or_a_stale_note(tmp_path):
    """run_bench's use of browser.json (without --browser), on a constructed report."""
    from rich.console import Console

    arts = _export(tmp_path)
    model_dir = tmp_path / "model"
    B.write_browser_bench(_rows(["m_fp32.tflite"]), model_dir / "bench" / B.BROWSER_BENCH_FILE, source="test",
                          artifacts=[arts["m_fp32.tflite"]])
    con = Console(record=True, width=200)
    rep = _report()
    cfg = type("Cfg", (), {"threads": [1, 2]})()
    bench_run._recorded_browser(rep, model_dir / "export", [tmp_path / "elsewhere", model_dir / "bench"], cfg, con)
    row = next(r for r in rep["rows"] if r["artifact"] == "m_fp32.tflite")
    assert rep["browser"]["source"] == "recorded" and row["browser"]["latency"]["1"]["median_ms"] == 6.0
    assert row["browser"]["latency"]["1"]["x_python"] == 3.0  # 6 / 2
    onnx = next(r for r in rep["rows"] if r["artifact"] == "m_fp32.onnx")
    assert onnx["browser"]["reason"] == "no figure recorded for this file"

    arts["m_fp32.tflite"].write_bytes(b"changed")
    con = Console(record=True, width=200)
    rep = _report()
    bench_run._recorded_browser(rep, model_dir / "export", [model_dir / "bench"], cfg, con)
    assert not R.has_browser(rep) and "browser" not in rep["rows"][1]
    out = con.export_text()
    assert out.count("\n") == 1 and "stale entries of m_fp32.tflite" in out
    assert "stale entries of m_fp32.tflite" in R.to_markdown(rep)


def test_measured_run_writes_fingerprinted_rows_and_keeps_other_rows(tmp_path):
    from rich.console import Console

    arts = _export(tmp_path)
    model_dir, out = tmp_path / "model", tmp_path / "model" / "bench"
    old = [{"artifact": "m_fp32.tflite", "threads": 1, "runtime": "mediapipe", "browser": _fig(9.0, 1)},
           {"artifact": "m_fp32.tflite", "threads": 1, "runtime": None, "browser": _fig(99.0, 1)}]
    B.write_browser_bench(old, out / B.BROWSER_BENCH_FILE, source="latency.py")
    seen = {}

    def fake_browser(paths, threads):
        seen["paths"], seen["threads"] = sorted(p.name for p in paths), threads
        return ({(p.name, t): _fig(7.0, t) for p in paths if "ioint8" not in p.name for t in threads},
                {"m_int8_ioint8.tflite": REFUSED})

    rep = _report(threads=(1,))
    cfg = type("Cfg", (), {"threads": [1]})()
    bench_run._measure_browser(rep, fake_browser, model_dir / "export", out, cfg, Console(file=io.StringIO()))
    # the page gets the files it can run, nothing else (no Core ML, no failed file, no peer)
    assert seen == {"paths": ["m_fp32.onnx", "m_fp32.tflite", "m_int8_ioint8.tflite"], "threads": [1]}
    assert rep["browser"]["source"] == "measured" and rep["browser"]["error"] is None
    doc = B.load_browser_bench(out / B.BROWSER_BENCH_FILE)
    new = [r for r in doc["rows"] if r["runtime"] == "litert"]
    assert {r["artifact"] for r in new} == {"m_fp32.tflite", "m_fp32.onnx"}
    assert all(r["sha256"] and r["python"]["median_ms"] and r["ratio"] for r in new)
    # latency.py's MediaPipe row stays; the old default-runtime row of the same key is replaced
    assert [r["browser"]["median_ms"] for r in doc["rows"] if r["runtime"] in ("mediapipe", None) and "browser" in r] \
        == [9.0]
    # the refusal is recorded too (with the file's fingerprint), as a row without figures
    assert [(r["artifact"], r["error"]) for r in doc["rows"] if "error" in r and r["sha256"]] == \
        [("m_int8_ioint8.tflite", REFUSED)]
    # and a later bench without --browser takes them as recorded
    figures, reasons, notes = B.recorded_figures(doc, B.artifact_paths(_report(threads=(1,)), model_dir / "export"), [1])
    assert set(figures) == {("m_fp32.tflite", 1), ("m_fp32.onnx", 1)} and notes == []
    assert reasons == {"m_int8_ioint8.tflite": REFUSED}


def test_a_dead_browser_run_is_an_error_and_the_python_rows_stay(tmp_path):
    from rich.console import Console

    _export(tmp_path)
    model_dir, out = tmp_path / "model", tmp_path / "out"

    def dead(paths, threads):
        return {}, {p.name: "Chromium run failed: the page driver wrote nothing (exit 1)" for p in paths}

    rep = _report(threads=(1,))
    bench_run._measure_browser(rep, dead, model_dir / "export", out, type("C", (), {"threads": [1]})(),
                               Console(file=io.StringIO()))
    assert rep["browser"]["error"].startswith("Chromium run failed")
    assert not (out / B.BROWSER_BENCH_FILE).exists()  # no file of nothing
    assert "Chromium run failed" in R.to_markdown(rep)


# -------------------------------------------------------------------------------- errors
def test_missing_tools_are_one_line_errors_before_measuring(tmp_path, monkeypatch, capsys):
    from edgematting import web_demo
    from edgematting.cli import main

    web = tmp_path / "web"
    web.mkdir()
    (web / "index.html").write_text("<html></html>")
    monkeypatch.setattr(web_demo.shutil, "which", lambda name: "/usr/bin/node" if name == "node" else None)
    with pytest.raises(DependencyError, match=r"npm ci --prefix .*web.*playwright-core"):
        web_demo.check_browser_tools(web_dir=web)
    monkeypatch.setattr(web_demo.shutil, "which", lambda name: None)
    with pytest.raises(DependencyError, match="node is not on PATH"):
        web_demo.check_browser_tools(web_dir=web)

    # the command: exit 7 and one line, before anything is converted or measured (a web_demo/
    # with every package, so that only Chromium is missing, wherever the test runs)
    for f in [*(f"node_modules/{p}/{f}" for p, f in web_demo.VENDOR.items()), "node_modules/playwright-core/package.json",
              "test/drive.mjs"]:
        (web / f).parent.mkdir(parents=True, exist_ok=True)
        (web / f).touch()
    monkeypatch.setattr(web_demo, "WEB_DIR", web)
    monkeypatch.setattr(web_demo.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setenv("EDGEMATTING_CHROMIUM", str(tmp_path / "no-chromium"))
    monkeypatch.setattr(bench_run, "measure", lambda *a, **k: pytest.fail("measured before refusing"))
    rc = main(["bench", str(tmp_path), "--browser"])
    err = capsys.readouterr().err.strip()
    assert rc == 7 and err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    assert "Chromium not found at" in err and "EDGEMATTING_CHROMIUM" in err, err

    assert main(["bench", str(tmp_path), "--browser", "--video"]) == 2


# ---------------------------------------------------------------------- real Chromium run
def _need_chromium():
    if shutil.which("node") is None:
        pytest.skip("node is not installed (the web demo's JavaScript tests need Node 20+; .ci/run installs it)")
    from edgematting import web_demo

    missing = web_demo.missing_npm_packages() + \
        ([] if (WEB / "node_modules" / "playwright-core" / "package.json").is_file() else ["playwright-core"])
    if missing:
        pytest.skip(f"web_demo npm packages missing ({', '.join(missing)}): run `npm ci --prefix web_demo`")
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"Chromium not found at {CHROMIUM} (Debian: `apt-get install chromium`; .ci/run installs it)")


@pytest.mark.slow
def test_bench_browser_in_headless_chromium(tiny_fast_scnn_dir, tmp_path, capsys):
    """`bench --browser` on the tiny model: real page figures for .tflite and .onnx at 1 and 2
    threads, the LiteRT.js refusal of an int8-I/O file as its reason, browser.json written with
    fingerprints, and a second bench without --browser shows the same figures as recorded."""
    _need_chromium()
    from edgematting.cli import main
    from edgematting.converters import ExportConfig, convert
    from edgematting.formats import TFLiteOptions

    from export_helpers import TEST_CALIB_SAMPLES

    model_dir = tmp_path / "model"
    shutil.copytree(tiny_fast_scnn_dir, model_dir)
    configs = [ExportConfig(target="tflite", verify_samples=2), ExportConfig(target="onnx", verify_samples=2),
               ExportConfig(target="tflite", precision="int8", calib_samples=TEST_CALIB_SAMPLES, verify_samples=2,
                            tflite=TFLiteOptions(io="int8"))]
    convert(model_dir, configs, model_dir / "export", progress=False).raise_for_failures()
    args = ["bench", str(model_dir), "--no-convert", "--no-int8-debug", "--threads", "1,2", "--runs", "3",
            "--warmup", "1"]
    assert main(args + ["--browser"]) == 0, capsys.readouterr().err
    capsys.readouterr()
    rep = json.loads((model_dir / "bench" / "bench.json").read_text())
    rows = {r["artifact"]: r for r in rep["rows"]}
    assert rep["browser"]["source"] == "measured" and rep["browser"]["error"] is None
    ran = [r for r in rows.values() if r["target"] in ("tflite", "onnx") and r["status"] != "failed"
           and (r.get("input") or "").startswith("float32")]
    assert {r["target"] for r in ran} == {"tflite", "onnx"}, rows.keys()
    for r in ran:
        for t in ("1", "2"):
            fig = r["browser"]["latency"][t]
            assert 0 < fig["median_ms"] <= fig["p90_ms"] and fig["first_ms"] > 0, fig
            assert fig["runs"] == 20 and fig["cross_origin_isolated"] is True, fig
            py = r["latency"][t]["model"]["median_ms"]
            assert fig["x_python"] == pytest.approx(fig["median_ms"] / py, abs=0.01)
    refused = [r for r in rows.values() if r["target"] == "tflite" and "int8" in (r.get("input") or "")]
    assert refused and all(not r["browser"]["latency"] and "int8" in r["browser"]["reason"] for r in refused), \
        [r.get("browser") for r in refused]
    doc = B.load_browser_bench(model_dir / "bench" / B.BROWSER_BENCH_FILE)
    assert len([d for d in doc["rows"] if "browser" in d]) == 2 * len(ran) and all(d["sha256"] for d in doc["rows"])

    # again without --browser: the same figures, marked recorded
    assert main(args) == 0
    out = capsys.readouterr().out
    again = json.loads((model_dir / "bench" / "bench.json").read_text())
    assert again["browser"]["source"] == "recorded" and "(rec.)" in out
    for r in refused:  # the page's reason, recorded
        assert next(x for x in again["rows"] if x["artifact"] == r["artifact"])["browser"]["reason"] == \
            r["browser"]["reason"]
    for r in ran:
        rec = next(x for x in again["rows"] if x["artifact"] == r["artifact"])["browser"]["latency"]
        assert {t: f["median_ms"] for t, f in rec.items()} == {t: f["median_ms"] for t, f in r["browser"]["latency"].items()}
