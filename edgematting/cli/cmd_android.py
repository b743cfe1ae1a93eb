"""`edgematting android-assets`: put exported TFLite models and their metadata into the demo app."""
from __future__ import annotations

import argparse

from ..models.registry import ANDROID_ROLES, REGISTRY

DEFAULT_ASSETS = "android_demo/app/src/main/assets"


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "android-assets",
        help="copy .tflite artifacts + metadata into the Android demo's assets",
        description="Copy each .tflite artifact and its metadata sidecar (<file>.json, written by "
        "`edgematting convert`) into the Android demo's assets, and record which model plays which "
        "role in models.json: camera (live background blur/replacement, Fast-SCNN full-int8) or "
        "photo (still cut-out, MattingNet). Sidecars are validated first; nothing is written if "
        "any artifact is unusable.",
    )
    p.add_argument("artifacts", nargs="+", metavar="ARTIFACT", help=".tflite file(s) from `edgematting convert`")
    p.add_argument("--assets", default=DEFAULT_ASSETS, help=f"the app's assets folder (default: {DEFAULT_ASSETS})")
    p.add_argument("--role", choices=ANDROID_ROLES, default=None,
                   help="role of the (single) artifact; default: from its architecture ("
                   + ", ".join(f"{a.name} -> {a.android_role}" for a in REGISTRY.values()) + ")")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from ..android_assets import android_assets

    index = android_assets(args.artifacts, args.assets, role=args.role)
    for role, entry in sorted(index["models"].items()):
        print(f"{role:7s} {entry['file']}  ({entry.get('architecture', '?')}, {entry.get('precision', '?')}, "
              f"input {entry.get('input_dtype', '?')})")
    print(f"wrote {args.assets}/models.json")
    cam = index["models"].get("camera")
    if cam and not str(cam.get("precision", "")).startswith("int8"):
        print(f"note: the camera model is {cam.get('precision')!r}; the live view is meant for a full-int8 Fast-SCNN")
    missing = [r for r in ("camera", "photo") if r not in index["models"]]
    if missing:
        print(f"note: no model yet for: {', '.join(missing)} (that screen will say so in the app)")
    print("next: open android_demo/ in Android Studio and run the 'app' configuration")
    return 0
