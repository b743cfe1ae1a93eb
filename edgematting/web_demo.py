"""The browser demo's server: serves web_demo/ with chosen artifacts on 127.0.0.1.

The page runs .tflite artifacts with LiteRT.js or MediaPipe Tasks (@mediapipe/tasks-vision) and
.onnx artifacts with onnxruntime-web, and reads the model contract only from each artifact's
sidecar (``<artifact>.json``, located and read by `edgematting.contract`), as the Android app
does. This module is only a static file
server: it serves the page, the runtimes' files from ``web_demo/node_modules`` (so nothing is
fetched from a CDN) under ``/vendor/``, and the chosen artifacts and sidecars under
``/models/`` with an index at ``/models/index.json`` (which carries each sidecar's MediaPipe
verdict, ``clients.mediapipe_tasks``, so the page can name a file MediaPipe takes instead of
one it refuses). Sidecar *contents* are checked by the
page, which shows the problem. `serve` is what `edgematting web-demo` runs; tests start a
`DemoServer` on port 0 with start()/stop().

Every response carries the headers that make the page cross-origin isolated
(`ISOLATION_HEADERS`: COOP same-origin + COEP require-corp, and CORP same-origin on each file
so that the runtimes' scripts, wasm and pthread workers may be loaded under COEP): only then
does the browser give the page SharedArrayBuffer, so LiteRT.js and onnxruntime-web can run
WebAssembly on several threads. Missing npm packages are installed by `ensure_npm_packages`
(``npm ci`` on the absolute path of web_demo/).
"""
from __future__ import annotations

import json
import mimetypes
import re
import shutil
import subprocess
import threading
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from urllib.parse import unquote, urlsplit

from .errors import DependencyError, InputError

WEB_DIR = Path(__file__).resolve().parents[1] / "web_demo"
#: npm packages the page loads, and one file of each that must be there.
VENDOR = {
    "@litertjs/core": "wasm/litert_wasm_internal.wasm",
    "@litertjs/wasm-utils": "dist/index.js",
    "onnxruntime-web": "dist/ort.wasm.min.mjs",
    "@mediapipe/tasks-vision": "wasm/vision_wasm_internal.wasm",
}
#: Targets a browser runtime runs (`edgematting.contract.target_of` names them).
BROWSER_TARGETS = ("tflite", "onnx")
DEFAULT_PORT = 8765
#: The page is served cross-origin isolated (`crossOriginIsolated` true in the page): the
#: browser then allows SharedArrayBuffer, which wasm threads need. CORP on every response lets
#: the page (and its workers, under COEP require-corp) load each of this server's files.
ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def install_command(web_dir: Path | None = None) -> list[str]:
    """The npm command that installs the page's pinned packages (absolute path)."""
    return ["npm", "ci", "--prefix", str(Path(web_dir or WEB_DIR).resolve()), "--no-audit", "--no-fund"]


def install_hint(web_dir: Path | None = None) -> str:
    return " ".join(install_command(web_dir)[:4])


#: Shown in `edgematting web-demo --help` and in messages before a web_dir is known.
INSTALL_HINT = install_hint()


def _check_web_dir(web_dir: Path) -> None:
    if not (web_dir / "index.html").is_file():
        raise DependencyError(
            f"The web demo's files are not at {web_dir}; run `edgematting web-demo` from a source "
            "checkout installed with `pip install -e .`."
        )


def missing_npm_packages(web_dir: Path | None = None) -> list[str]:
    web_dir = Path(web_dir or WEB_DIR)
    return [p for p, f in VENDOR.items() if not (web_dir / "node_modules" / p / f).is_file()]


def check_npm_packages(web_dir: Path | None = None) -> None:
    """DependencyError naming the command to run when the page's npm packages are missing."""
    web_dir = Path(web_dir or WEB_DIR)
    _check_web_dir(web_dir)
    missing = missing_npm_packages(web_dir)
    if missing:
        raise DependencyError(
            f"The web demo's npm packages are not installed ({', '.join(missing)} missing). "
            f"Run `{install_hint(web_dir)}` (Node 20+), then run this command again."
        )


def _npm_reason(output: str) -> str:
    """npm's reason for failing, one line: 'ECODE: first message line' (npm 7-9 write
    "npm ERR! ...", npm 10+ "npm error ...")."""
    code, text = "", ""
    for line in output.splitlines():
        m = re.match(r"npm (?:ERR!|error)\s+(.*\S)", line.strip())
        if not m:
            continue
        k = re.match(r"(code|errno|syscall)\s+(\S+)$", m.group(1))
        if k:
            code = code or (k.group(2) if k.group(1) == "code" else "")
        elif not text:
            text = m.group(1)
    return ": ".join(x for x in (code, text[:300]) if x)


