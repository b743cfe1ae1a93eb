"""`edgematting convert` / `verify` from the command line: happy path, every bad input
mapped to its exit code, and no partial file left in --out after any failure or Ctrl-C."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edgematting.cli import main


def _files(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*")) if d.exists() else []


@pytest.fixture
def model_copy(confident_fast_scnn_dir, tmp_path):
    """A private copy of the confident model, so MODEL/export/ is written next to it and not
    in the shared fixture (and the parity checks the CLI runs can fail)."""
    dst = tmp_path / "model"
    shutil.copytree(confident_fast_scnn_dir, dst)
    return dst


def test_convert_then_verify_cli(model_copy, capsys):
    rc = main(["convert", str(model_copy), "--target", "tflite", "--precision", "fp32",
               "--verify-samples", "2"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    export = model_copy / "export"
    tfl = next(export.glob("*.tflite"))
    assert sorted(p.name for p in export.iterdir()) == sorted([tfl.name, tfl.name + ".json"])
    side = json.loads((export / (tfl.name + ".json")).read_text())
    assert side["verification"]["passed"] is True and side["verification"]["n"] == 2
    assert side["verification"]["artifact"] == str(tfl)  # not the staging folder it was verified in
    assert ".staging-" not in json.dumps(side)
    assert "edgematting bench" in out.out and "passed" in out.out
    # verify finds MODEL_DIR from MODEL/export/FILE by itself
    rc = main(["verify", str(tfl), "-n", "2"])
    assert rc == 0, capsys.readouterr().err


def test_convert_all_skips_unsupported(model_copy, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["convert", str(model_copy), "--target", "all", "--precision", "dynamic",
               "--verify-samples", "2", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "skipping coreml" in err and "skipping tflite" not in err
    assert sorted(p.suffix for p in out.iterdir() if p.suffix != ".json") == [".onnx", ".tflite"]


def test_missing_model_exit_2(tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["convert", str(tmp_path / "nope"), "--out", str(out)])
    assert rc == 2
    assert "Model not found" in capsys.readouterr().err
    assert _files(out) == []


def test_unknown_target_suggests(model_copy, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["convert", str(model_copy), "--target", "tflight", "--out", str(out)])
    assert rc == 2
    err = capsys.readouterr().err
    assert "Did you mean 'tflite'" in err and "onnx" in err
    assert _files(out) == []


def test_unknown_precision_exit_2(model_copy, tmp_path, capsys):
    rc = main(["convert", str(model_copy), "--precision", "int4", "--out", str(tmp_path / "o")])
    assert rc == 2
    assert "int8" in capsys.readouterr().err


def test_unsupported_precision_exit_4(model_copy, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["convert", str(model_copy), "--target", "onnx", "--precision", "int16x8", "--out", str(out)])
    assert rc == 4
    err = capsys.readouterr().err
    assert "fp32, fp16, dynamic, int8" in err  # lists what is valid
    assert _files(out) == []


def test_unsupported_tflite_io_exit_4(model_copy, tmp_path):
    out = tmp_path / "out"
    rc = main(["convert", str(model_copy), "--precision", "fp16", "--tflite-io", "int8", "--out", str(out)])
    assert rc == 4
    assert _files(out) == []


def test_empty_calibration_folder_exit_2(model_copy, tmp_path, capsys):
    empty = tmp_path / "calib"
    empty.mkdir()
    (empty / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    rc = main(["convert", str(model_copy), "--precision", "int8", "--calib", str(empty), "--out", str(out)])
    assert rc == 2
    assert str(empty) in capsys.readouterr().err
    assert _files(out) == []


def test_parity_failure_exit_6_nothing_written(model_copy, tmp_path, monkeypatch, capsys):
    """A real parity failure (the uint8 input wrapper with a mean 2 pixel values off), not an
    impossible tolerance: exit 6, every failed check reported once, nothing written."""
    from export_helpers import break_input_mapping

    break_input_mapping(monkeypatch, "wrapper", "mean_off_by_2")
    out = tmp_path / "out"
    rc = main(["convert", str(model_copy), "--input", "uint8", "--out", str(out), "--verify-samples", "4"])
    assert rc == 6
    err = capsys.readouterr().err
    assert err.count("max_abs") == 1 and err.count("alpha: iou") == 1, err  # every failure, once
    assert _files(out) == []


def test_ctrl_c_leaves_nothing(model_copy, tmp_path, monkeypatch):
    import edgematting.converters.tflite as tfl

    def interrupted(model, spec, config, out_path):
        tmp = Path(out_path).with_name("." + Path(out_path).name + ".part")
        tmp.write_bytes(b"TFL3 half written")
        Path(out_path).write_bytes(b"half")  # even a file at the final staged name
        raise KeyboardInterrupt

    monkeypatch.setattr(tfl, "convert", interrupted)
    out = tmp_path / "out"
    rc = main(["convert", str(model_copy), "--out", str(out)])
    assert rc == 130
    assert _files(out) == []
    assert not out.exists()  # the folder this run created is removed too


def test_conversion_error_keeps_existing_files(model_copy, tmp_path, monkeypatch):
    """A failure removes only what this run staged; earlier artifacts stay."""
    import edgematting.converters.tflite as tfl
    from edgematting.errors import ConversionError

    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")

    def broken(model, spec, config, out_path):
        raise ConversionError("boom")

    monkeypatch.setattr(tfl, "convert", broken)
    rc = main(["convert", str(model_copy), "--out", str(out)])
    assert rc == 5
    assert _files(out) == ["keep.txt"]


def test_convert_never_removes_what_it_did_not_write(model_copy, tmp_path, capsys):
    """A folder of the user's at an artifact's path, a file without our sidecar, another
    model's artifact: each is refused before any work (exit 2) and left as it was; --force
    replaces; our own artifact of the same model is replaced without asking."""
    out = tmp_path / "out"
    user = out / "fast-scnn_fp32.tflite"
    user.mkdir(parents=True)
    (user / "notes.txt").write_text("the only copy")
    args = ["convert", str(model_copy), "--target", "tflite", "--out", str(out), "--verify-samples", "2"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "did not write" in err and "--force" in err and "Traceback" not in err
    assert (user / "notes.txt").read_text() == "the only copy" and _files(out) == ["fast-scnn_fp32.tflite",
                                                                                  "fast-scnn_fp32.tflite/notes.txt"]
    # a plain file of the same name, no sidecar
    import shutil as _sh

    _sh.rmtree(user)
    user.write_bytes(b"user bytes")
    assert main(args) == 2 and user.read_bytes() == b"user bytes"
    # another model's artifact (its sidecar names another model)
    (out / "fast-scnn_fp32.tflite.json").write_text(json.dumps(
        {"format": "edgematting-artifact", "file": user.name, "model_name": "someone-else"}))
    assert main(args) == 2 and user.read_bytes() == b"user bytes"
    assert "another model's artifact" in capsys.readouterr().err
    # --force replaces it; then our own artifact is replaced on the next convert
    assert main(args + ["--force"]) == 0
    assert user.read_bytes()[4:8] == b"TFL3"
    assert main(args) == 0, capsys.readouterr().err


def test_verify_cli_needs_model(tmp_path, confident_fast_scnn_dir, tiny_fast_scnn_dir, capsys):
    from edgematting.converters import ExportConfig, convert_model

    art = convert_model(confident_fast_scnn_dir, ExportConfig(target="onnx", verify=False), out_dir=tmp_path / "x",
                        progress=False)
    assert "verification" not in json.loads(art.sidecar.read_text())
    rc = main(["verify", str(art.path)])
    assert rc == 2
    assert "--model" in capsys.readouterr().err
    rc = main(["verify", str(art.path), "--model", str(confident_fast_scnn_dir), "-n", "2"])
    assert rc == 0
    side = json.loads(art.sidecar.read_text())
    assert side["verification"]["passed"] is True  # verify stores its result in the sidecar
    # against another model (the untrained one): parity fails, exit 6, and the sidecar says so
    capsys.readouterr()
    rc = main(["verify", str(art.path), "--model", str(tiny_fast_scnn_dir), "-n", "2"])
    assert rc == 6 and "max_abs" in capsys.readouterr().err
    side = json.loads(art.sidecar.read_text())
    assert side["verification"]["passed"] is False


def test_model_trained_on_a_folder_calibrates_and_verifies_on_it(folder_trained_fast_scnn, tmp_path):
    """Issue 8: a model trained on photos is checked on photos, not on synthetic figures, by
    default; every report says which images were used."""
    from edgematting.cli import main
    from edgematting.contract import read_sidecar

    from export_helpers import copy_model_dir

    trained, photos = folder_trained_fast_scnn
    copy_model_dir(trained, tmp_path / "m")
    assert main(["convert", str(tmp_path / "m"), "--precision", "int8", "--calib-samples", "4",
                 "--verify-samples", "2"]) == 0
    side = read_sidecar(tmp_path / "m" / "export" / "fast-scnn_int8.tflite")
    assert side["conversion"]["calibration_images"] == str(photos)
    assert side["verification"]["data"] == str(photos) and side["verification"]["passed"]
    # explicit synthetic still works, and says so
    assert main(["convert", str(tmp_path / "m"), "--precision", "fp32", "--verify-data", "synthetic",
                 "--verify-samples", "2"]) == 0
    assert read_sidecar(tmp_path / "m" / "export" / "fast-scnn_fp32.tflite")["verification"]["data"] == "synthetic"
    # `verify` without --data uses the training photos as well
    assert main(["verify", str(tmp_path / "m" / "export" / "fast-scnn_int8.tflite"), "-n", "2",
                 "--json", str(tmp_path / "v.json")]) == 0
    import json

    assert json.loads((tmp_path / "v.json").read_text())["data"] == str(photos)
