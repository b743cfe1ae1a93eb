"""Peer models for side-by-side benchmarks: Google's MediaPipe selfie segmenter.

The model ships inside the `mediapipe==0.10.21` wheel (Apache-2.0; newer wheels no longer
carry it) at `mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite` (256x256)
with a landscape variant (144x256) beside it. mediapipe 0.10.21 pins numpy<2 and
protobuf<5, which conflict with our stack, so it is never installed: `fetch_mediapipe`
asks pip to *download* the wheel only and extracts the two .tflite files into a cache.

Contract of the model: RGB float input scaled to [0, 1] (no mean/std), NHWC, one
person-probability output of the same size.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import atomic, runners
from .errors import DependencyError, InputError
from .runners.foreign import ForeignOptions

MEDIAPIPE_VERSION = "0.10.21"
MEDIAPIPE_FILES = {
    "square": "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite",
    "landscape": "mediapipe/modules/selfie_segmentation/selfie_segmentation_landscape.tflite",
}
LICENSE_NOTE = (
    "selfie_segmentation*.tflite: extracted from the mediapipe==0.10.21 wheel, "
    "Copyright Google LLC, Apache License 2.0.\n"
)


def cache_dir() -> Path:
    root = os.environ.get("EDGEMATTING_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "edgematting"
    )
    return Path(root) / "peers" / f"mediapipe-{MEDIAPIPE_VERSION}"


MANIFEST = "manifest.json"


def cached_mediapipe(variant: str = "square") -> Path | None:
    """The cached model of `variant`, or None when absent or not the file `fetch_mediapipe`
    wrote (its sha256 is in the cache's manifest, written last): a truncated or replaced
    file is never trusted."""
    import json

    p = cache_dir() / Path(MEDIAPIPE_FILES[variant]).name
    try:
        manifest = json.loads((cache_dir() / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not p.is_file() or not isinstance(manifest, dict) or manifest.get(p.name) != atomic.digest(p):
        return None
    return p


def fetch_mediapipe(dest: Path | None = None, wheel: Path | None = None) -> dict[str, Path]:
    """Download the mediapipe wheel with pip (no install) and extract the selfie models.

    `wheel`: use an already downloaded wheel instead of asking pip.
    """
    dest = Path(dest) if dest else cache_dir()
    with tempfile.TemporaryDirectory(prefix="edgematting-peer-") as tmp:
        if wheel is None:
            cmd = [
                sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                "--python-version", "3.11", "--platform", "manylinux_2_28_x86_64",
                f"mediapipe=={MEDIAPIPE_VERSION}", "-d", tmp,
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            wheels = list(Path(tmp).glob("mediapipe-*.whl"))
            if proc.returncode != 0 or not wheels:
                raise DependencyError(
                    f"Could not download mediapipe=={MEDIAPIPE_VERSION} with pip "
                    f"(exit {proc.returncode}): {proc.stderr.strip()[-400:]}\n"
                    "Download the wheel elsewhere and pass it with --wheel, or pass "
                    "--peer PATH.tflite to `edgematting bench`."
                )
            wheel = wheels[0]
        wheel = Path(wheel)
        if not wheel.exists():
            raise InputError(f"Wheel not found: {wheel}")
        try:
            zf = zipfile.ZipFile(wheel)
        except zipfile.BadZipFile as e:
            raise InputError(f"{wheel} is not a wheel (zip) file: {e}") from e
        out: dict[str, Path] = {}
        with zf:
            names = set(zf.namelist())
            for variant, member in MEDIAPIPE_FILES.items():
                if member not in names:
                    raise DependencyError(f"{wheel.name} does not contain {member}.")
                target = dest / Path(member).name
                atomic.write_bytes(target, zf.read(member))
                out[variant] = target
        atomic.write_bytes(dest / "LICENSE-NOTE.txt", LICENSE_NOTE.encode())
        atomic.write_json(dest / MANIFEST, {p.name: atomic.digest(p) for p in out.values()})
    return out


#: What a sidecar would say of MediaPipe's selfie segmenter: [0, 1] RGB in, probability out.
MEDIAPIPE_CONTRACT = ForeignOptions(input="0,1", output="probability")


@dataclass
class PeerModel:
    """A peer TFLite model with MediaPipe's contract ([0,1] RGB in, probability out)."""

    name: str
    path: Path
    threshold: float = 0.5

    def open(self, num_threads: int = 1):
        """The peer through the same runtime as our artifacts (`edgematting.runners.open`)."""
        return runners.open(self.path, num_threads=num_threads, foreign=MEDIAPIPE_CONTRACT)


def resolve_peer(spec: str | None) -> PeerModel | None:
    """`--peer mediapipe` (from the cache) or `--peer PATH.tflite`; None when unavailable.

    A missing cache is not an error: the benchmark simply has no peer rows (never fake ones).
    """
    if not spec:
        return None
    if spec == "mediapipe":
        p = cached_mediapipe("square")
        return PeerModel("mediapipe-selfie", p) if p else None
    p = Path(spec)
    if p.suffix != ".tflite":
        raise InputError(f"--peer takes 'mediapipe' or a .tflite file, not {spec!r}.")
    if not p.exists():
        raise InputError(f"Peer model not found: {p}")
    return PeerModel(p.stem, p)
