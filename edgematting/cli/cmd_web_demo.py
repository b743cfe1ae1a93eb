"""`edgematting web-demo`: serve the browser demo (web_demo/) with chosen artifacts on 127.0.0.1.

The server, and the choice of artifacts, live in `edgematting.web_demo`; this is its command line.
"""
from __future__ import annotations

import argparse

from ..web_demo import DEFAULT_PORT, INSTALL_HINT, serve


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "web-demo",
        help="try exported models in a browser: cut-out, camera, comic effect",
        description="Serve the browser demo (web_demo/) on 127.0.0.1 with the given artifacts: open or "
        "drop a photo or use the camera, cut the person out over transparent / colour / blur / image, "
        "apply the comic effect, download the PNG. .tflite runs on LiteRT.js or MediaPipe Tasks, .onnx on onnxruntime-web "
        "(WebAssembly, on several threads: the page is served cross-origin isolated); the contract comes from "
        "each artifact's sidecar. The page's pinned npm packages are installed on first use with "
        f"`{INSTALL_HINT}` (needs Node 20+ with npm).",
    )
    p.add_argument("artifacts", nargs="+", metavar="MODEL_DIR_OR_ARTIFACTS",
                   help="a model directory (its export/ artifacts are served) or .tflite/.onnx files")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port on 127.0.0.1 (default {DEFAULT_PORT}; 0 = any free)")
    p.add_argument("--verbose", action="store_true", help="log every request")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    serve(args.artifacts, port=args.port, verbose=args.verbose)
    return 0
