"""Standard TFLite Model Metadata, so MediaPipe Tasks' ``ImageSegmenter`` loads a .tflite as it is.

`converters.tflite.convert` calls `write_segmenter_metadata` on every file it writes: the
metadata is written by tflite-support's image segmenter metadata writer
(``tflite_support.metadata_writers.image_segmenter.MetadataWriter.create_from_metadata_info``
then ``populate()``), never by hand:

* model: name, description, version, author, licence;
* input "image": RGB image properties, the contract's normalization (``spec.mean`` /
  ``spec.std``; mean 0, std 1 where the file takes raw pixels, i.e. the normalization is
  folded into the graph: uint8 input), value range;
* output "alpha": a segmentation mask (grayscale image properties) with a label file
  (`LABELS`, packed into the file as an associated file).

Our own JSON contract stays in ``Model.metadata[formats.METADATA_KEY]`` (`converters.tflite.embed_metadata`):
the writer keeps the other entries of that table, so it is embedded first.

The writer runs in a separate virtualenv, `CLIENTS_VENV` (made by ``.ci/run``, or by the
first TFLite export that needs it: `create_venv`, from the package registry), called through a subprocess running this very file
(its module level imports only the standard library). Its requirements cannot live in
our venv: tflite-support 0.4.4 requires protobuf<4 (tensorflow 2.21 and onnx require
protobuf>=6.31.1), and mediapipe 1.2.3 (the client the tests run, in the same venv)
requires absl-py~=2.3 (tensorflow-model-optimization 0.8.1 requires absl-py~=1.2).
tflite-support's native modules also link ``libusb-1.0.so.0``, which a bare machine lacks:
libusb-package ships it, and the subprocess loads it before importing tflite_support.

`mediapipe_support` says, per file, whether MediaPipe Tasks can take it ("supported") or
why not ("unsupported: ..."): 4-channel input (MediaPipe feeds 1- or 3-channel images),
int8 I/O (it takes uint8 or float32 image tensors), BGR channel order (it feeds RGB), a
float input whose mean/std differ between channels (it has one mean and std for all).
Such files still get the standard metadata; the converter records the reason in the
sidecar (``clients``) and prints it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

#: The clients' virtualenv, at the repository root (beside `.venv`).
CLIENTS_VENV = ".venv-clients"
#: What `.ci/run` installs into it (tests/test_clients.py checks that the two agree).
CLIENTS_REQUIREMENTS = ("tflite-support==0.4.4", "mediapipe==1.2.3", "libusb-package==1.0.30.0")
#: A Python with those packages, instead of `CLIENTS_VENV`'s.
PYTHON_ENV = "EDGEMATTING_CLIENTS_PYTHON"
#: One output channel, the person confidence. (MediaPipe's category mask of a one-channel
#: segmenter is 0 where that channel exceeds 0.5 and 255 elsewhere, so label 0 names the
#: foreground: a [background, person] list would call the person "background".)
LABELS = ("person",)
LABELS_FILE = "labels.txt"
#: The key in the sidecar's "clients" section.
MEDIAPIPE = "mediapipe_tasks"
SUPPORTED = "supported"
WRITER = "tflite-support metadata_writers.image_segmenter"
TIMEOUT_S = 300


# --------------------------------------------------------------------------------------
# in our venv
# --------------------------------------------------------------------------------------
def _conversion_error(message: str):
    from edgematting.errors import ConversionError

    return ConversionError(message)


def setup_hint(venv: Path | None = None) -> str:
    """The commands that create the clients' virtualenv."""
    venv = venv or (_repo_root() / CLIENTS_VENV)
    return (f"python3.11 -m venv {venv} && {venv}/bin/python -m pip install "
            + " ".join(CLIENTS_REQUIREMENTS))


def _repo_root() -> Path:
    # converters/ sits at the repository root (installed as edgematting.converters, editable)
    return Path(__file__).resolve().parents[1]


def default_venv() -> Path:
    """Where the clients' virtualenv is made when there is none: `CLIENTS_VENV` at the
    repository root for a source checkout (as `.ci/run` makes it), else a per-user cache
    folder ($XDG_CACHE_HOME/edgematting, default ~/.cache/edgematting)."""
    root = _repo_root()
    if (root / "pyproject.toml").is_file():
        return root / CLIENTS_VENV
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "edgematting" / CLIENTS_VENV.lstrip(".")


