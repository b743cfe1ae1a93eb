"""The bad-input matrix: inputs a new user gives by mistake, each with the one-line error and
exit code it must get, and nothing half-written left behind.

Every row of `MATRIX` is one command line run through `edgematting.cli.main` in-process.
To add a case: write a builder ``f(ctx) -> argv`` (ctx makes files in a temporary folder and
knows the shared fixtures) and add a `Case`. A row checks the exit code, that stderr's
``error:`` message is one line matching `match`, that no traceback was printed, and that
none of the paths `untouched` names changed or appeared.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from edgematting.contract import sidecar_path
from PIL import Image

from edgematting.cli import main

H, W = 80, 96  # photo size (the tiny model takes 64x64)


# -- shared inputs ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory):
    from edgematting.data.synthetic import write_synthetic_folder

    return Path(write_synthetic_folder(tmp_path_factory.mktemp("synth") / "data", n=4, size=(H, W), seed=5))


@pytest.fixture(scope="module")
def nan_model_dir(tiny_fast_scnn_dir, tmp_path_factory):
    """The tiny Fast-SCNN with one NaN weight in its last convolution."""
    from edgematting.modelio import load_model_dir, save_model_dir

    model, spec = load_model_dir(tiny_fast_scnn_dir)
    last = [ly for ly in model.layers if getattr(ly, "kernel", None) is not None][-1]
    w = [np.array(v) for v in last.get_weights()]
    w[0].reshape(-1)[0] = np.nan
    last.set_weights(w)
    out = save_model_dir(model, spec, tmp_path_factory.mktemp("nan") / "model")
    return Path(out), last.name


def unwritable_dir(tmp_path: Path) -> Path:
    """A folder path this process cannot create or write into (as root, where permission
    bits do not stop it, under /sys)."""
    if os.geteuid() != 0:
        ro = tmp_path / "read-only"
        ro.mkdir()
        ro.chmod(0o500)
        return ro / "out"
    p = Path("/sys/edgematting-test-unwritable")
    try:
        p.mkdir()
    except OSError:
        return p / "out"
    p.rmdir()
    pytest.skip("no unwritable location on this machine")


def truncated_copy(src: Path, dst: Path) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])
    return dst


def exif_jpeg(path: Path, stored: np.ndarray, orientation: int) -> Path:
    ex = Image.Exif()
    ex[0x0112] = orientation
    Image.fromarray(stored).save(path, quality=95, exif=ex)
    return path


# -- the matrix --------------------------------------------------------------------------------
@dataclass
class Ctx:
    tmp: Path
    request: pytest.FixtureRequest
    untouched: list[Path] = field(default_factory=list)

    def fx(self, name):
        return self.request.getfixturevalue(name)

    @property
    def model(self) -> Path:
        dst = self.tmp / "model"
        if not dst.exists():
            shutil.copytree(self.fx("tiny_fast_scnn_dir"), dst)
        return dst

    @property
    def photo(self) -> Path:
        return sorted((self.fx("synth_dir") / "image").iterdir())[0]

    def keep(self, *paths: Path) -> None:
        """These must not change (or appear) while the command runs."""
        self.untouched.extend(paths)


def _predict_unwritable(c: Ctx):
    out = unwritable_dir(c.tmp)
    return ["predict", str(c.model), str(c.photo), "--out", str(out)]


def _evaluate_unwritable(c: Ctx):
    out = unwritable_dir(c.tmp) / "e.json"
    c.keep(c.model)
    return ["evaluate", str(c.model), "--data", str(c.fx("synth_dir")), "--out", str(out)]


def _convert_unwritable(c: Ctx):
    return ["convert", str(c.model), "--out", str(unwritable_dir(c.tmp)), "--no-verify"]


def _convert_out_is_file(c: Ctx):
    f = c.tmp / "afile"
    f.write_text("x")
    c.keep(f, c.model)
    return ["convert", str(c.model), "--out", str(f), "--no-verify"]


def _train_out_is_file(c: Ctx):
    f = c.tmp / "afile"
    f.write_text("x")
    c.keep(f)
    return ["train", "--out", str(f), "--epochs", "1", "--quiet"]


def _verify_random_onnx(c: Ctx):
    f = c.tmp / "export" / "model.onnx"
    f.parent.mkdir()
    f.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    c.keep(f)
    return ["verify", str(f), "--model", str(c.model)]


def _verify_mlpackage_without_weights(c: Ctx):
    src = c.fx("tiny_artifacts")["coreml_fp32"]
    dst = c.tmp / src.name
    shutil.copytree(src, dst)
    shutil.copy(sidecar_path(src), sidecar_path(dst))
    shutil.rmtree(dst / "Data" / "com.apple.CoreML" / "weights")
    c.keep(sidecar_path(dst))
    return ["verify", str(dst), "--model", str(c.fx("tiny_fast_scnn_dir"))]


def _big_image(c: Ctx):
    p = c.tmp / "big.png"
    Image.fromarray(np.zeros((128, 128, 3), np.uint8)).save(p)
    # a bomb for PIL beyond 2 x MAX_IMAGE_PIXELS: 128*128 is, the 80x96 photos are not
    c.request.getfixturevalue("monkeypatch").setattr(Image, "MAX_IMAGE_PIXELS", 5000)
    return p


def _predict_bomb(c: Ctx):
    return ["predict", str(c.model), str(_big_image(c)), "--out", str(c.tmp / "out")]


def _evaluate_bomb_skip_bad(c: Ctx):
    data = c.tmp / "data"
    shutil.copytree(c.fx("synth_dir"), data)
    big = _big_image(c)
    shutil.copy(big, data / "image" / "zz.png")
    Image.fromarray(np.zeros((128, 128), np.uint8)).save(data / "alpha" / "zz.png")
    return ["evaluate", str(c.model), "--data", str(data), "--skip-bad", "--out", str(c.tmp / "e.json")]


def _predict_truncated(c: Ctx):
    d = c.tmp / "photos"
    shutil.copytree(c.fx("synth_dir") / "image", d)
    truncated_copy(c.photo, d / "zz_truncated.png")
    return ["predict", str(c.model), str(d), "--out", str(c.tmp / "out")]


def _predict_broken_link(skip_bad: bool):
    def build(c: Ctx):
        d = c.tmp / "photos"
        shutil.copytree(c.fx("synth_dir") / "image", d)
        (d / "dead.png").symlink_to(c.tmp / "gone.png")
        return ["predict", str(c.model), str(d), "--out", str(c.tmp / "out")] + (["--skip-bad"] if skip_bad else [])
    return build


def _predict_spec_mismatch(c: Ctx):
    spec = json.loads((c.model / "model.json").read_text())
    spec["input_size"] = [128, 128]
    (c.model / "model.json").write_text(json.dumps(spec))
    return ["predict", str(c.model), str(c.photo), "--out", str(c.tmp / "out")]


def _nan(c: Ctx) -> Path:
    d = c.tmp / "nan_model"
    shutil.copytree(c.fx("nan_model_dir")[0], d)
    return d


def _predict_nan(c: Ctx):
    return ["predict", str(_nan(c)), str(c.photo), "--out", str(c.tmp / "out")]


def _evaluate_nan(c: Ctx):
    m = _nan(c)
    c.keep(m)
    return ["evaluate", str(m), "--data", str(c.fx("synth_dir"))]


def _convert_nan(no_verify: bool):
    def build(c: Ctx):
        m = _nan(c)
        return ["convert", str(m), "--out", str(c.tmp / "out")] + (["--no-verify"] if no_verify else [])
    return build


def _evaluate_exif_mismatch(c: Ctx):
    data = c.tmp / "data"
    (data / "image").mkdir(parents=True)
    (data / "alpha").mkdir()
    stored = np.full((60, 80, 3), 120, np.uint8)
    exif_jpeg(data / "image" / "phone.jpg", stored, 6)  # shown 60 wide, 80 tall
    Image.fromarray(np.zeros((60, 80), np.uint8)).save(data / "alpha" / "phone.png")  # matte of the stored pixels
    return ["evaluate", str(c.model), "--data", str(data), "--out", str(c.tmp / "e.json")]


def _evaluate_bad_pair_hint(c: Ctx):
    data = c.tmp / "data"
    shutil.copytree(c.fx("synth_dir"), data)
    (data / "alpha" / sorted((data / "alpha").iterdir())[0].name).unlink()
    return ["evaluate", str(c.model), "--data", str(data), "--out", str(c.tmp / "e.json")]


def _verify_int8_over_fp32(c: Ctx):
    arts = c.fx("tiny_artifacts")
    d = c.tmp / "export"
    d.mkdir()
    fp32 = d / arts["tflite_fp32"].name
    shutil.copy(arts["tflite_int8"], fp32)  # the int8 file under the fp32 name ...
    shutil.copy(sidecar_path(arts["tflite_fp32"]), sidecar_path(fp32))
    c.keep(sidecar_path(fp32))  # ... with the fp32 sidecar, which must stay as it was
    return ["verify", str(fp32), "--model", str(c.fx("tiny_fast_scnn_dir"))]


def _predict_artifact_int8_over_fp32(c: Ctx):
    argv = _verify_int8_over_fp32(c)
    return ["predict", argv[1], str(c.photo), "--out", str(c.tmp / "out")]


# -- the second round (issue 23) ------------------------------------------------------------------
def _convert_over_users_folder(c: Ctx):
    out = c.tmp / "out"
    user = out / "fast-scnn_fp32.tflite"
    user.mkdir(parents=True)
    (user / "notes.txt").write_text("the only copy")
    c.keep(user)
    return ["convert", str(c.model), "--out", str(out), "--no-verify"]


def _convert_option_of_another_target(flag: list[str]):
    def build(c: Ctx):
        c.keep(c.model)
        return ["convert", str(c.model), "--target", "tflite", "--out", str(c.tmp / "out"), "--no-verify", *flag]
    return build


def _other_architecture(c: Ctx) -> Path:
    spec = json.loads((c.model / "model.json").read_text())
    spec["architecture"] = "mattingnet"
    (c.model / "model.json").write_text(json.dumps(spec))
    return c.model


def _summary_other_architecture(c: Ctx):
    return ["summary", str(_other_architecture(c))]


def _convert_other_architecture(c: Ctx):
    return ["convert", str(_other_architecture(c)), "--out", str(c.tmp / "out"), "--no-verify"]


def _empty_out(command: str):
    def build(c: Ctx):
        if command == "predict":
            return ["predict", str(c.model), str(c.photo), "--out", ""]
        return ["convert", str(c.model), "--out", "", "--no-verify"]
    return build


def _bench_limit(n: int):
    def build(c: Ctx):
        return ["bench", str(c.model), "--limit", str(n), "--out", str(c.tmp / "out")]
    return build


def _bench_bad_pair(c: Ctx):
    data = c.tmp / "data"
    shutil.copytree(c.fx("synth_dir"), data)
    (data / "alpha" / sorted((data / "alpha").iterdir())[0].name).unlink()
    return ["bench", str(c.model), "--data", str(data), "--out", str(c.tmp / "out")]


def _bench_random_peer(c: Ctx):
    peer = c.tmp / "peer.tflite"
    peer.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    return ["bench", str(c.model), "--peer", str(peer), "--out", str(c.tmp / "out")]


@dataclass
class Case:
    name: str
    build: Callable[[Ctx], list[str]]
    rc: int
    match: str  # regex the error line (or, for rc 0, the output) must match
    out: str | None = "out"  # a folder under tmp that must not exist afterwards (None: no check)


MATRIX = [
    # 5. one-line errors instead of tracebacks
    Case("predict --out unwritable", _predict_unwritable, 2, r"--out .* not writable"),
    Case("evaluate --out unwritable (before computing)", _evaluate_unwritable, 2, r"not writable"),
    Case("convert --out unwritable", _convert_unwritable, 2, r"--out .* not writable"),
    Case("convert --out is a file", _convert_out_is_file, 2, r"--out .*afile is an existing file"),
    Case("train --out is a file", _train_out_is_file, 2, r"--out .*afile is an existing file"),
    Case("verify random-bytes .onnx", _verify_random_onnx, 2, r"onnxruntime cannot load .*model\.onnx"),
    Case("verify .mlpackage without weights", _verify_mlpackage_without_weights, 2, r"\.mlpackage.*weights"),
    Case("predict image over the decompression-bomb limit", _predict_bomb, 2, r"big\.png.*decompression-bomb"),
    Case("evaluate --skip-bad with a decompression bomb", _evaluate_bomb_skip_bad, 0,
         r"warning: Skipping 2 bad file.*\n.*zz\.png: too large to decode safely"),
    Case("model.json input size != model.keras", _predict_spec_mismatch, 2, r"input_size 128x128 .* takes 64x64"),
    # 3. an unreadable photo in a folder run: nothing written, --skip-bad named
    Case("predict folder with a truncated photo", _predict_truncated, 2, r"zz_truncated\.png.*--skip-bad"),
    Case("predict folder with a broken link", _predict_broken_link(False), 2,
         r"dead\.png is a broken link: its target .*gone\.png does not exist.*--skip-bad"),
    Case("predict --skip-bad folder with a broken link: one line naming it", _predict_broken_link(True), 0,
         r"warning: skipped 1 broken link\(s\): dead\.png\n"),
    # 2. NaN weights: exit 9, naming the layer, never a published artifact
    Case("predict NaN model", _predict_nan, 9, r"non-finite.*first layer whose output is non-finite"),
    Case("evaluate NaN model", _evaluate_nan, 9, r"non-finite"),
    Case("convert --no-verify NaN model", _convert_nan(True), 9, r"non-finite.*not a converter"),
    Case("convert (verified) NaN model", _convert_nan(False), 9, r"non-finite"),
    # 1. EXIF named when a matte only fits the stored photo
    Case("evaluate pair whose matte fits the photo before EXIF rotation", _evaluate_exif_mismatch, 3,
         r"EXIF Orientation=6"),
    # 6. hints: the flag, not the Python keyword, and the right verb
    Case("evaluate bad pair: --skip-bad hint", _evaluate_bad_pair_hint, 3, r"pass --skip-bad to evaluate on the 3"),
    # 4. a file that its sidecar does not describe
    Case("verify int8 file over the fp32 name", _verify_int8_over_fp32, 2, r"does not describe .*precision 'fp32'"),
    Case("predict int8 file over the fp32 name", _predict_artifact_int8_over_fp32, 2, r"does not describe"),
    # the second round: nothing of the user's lost, no option silently ignored
    Case("convert over a folder of the user's", _convert_over_users_folder, 2, r"did not write.*--force", out=None),
    Case("convert --palettize with --target tflite", _convert_option_of_another_target(["--palettize", "4"]), 4,
         r"--palettize is for Core ML \(coreml\)"),
    Case("convert --nchw with --target tflite", _convert_option_of_another_target(["--nchw"]), 4,
         r"--nchw is for ONNX \(onnx\)"),
    Case("summary: model.json of another architecture", _summary_other_architecture, 2,
         r"architecture 'mattingnet' but .* is a fast-scnn model", out=None),
    Case("convert: model.json of another architecture", _convert_other_architecture, 2,
         r"architecture 'mattingnet' but .* is a fast-scnn model"),
    Case("predict --out ''", _empty_out("predict"), 2, r"--out is empty", out=None),
    Case("convert --out ''", _empty_out("convert"), 2, r"--out is empty", out=None),
    Case("bench --limit 0", _bench_limit(0), 2, r"--limit takes a positive number"),
    Case("bench --limit -5", _bench_limit(-5), 2, r"--limit takes a positive number"),
    Case("bench --peer random bytes", _bench_random_peer, 2, r"LiteRT cannot load .*peer\.tflite"),
    Case("bench --data with an unpaired photo: no --skip-bad hint (bench has none)", _bench_bad_pair, 3,
         r"problem\(s\) in dataset .*Fix or remove these files:(?![^\n]*skip-bad)"),
]


def _digest(p: Path) -> str | None:
    if not p.exists():
        return None
    files = sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]
    h = hashlib.sha256()
    for q in files:
        h.update(str(q.relative_to(p) if p.is_dir() else q.name).encode())
        h.update(q.read_bytes())
    return h.hexdigest()


@pytest.mark.parametrize("case", MATRIX, ids=[c.name for c in MATRIX])
def test_bad_input_matrix(case: Case, tmp_path, request, capsys):
    ctx = Ctx(tmp_path, request)
    argv = case.build(ctx)
    before = {p: _digest(p) for p in ctx.untouched}
    capsys.readouterr()
    rc = main(argv)
    cap = capsys.readouterr()
    assert "Traceback" not in cap.err, cap.err
    if case.rc == 0:
        assert rc == 0, cap.err
        assert re.search(case.match, cap.out + cap.err), cap.out + cap.err
        return
    errors = [ln for ln in cap.err.splitlines() if ln.startswith("error:")]
    assert rc == case.rc, cap.err
    assert len(errors) == 1, cap.err
    assert len(errors[0]) < 700, "one line, not a dump"
    # the message: the error line, plus the indented list of bad files a DataError carries
    message = cap.err[cap.err.index("error:"):]
    assert re.search(case.match, message), message
    for p, d in before.items():
        assert _digest(p) == d, f"{p} changed"
    if case.out:
        out = tmp_path / case.out
        assert not out.exists() or not any(out.rglob("*")), f"{out} holds {list(out.rglob('*'))}"
    assert not list(tmp_path.rglob(".staging-*")), "a staging folder was left behind"
