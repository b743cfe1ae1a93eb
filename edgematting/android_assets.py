"""`edgematting android-assets`: bundle exported TFLite models and their sidecars into the
Android demo's assets, with the `models.json` index the app reads.

The sidecars are validated the way the app's Java core (`ModelMetadata.java`) validates
them (`edgematting.contract.validate_metadata` with NHWC only), so a model the app would
reject is rejected here first, naming the same key; and each file is opened by LiteRT
through `edgematting.runners.open`, which checks that the sidecar describes that very file
(its embedded metadata, tensor dtypes, quantization and shapes): a damaged file, another
model's sidecar or a size that lies is refused before anything is copied. Models that the
new index no longer names (a role's previous file) are removed after it is written.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from . import atomic, runners
from .contract import MetadataError, read_sidecar, sidecar_path, validate_metadata
from .errors import InputError
from .models.registry import ANDROID_ROLES as ROLES
from .models.registry import find_architecture

INDEX_FILE = "models.json"
#: The app feeds NHWC tensors only (LiteRT's layout).
LAYOUTS = ("NHWC",)


def _default_role(architecture: str) -> str | None:
    a = find_architecture(architecture)
    return a.android_role if a else None


def load_sidecar(artifact: str | os.PathLike) -> dict:
    """Read and validate the sidecar of a .tflite artifact for the app (InputError if unusable)."""
    p = Path(artifact)
    if not p.is_file():
        raise InputError(f"Artifact not found: {p}. Export one with `edgematting convert ... --target tflite`.")
    if p.suffix != ".tflite":
        raise InputError(f"{p} is not a .tflite file; the Android demo runs LiteRT (TFLite) models only.")
    sc = sidecar_path(p)
    meta = read_sidecar(p)
    if meta.get("target") != "tflite":
        raise MetadataError("target", f'{sc} describes a {meta.get("target")!r} artifact; the app needs "tflite"')
    try:
        validate_metadata(meta, layouts=LAYOUTS)
    except MetadataError as e:
        raise MetadataError(e.key, f"in {sc}: {str(e).split(': ', 1)[1]}") from None
    # a prior-frame model ("RGB+prior") is taken: the camera screen feeds it the previous
    # frame's alpha, the photo screen zeros (FrameProcessor.prepareFrame / prepare)
    return meta


def android_assets(artifacts, assets_dir: str | os.PathLike, role: str | None = None) -> dict:
    """Copy .tflite artifacts and their sidecars into the app's assets; update `models.json`.

    Each artifact's role is `role` if given (one artifact only), else the architecture's
    `android_role` in the model registry. Everything is validated before
    anything is written; every file is copied atomically and the index is written last, so a
    failure leaves the assets as they were. Returns the index written.
    """
    artifacts = [Path(a) for a in artifacts]
    if not artifacts:
        raise InputError("Give at least one .tflite artifact.")
    if role is not None and role not in ROLES:
        raise InputError(f"Unknown role '{role}'. Valid: {', '.join(ROLES)}.")
    if role is not None and len(artifacts) > 1:
        raise InputError("--role applies to a single artifact; run the command once per role.")
    plan: dict[str, tuple[Path, dict]] = {}
    for a in artifacts:
        meta = load_sidecar(a)
        r = role or _default_role(meta.get("architecture", ""))
        if r is None:
            raise InputError(f"Cannot tell the role of {a} (architecture {meta.get('architecture')!r}); pass --role {'|'.join(ROLES)}.")
        if r in plan:
            raise InputError(f"Two artifacts for the '{r}' role: {plan[r][0]} and {a}. Give one per role.")
        plan[r] = (a, meta)

    for a, _ in plan.values():
        runners.open(a)  # the file itself: loads in LiteRT, and is the one its sidecar describes
    assets = Path(assets_dir)
    index_path = assets / INDEX_FILE
    index = {"format": "edgematting-android-assets", "format_version": 1, "models": {}}
    old_files: set[str] = set()
    if index_path.exists():
        try:
            old = json.loads(index_path.read_text())
            if isinstance(old, dict) and isinstance(old.get("models"), dict):
                index["models"].update(old["models"])
                old_files = {str(e.get(k)) for e in old["models"].values() if isinstance(e, dict)
                             for k in ("file", "metadata") if e.get(k)}
        except (json.JSONDecodeError, UnicodeDecodeError):
            pass  # a broken index is replaced
    for r, (a, meta) in plan.items():
        atomic.copy(a, assets / a.name)
        atomic.copy(sidecar_path(a), sidecar_path(assets / a.name))
        index["models"][r] = {
            "file": a.name,
            "metadata": sidecar_path(assets / a.name).name,
            "architecture": meta.get("architecture", ""),
            "precision": meta.get("precision", ""),
            "input_dtype": meta["input"]["dtype"],
        }
    atomic.write_json(index_path, index)
    kept = {str(e.get(k)) for e in index["models"].values() for k in ("file", "metadata")}
    for name in old_files - kept:  # a role's previous model: the index no longer names it
        stale = assets / Path(name).name
        if stale.is_file():
            stale.unlink()
    return index