def clients_python(create: bool = True) -> Path:
    """The clients venv's interpreter: $EDGEMATTING_CLIENTS_PYTHON, else `CLIENTS_VENV`
    at the repository root (or beside the running venv), else `default_venv()`. When there
    is none and `create`, it is made there first (`create_venv`: about half a minute from
    the package registry, once). ConversionError when there is none and it cannot be made."""
    env = os.environ.get(PYTHON_ENV)
    if env:
        p = Path(env)
        if not p.is_file():
            raise _conversion_error(f"${PYTHON_ENV} is {env}, which is not a file.")
        return p
    candidates = [_repo_root() / CLIENTS_VENV / "bin" / "python",
                  Path(sys.prefix).parent / CLIENTS_VENV / "bin" / "python",
                  default_venv() / "bin" / "python"]
    for p in candidates:
        if p.is_file():
            return p
    venv = default_venv()
    if create:
        return create_venv(venv)
    raise _conversion_error(
        "Writing the standard TFLite Model Metadata (which MediaPipe Tasks needs) takes "
        f"{', '.join(CLIENTS_REQUIREMENTS[:1])} in a separate virtualenv (its protobuf<4 "
        f"conflicts with tensorflow's); none found at {venv}. Create it with: "
        f"{setup_hint(venv)} (or point ${PYTHON_ENV} at a Python that has them)."
    )


def create_venv(venv: Path, requirements: tuple[str, ...] | None = None) -> Path:
    """Make the clients' virtualenv at `venv` with `requirements` (default
    `CLIENTS_REQUIREMENTS`) and return its interpreter. It is built beside `venv` and
    renamed into place only when every package installed, under a lock, so an interrupted
    or failed install leaves nothing that a later run would trust, and two processes
    converting at once make it once. ConversionError (with the commands to run by hand)
    when it cannot be made, e.g. with no access to the package registry."""
    import fcntl
    import shutil

    requirements = CLIENTS_REQUIREMENTS if requirements is None else tuple(requirements)
    venv = Path(venv).absolute()
    python = venv / "bin" / "python"
    try:
        venv.parent.mkdir(parents=True, exist_ok=True)
        lock = open(venv.parent / f"{venv.name}.lock", "w")
    except OSError as e:
        raise _conversion_error(f"Cannot make the clients' virtualenv at {venv}: {e}. "
                                f"Create it by hand: {setup_hint(venv)}") from e
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if python.is_file():  # another process made it while we waited
            return python
        staging = venv.parent / f"{venv.name}.partial-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        print(f"Making the clients' virtualenv {venv} for the standard TFLite metadata "
              f"({' '.join(requirements)}); once, about half a minute ...", file=sys.stderr, flush=True)
        try:
            cmds = [[sys.executable, "-m", "venv", str(staging)]]
            if requirements:
                cmds.append([str(staging / "bin" / "python"), "-m", "pip", "install", "-q",
                             "--disable-pip-version-check", *requirements])
            for cmd in cmds:
                proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
                if proc.returncode != 0:
                    tail = (proc.stderr or proc.stdout or "").strip()[-800:]
                    raise _conversion_error(
                        f"Making the clients' virtualenv failed ({' '.join(cmd[:4])} ...: exit "
                        f"{proc.returncode}): {tail}\nCreate it by hand: {setup_hint(venv)} "
                        f"(or point ${PYTHON_ENV} at a Python that has them).")
            os.replace(staging, venv)
        except OSError as e:
            raise _conversion_error(f"Cannot make the clients' virtualenv at {venv}: {e}. "
                                    f"Create it by hand: {setup_hint(venv)}") from e
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    print(f"Clients' virtualenv ready: {venv}", file=sys.stderr, flush=True)
    return python


