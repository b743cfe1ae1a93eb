"""`edgematting inspect`: what a client SDK sees in each kind of artifact, read from the file."""
import json

import numpy as np
import pytest

from edgematting.cli import main


def _inspect(path, capsys) -> dict:
    capsys.readouterr()
    assert main(["inspect", str(path), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("key", ["tflite_fp32", "tflite_int8", "onnx_fp32", "coreml_fp32"])
def test_inspect_reads_what_the_client_sees(tiny_artifacts, key, capsys):
    path = tiny_artifacts[key]
    info = _inspect(path, capsys)
    view = info["client_view"]
    assert info["target"] == key.split("_")[0] and info["precision"] == key.split("_")[1]
    assert info["contract"]["normalization"].startswith("(pixel - [127.5, 127.5, 127.5])")
    assert info["verified_against_keras"]["passed"] is True and info["contract_embedded"] and info["sidecar"]
    (inp,), (out,) = view["inputs"], view["outputs"]
    if key.startswith("tflite"):
        assert inp["shape"] == [1, 64, 64, 3] and out["shape"] == [1, 64, 64, 1]
        assert "edgematting" in view["metadata_entries"]
        assert (inp["quantization"] is None) == (key == "tflite_fp32") or inp["dtype"] == "float32"
    elif key.startswith("onnx"):
        assert inp["shape"] == ["batch", 64, 64, 3] and view["producer"].startswith("edgematting ")
        assert "edgematting" in view["metadata_entries"] and inp["doc"]
    else:
        assert inp["type"] == "multiarray" and inp["shape"] == [1, 64, 64, 3]
        assert view["specification_version"] >= 6 and info["coreml"]["deployment_target"] == "iOS15"
    # the human form: tables, no traceback
    assert main(["inspect", str(path)]) == 0
    text = capsys.readouterr().out
    assert "Tensors a client feeds and reads" in text and "verified vs Keras" in text


def test_inspect_bad_inputs(tmp_path, tiny_fast_scnn_dir, capsys):
    assert main(["inspect", str(tmp_path / "missing.tflite")]) == 2
    assert main(["inspect", str(tiny_fast_scnn_dir)]) == 2
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 3000, np.uint8).tobytes())
    assert main(["inspect", str(junk)]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 3 and "Traceback" not in err