def ensure_npm_packages(web_dir: Path | None = None, echo: Callable[[str], None] = print) -> None:
    """Install the page's pinned npm packages with ``npm ci`` when they are missing.

    One progress line through ``echo``; DependencyError (one line, the absolute command to run
    by hand) when npm is not on PATH or ``npm ci`` fails.
    """
    web_dir = Path(web_dir or WEB_DIR).resolve()
    _check_web_dir(web_dir)
    missing = missing_npm_packages(web_dir)
    if not missing:
        return
    cmd = install_command(web_dir)
    npm = shutil.which("npm")
    if npm is None:
        raise DependencyError(
            f"The web demo's npm packages are not installed ({', '.join(missing)} missing) and npm is not "
            f"on PATH: install Node 20+ with npm, then run `{install_hint(web_dir)}` (or this command again)."
        )
    echo(f"installing the web demo's npm packages (once): {' '.join(cmd)}")
    try:
        r = subprocess.run([npm, *cmd[1:]], capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise DependencyError(f"`{' '.join(cmd)}` did not finish ({e}); run it by hand, then this command again.") from None
    still = missing_npm_packages(web_dir)
    if r.returncode != 0 or still:
        why = _npm_reason(r.stderr + r.stdout) or f"exit {r.returncode}"
        raise DependencyError(
            f"`{' '.join(cmd)}` failed ({why}); fix that and run it by hand, "
            "then this command again."
        )


def _browser_target(p: Path) -> str | None:
    from .contract import target_of

    try:
        t = target_of(p)
    except InputError:
        return None
    return t if t in BROWSER_TARGETS else None


def _artifacts_in(folder: Path) -> list[Path]:
    found = []
    for d in (folder, folder / "export"):
        if d.is_dir():
            found += sorted(p for p in d.iterdir() if p.is_file() and _browser_target(p))
    return found


def resolve_artifacts(paths) -> list[Path]:
    """MODEL_DIR (its export/ folder) or artifact files -> the .tflite/.onnx files to serve.

    InputError for anything missing, not runnable in a browser, or without a readable
    sidecar object beside it.
    """
    from .contract import read_sidecar, target_of

    chosen: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise InputError(f"Not found: {p}. Give a model directory or .tflite/.onnx artifacts from `edgematting convert`.")
        try:
            target = target_of(p)
        except InputError:
            target = None
        if target == "coreml":
            raise InputError(f"{p}: Core ML models do not run in a browser; give a .tflite or .onnx artifact.")
        if p.is_dir():
            found = _artifacts_in(p)
            if not found:
                raise InputError(
                    f"No .tflite or .onnx artifacts in {p} or {p / 'export'}. Export some with "
                    f"`edgematting convert {p} --target tflite` (or onnx)."
                )
            chosen += found
        elif target in BROWSER_TARGETS:
            chosen.append(p)
        else:
            raise InputError(f"{p} is not a .tflite or .onnx artifact; the browser runs those two formats.")
    names: dict[str, Path] = {}
    for a in chosen:
        read_sidecar(a)  # present and a JSON object; its contents are checked by the page
        if a.name in names and names[a.name].resolve() != a.resolve():
            raise InputError(f"Two artifacts named {a.name} ({names[a.name]} and {a}); give one of them.")
        names[a.name] = a
    return list(names.values())


def model_index(artifacts: list[Path]) -> dict:
    from .contract import read_sidecar, sidecar_path

    def dtype(meta, key):  # the page names a runnable variant of a refused model from these
        part = meta.get(key)
        return part.get("dtype") if isinstance(part, dict) else None

    models = []
    for a in artifacts:
        meta = read_sidecar(a)
        models.append({
            "name": a.name,
            "url": f"models/{a.name}",
            "sidecar": f"models/{sidecar_path(a).name}",
            "kind": _browser_target(a),
            "architecture": meta.get("architecture"),
            "precision": meta.get("precision"),
            "input_dtype": dtype(meta, "input"),
            "output_dtype": dtype(meta, "output"),
            # the converter's verdict for MediaPipe Tasks: "supported" or "unsupported: <why>"
            "mediapipe": clients.get("mediapipe_tasks") if isinstance(clients := meta.get("clients"), dict) else None,
            "bytes": a.stat().st_size,
        })
    return {"format": "edgematting-web-models", "format_version": 1, "models": models}


#: Browser figures beside a model's bench report (MODEL_DIR/bench/), written by the Chromium
#: test and web_demo/test/latency.py: one row per artifact and thread count, each with the
#: page's first call and steady-state median / p90 (ms), cross-origin isolation, and the Python
#: runtime's figure when it was measured.
BROWSER_BENCH_FILE = "browser.json"
BROWSER_BENCH_FORMAT = "edgematting-browser-bench"


def write_browser_bench(rows: list[dict], path: Path, source: str, extra: dict | None = None) -> Path:
    """Write browser timing rows as JSON (atomically) for `edgematting bench` and people to read."""
    from datetime import datetime, timezone

    from . import atomic

    doc = {"format": BROWSER_BENCH_FORMAT, "format_version": 1, "source": source,
           "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), **(extra or {}), "rows": rows}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic.write_json(path, doc)


class _Handler(SimpleHTTPRequestHandler):
    server_version = "edgematting-web-demo"
    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".wasm": "application/wasm",
                      ".mjs": "text/javascript", ".js": "text/javascript", ".json": "application/json",
                      ".tflite": "application/octet-stream", ".onnx": "application/octet-stream"}

    def log_message(self, fmt, *args):  # quiet unless asked
        if self.server.verbose:
            super().log_message(fmt, *args)

    def end_headers(self):
        self.send_header("Cache-Control", "no-store")
        for k, v in ISOLATION_HEADERS.items():
            self.send_header(k, v)
        super().end_headers()

    def _file_for(self, url_path: str) -> Path | None:
        parts = [p for p in unquote(url_path).split("/") if p]
        if any(p in ("..", ".") or "\\" in p for p in parts):
            return None
        web = self.server.web_dir
        if not parts:
            return web / "index.html"
        if parts[0] == "models":
            if len(parts) == 2 and parts[1] == "index.json":
                return None  # generated
            if len(parts) == 2:
                return self.server.files.get(parts[1])
            return None
        if parts[0] == "vendor":
            pkg_parts = parts[1:3] if len(parts) > 1 and parts[1].startswith("@") else parts[1:2]
            if "/".join(pkg_parts) not in VENDOR:
                return None
            return web / "node_modules" / Path(*parts[1:])
        if parts[0] in ("node_modules", "test") or parts[0].startswith("."):
            return None
        return web / Path(*parts)

    def do_GET(self):  # noqa: N802
        path = urlsplit(self.path).path
        if path == "/models/index.json":
            body = json.dumps(self.server.index).encode()
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        f = self._file_for(path)
        if f is None or not f.is_file():
            self.send_error(HTTPStatus.NOT_FOUND, "not found")
            return
        ctype = self.extensions_map.get(f.suffix) or mimetypes.guess_type(f.name)[0] or "application/octet-stream"
        data = f.read_bytes()
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_HEAD(self):  # noqa: N802
        self.send_error(HTTPStatus.METHOD_NOT_ALLOWED)


class DemoServer(ThreadingHTTPServer):
    """The demo's HTTP server on 127.0.0.1; `url` once bound. Usable in tests via start()/stop()."""

    daemon_threads = True

    def __init__(self, artifacts, port: int = DEFAULT_PORT, web_dir: Path | None = None, verbose: bool = False):
        self.web_dir = Path(web_dir or WEB_DIR)
        self.verbose = verbose
        arts = [Path(a) for a in artifacts]
        self.files: dict[str, Path] = {}
        from .contract import sidecar_path

        for a in arts:
            self.files[a.name] = a
            self.files[sidecar_path(a).name] = sidecar_path(a)
        self.index = model_index(arts)
        try:
            super().__init__(("127.0.0.1", int(port)), _Handler)
        except OSError as e:
            raise InputError(f"Cannot listen on 127.0.0.1:{port} ({e.strerror}); pick another with --port (0 = any free port).") from None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"

    def start(self) -> "DemoServer":
        self._thread = threading.Thread(target=self.serve_forever, name="web-demo", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def serve(paths, port: int = DEFAULT_PORT, verbose: bool = False, web_dir: Path | None = None,
          echo: Callable[[str], None] = print) -> None:
    """Serve the demo with the artifacts PATHS name (model dirs or files) until Ctrl-C.

    Checks the port, then the artifacts (`resolve_artifacts`), then the npm packages, which
    it installs when they are missing (`ensure_npm_packages`); ``echo`` gets one line per
    artifact and the URL to open.
    """
    if not 0 <= port <= 65535:
        raise InputError(f"--port must be 0..65535, got {port}.")
    artifacts = resolve_artifacts(paths)
    ensure_npm_packages(web_dir, echo=echo)
    server = DemoServer(artifacts, port=port, web_dir=web_dir, verbose=verbose)
    for a in artifacts:
        echo(f"serving {a}")
    echo(f"open {server.url} in a browser (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        echo("stopped")
    finally:
        server.server_close()