def mediapipe_support(meta: dict) -> str:
    """"supported", or "unsupported: <why and what to bundle instead>" for MediaPipe Tasks
    ImageSegmenter (mediapipe 1.2.3), from the artifact's contract `meta`."""
    c, o = meta["input"], meta["output"]
    if c["channels"] != 3:
        return (f"unsupported: {c['channels']}-channel ({c['channel_order']}) input; MediaPipe Tasks "
                "ImageSegmenter feeds 1- or 3-channel images and refuses the file "
                "('NormalizationOptions: only 1 or 3 mean and std values are supported'); "
                "bundle the 3-channel export")
    if c["dtype"] not in ("uint8", "float32") or o["dtype"] not in ("uint8", "float32"):
        return (f"unsupported: {c['dtype']} input / {o['dtype']} output; MediaPipe Tasks takes uint8 or "
                "float32 image tensors ('Requested one of these types: uint8/float32'); "
                "convert with --tflite-io uint8 (camera bytes) or float")
    if c["channel_order"] != "RGB":
        return (f"unsupported: {c['channel_order']} channel order; MediaPipe Tasks feeds RGB; "
                "export a model trained on RGB")
    if not c["normalization_in_model"] and (len(set(c["mean"])) > 1 or len(set(c["std"])) > 1):
        return (f"unsupported: per-channel normalization (mean {c['mean']}, std {c['std']}); MediaPipe Tasks "
                "applies one mean and std to every channel ('Per-channel image normalization is not "
                "available'); export with --input uint8, which puts the normalization in the graph")
    return SUPPORTED


def input_normalization(meta: dict) -> tuple[list[float], list[float]]:
    """(mean, std) per input channel as the metadata states them: pixel = mean + std * x,
    x the input tensor's (float) value. Raw-pixel inputs (normalization in the graph): 0, 1."""
    c = meta["input"]
    n = int(c["channels"])
    if c["normalization_in_model"]:
        return [0.0] * n, [1.0] * n
    mean, std = [float(v) for v in c["mean"]], [float(v) for v in c["std"]]
    # a 4th (alpha) channel is ignored by the graph: identity normalization
    return mean + [0.0] * (n - len(mean)), std + [1.0] * (n - len(std))


def segmenter_request(meta: dict, spec, config) -> dict:
    """What to write (JSON for the writer subprocess) for the artifact with contract `meta`."""
    from edgematting import __version__

    c, o = meta["input"], meta["output"]
    mean, std = input_normalization(meta)
    h, w = c["height"], c["width"]
    raw = "raw pixel values 0..255 (normalization is in the graph)" if c["normalization_in_model"] \
        else f"normalized (pixel - mean) / std, mean {mean[:3]}, std {std[:3]}"
    return {
        "name": spec.name,
        "version": str(spec.version),
        "description": (f"Portrait segmentation ({spec.architecture}, {meta['precision']}): one "
                        f"{o['meaning']} channel, 1 = person. Exported by edgematting {__version__}; "
                        f"the full contract is the '{_metadata_key()}' metadata entry."),
        "author": config.author or "edgematting",
        "license": config.license or None,
        "input": {
            "name": c["name"],
            "description": f"{c['channel_order']} image {h}x{w}, {c['dtype']}, {raw}.",
            "mean": mean,
            "std": std,
            # the schema has RGB and GRAYSCALE only: RGBA / BGR are "UNKNOWN"
            "color_space": "RGB" if c["channel_order"] == "RGB" and c["channels"] == 3 else "UNKNOWN",
        },
        "output": {
            "name": o["name"],
            "description": (f"{o['meaning']} {h}x{w}x1 in {o['range'][0]:g}..{o['range'][1]:g}, "
                            f"{o['dtype']}; person where above {o['threshold']:g}."),
            "labels": list(LABELS),
        },
    }


def _metadata_key() -> str:
    from edgematting.formats import METADATA_KEY

    return METADATA_KEY


def _run(args: list[str], what: str, timeout: float = TIMEOUT_S) -> subprocess.CompletedProcess:
    py = clients_python()
    try:
        proc = subprocess.run([str(py), "-I", str(Path(__file__).resolve()), *args], capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        raise _conversion_error(f"{what} ({py}) did not finish in {timeout:g} s.") from e
    except OSError as e:
        raise _conversion_error(f"{what}: cannot run {py}: {e}") from e
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout or "").strip()[-1500:]
        raise _conversion_error(f"{what} failed ({py}, exit {proc.returncode}): {tail}")
    return proc


def write_segmenter_metadata(data: bytes, request: dict) -> tuple[bytes, dict]:
    """`data` with standard image segmenter metadata and its label file, written by
    tflite-support in the clients venv. Returns (bytes, the writer's report: its version
    and the populated metadata JSON). ConversionError on any failure."""
    with tempfile.TemporaryDirectory(prefix="edgematting-tflite-md-") as d:
        d = Path(d)
        (d / "in.tflite").write_bytes(data)
        req = dict(request, model=str(d / "in.tflite"), out=str(d / "out.tflite"), report=str(d / "report.json"))
        (d / "request.json").write_text(json.dumps(req))
        _run(["write", str(d / "request.json")], "The TFLite metadata writer (tflite-support)")
        try:
            return (d / "out.tflite").read_bytes(), json.loads((d / "report.json").read_text())
        except (OSError, ValueError) as e:
            raise _conversion_error(f"The TFLite metadata writer left no output: {e}") from e


def read_standard_metadata(path: str | os.PathLike) -> dict:
    """The standard TFLite Model Metadata of a .tflite file, as tflite-support's
    MetadataDisplayer reads it: {"metadata": JSON or None, "associated_files": {name: text}}."""
    proc = _run(["dump", str(Path(path).resolve())], "Reading the TFLite metadata (tflite-support)")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------
# in the clients venv (this file run as a script)
# --------------------------------------------------------------------------------------
def _load_libusb() -> None:
    """tflite-support's native modules need libusb-1.0.so.0; load libusb-package's copy
    (its soname is libusb-1.0.so.0) globally first when the system has none."""
    import ctypes
    import ctypes.util

    if ctypes.util.find_library("usb-1.0"):
        return
    try:
        import libusb_package
    except ImportError:
        return  # the import of tflite_support will say what is missing
    lib = Path(libusb_package.__file__).parent / "libusb-1.0.so"
    if lib.is_file():
        ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)


def _write(request_path: str) -> None:
    from importlib.metadata import version

    _load_libusb()
    from tflite_support import metadata_schema_py_generated as md_fb
    from tflite_support.metadata_writers import image_segmenter, metadata_info, writer_utils

    req = json.loads(Path(request_path).read_text())
    model = bytearray(Path(req["model"]).read_bytes())
    i, o = req["input"], req["output"]
    with tempfile.TemporaryDirectory() as d:
        labels = Path(d) / LABELS_FILE
        labels.write_text("".join(f"{label}\n" for label in o["labels"]))
        writer = image_segmenter.MetadataWriter.create_from_metadata_info(
            model,
            general_md=metadata_info.GeneralMd(name=req["name"], version=req["version"],
                                               description=req["description"], author=req["author"],
                                               licenses=req["license"]),
            input_md=metadata_info.InputImageTensorMd(
                name=i["name"], description=i["description"], norm_mean=i["mean"], norm_std=i["std"],
                color_space_type=getattr(md_fb.ColorSpaceType, i["color_space"]),
                tensor_type=writer_utils.get_input_tensor_types(model)[0]),
            output_md=metadata_info.TensorMd(name=o["name"], description=o["description"],
                                             associated_files=[metadata_info.LabelFileMd(file_path=str(labels))]),
        )
        out = writer.populate()
        populated = json.loads(writer.get_populated_metadata_json())
    Path(req["out"]).write_bytes(bytes(out))
    Path(req["report"]).write_text(json.dumps({"tflite_support": version("tflite-support"), "metadata": populated}))


def _dump(model_path: str) -> None:
    _load_libusb()
    from tflite_support import metadata

    try:
        disp = metadata.MetadataDisplayer.with_model_file(model_path)
    except ValueError as e:  # "The model does not have metadata."
        print(json.dumps({"metadata": None, "associated_files": {}, "error": str(e)}))
        return
    files = {n: disp.get_associated_file_buffer(n).decode("utf-8", "replace")
             for n in disp.get_packed_associated_file_list()}
    print(json.dumps({"metadata": json.loads(disp.get_metadata_json()), "associated_files": files}))


if __name__ == "__main__":
    cmd, arg = sys.argv[1], sys.argv[2]
    {"write": _write, "dump": _dump}[cmd](arg)
