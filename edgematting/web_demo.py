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

`browser_timings` drives the page in headless Chromium (web_demo/test/drive.mjs on
playwright-core) and returns its own first-call and steady-state figures per artifact and
thread count: the "browser" column of ``edgematting bench --browser`` (`bench_measurer`, after
`check_browser_tools`) and of web_demo/test/latency.py.
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

from .bench.browser import BROWSER_BENCH_FILE, BROWSER_BENCH_FORMAT, write_browser_bench  # noqa: F401
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


# ------------------------------------------------------------------ browser figures
# The file format (BROWSER_BENCH_FILE, BROWSER_BENCH_FORMAT, write_browser_bench) lives with the
# bench that reads it, `edgematting.bench.browser`; imported above for the Chromium test and
# web_demo/test/latency.py.

#: The photo the figures are measured on (the page times inference on its model input); the
#: page is driven by web_demo/test/drive.mjs (playwright-core, a devDependency in package.json).
BENCH_PHOTO = WEB_DIR / "test" / "fixtures" / "portrait.png"
DEFAULT_CHROMIUM = "/usr/bin/chromium"


def find_chromium(chromium: str | None = None) -> str:
    """The Chromium to drive: `chromium`, else $EDGEMATTING_CHROMIUM, else /usr/bin/chromium
    or `chromium` / `chromium-browser` on PATH; DependencyError (one line, the fix) when none is."""
    import os

    asked = chromium or os.environ.get("EDGEMATTING_CHROMIUM")
    if asked:
        if Path(asked).is_file():
            return str(asked)
        raise DependencyError(f"Chromium not found at {asked} (from {'--chromium' if chromium else '$EDGEMATTING_CHROMIUM'}): "
                              "give the path of a chromium executable (Debian: `apt-get install chromium`).")
    for c in (DEFAULT_CHROMIUM, shutil.which("chromium"), shutil.which("chromium-browser")):
        if c and Path(c).is_file():
            return str(c)
    raise DependencyError(f"Chromium not found (not at {DEFAULT_CHROMIUM}, not on PATH): install it (Debian: "
                          "`apt-get install chromium`) or set EDGEMATTING_CHROMIUM=/path/to/chromium.")


def check_browser_tools(chromium: str | None = None, web_dir: Path | None = None) -> str:
    """Before measuring anything in a browser: Node on PATH, the page's npm packages and
    playwright-core installed, a Chromium. Returns the Chromium path; DependencyError naming
    the fix otherwise (nothing is installed here: `bench --browser` measures, it does not set up)."""
    web_dir = Path(web_dir or WEB_DIR)
    _check_web_dir(web_dir)
    if shutil.which("node") is None:
        raise DependencyError("node is not on PATH: the browser figures drive Chromium from Node; install Node 20+ "
                              f"with npm, then run `{install_hint(web_dir)}`.")
    missing = missing_npm_packages(web_dir)
    if not (web_dir / "node_modules" / "playwright-core" / "package.json").is_file():
        missing.append("playwright-core")
    if missing:
        raise DependencyError(f"The web demo's npm packages are not installed ({', '.join(missing)} missing): "
                              f"run `{install_hint(web_dir)}` (it installs playwright-core too), then this command again.")
    if not (web_dir / "test" / "drive.mjs").is_file():
        raise DependencyError(f"The page driver {web_dir / 'test' / 'drive.mjs'} is missing: run from a source checkout.")
    return find_chromium(chromium)


def browser_timings(artifacts, threads: list[int], chromium: str | None = None, runtime: str | None = None,
                    photo: Path | None = None, web_dir: Path | None = None, timeout_s: float = 900) -> dict:
    """The page's own figures for each artifact at each thread count, in headless Chromium.

    One cross-origin isolated page per thread count (``?threads=N``; ``runtime`` 'mediapipe'
    runs .tflite files on MediaPipe Tasks), the photo opened once, then each artifact chosen in
    turn; the page times its first call and the steady state (median, p90 of 20 runs after 3
    warm-ups) on the photo's model input. Returns ``{(name, N): timing}``, where timing is the
    page's ``edgemattingDemo.timing()`` (first, median, p90, runs, warmups, threads, backend,
    runtime, crossOriginIsolated) or ``{"error": why}`` for an artifact the page refused
    (its message) or a run that failed. DependencyError when a tool is missing."""
    import tempfile

    web_dir = Path(web_dir or WEB_DIR)
    exe = check_browser_tools(chromium, web_dir)
    arts = [Path(a) for a in artifacts]
    photo = Path(photo or BENCH_PHOTO)
    out: dict = {}
    for n in threads:
        if not arts:
            break
        chosen = f"&runtime={runtime}" if runtime else ""
        steps = [{"do": "goto", "url": "{url}" + f"?model={arts[0].name}&threads={n}{chosen}"},
                 {"do": "wait", "states": ["ready", "error"], "timeout_ms": 120000},
                 {"do": "eval", "expr": "document.body.dataset.state", "save": "load.state"},
                 {"do": "text", "selector": "#message", "save": "load.message"},
                 {"do": "eval", "expr": "crossOriginIsolated", "save": "isolated"},
                 {"do": "files", "selector": "#photo-input", "paths": [str(photo)]},
                 {"do": "wait", "states": ["done", "error"], "timeout_ms": 300000}]
        for i, a in enumerate(arts):
            if i:
                steps += [{"do": "select", "selector": "#model", "value": a.name},
                          {"do": "wait", "states": ["done", "error"], "timeout_ms": 300000}]
            steps += [{"do": "eval", "expr": "document.body.dataset.state", "save": f"{a.name}.state"},
                      {"do": "text", "selector": "#message", "save": f"{a.name}.message"},
                      {"do": "eval", "expr": "window.edgemattingDemo.timing()", "save": a.name}]
        srv = DemoServer(arts, port=0, web_dir=web_dir).start()
        try:
            for s in steps:
                if s["do"] == "goto":
                    s["url"] = s["url"].replace("{url}", srv.url)
            with tempfile.TemporaryDirectory() as tmp:
                plan, res_path = Path(tmp) / "plan.json", Path(tmp) / "out.json"
                plan.write_text(json.dumps({"executable": exe, "steps": steps}))
                try:
                    r = subprocess.run(["node", str(web_dir / "test" / "drive.mjs"), str(plan), str(res_path)],
                                capture_output=True, text=True, timeout=timeout_s)
                    res = json.loads(res_path.read_text()) if res_path.is_file() else \
                        {"error": f"the page driver wrote nothing (exit {r.returncode}): "
                                  + " ".join((r.stdout + r.stderr).split())[-400:]}
                except subprocess.TimeoutExpired:
                    res = {"error": f"the page driver took over {timeout_s:.0f} s"}
        finally:
            srv.stop()
        saved = res.get("saved", {})
        if "error" in res and not saved.get("isolated"):
            why = f"Chromium run failed: {res['error']}" + (f" (page: {res['message']})" if res.get("message") else "")
            out.update({(a.name, n): {"error": why[:500]} for a in arts})
            continue
        if saved.get("isolated") is not True:
            out.update({(a.name, n): {"error": "the page is not cross-origin isolated: wasm threads are off"} for a in arts})
            continue
        for i, a in enumerate(arts):
            t = saved.get(a.name)
            if i == 0 and saved.get("load.state") == "error":
                out[(a.name, n)] = {"error": saved.get("load.message") or "the page could not load it"}
            elif saved.get(f"{a.name}.state") == "done" and isinstance(t, dict) and t.get("median") is not None:
                out[(a.name, n)] = t
            elif f"{a.name}.state" in saved:
                out[(a.name, n)] = {"error": saved.get(f"{a.name}.message") or "the page measured nothing"}
            else:  # the plan stopped before this artifact
                out[(a.name, n)] = {"error": f"Chromium run failed: {res.get('error', 'stopped early')}"[:500]}
    return out


def browser_figure(t: dict) -> dict:
    """A page timing (``timing()``) as the bench's figure: ms rounded, names as in browser.json."""
    return {"first_ms": round(t["first"], 3) if t.get("first") is not None else None,
            "median_ms": round(t["median"], 3), "p90_ms": round(t["p90"], 3),
            "runs": t.get("runs"), "warmups": t.get("warmups"), "threads": t.get("threads"),
            "backend": t.get("backend"), "runtime": t.get("runtime"),
            "cross_origin_isolated": t.get("crossOriginIsolated")}


def bench_measurer(chromium: str | None = None):
    """The `bench.run` hook of ``bench --browser``: (artifacts, threads) -> ({(name, N): figure},
    {name: why it has none}). Checks the tools first (DependencyError)."""
    exe = check_browser_tools(chromium)

    def measure(artifacts, threads):
        figures, reasons = {}, {}
        for key, t in browser_timings(artifacts, threads, exe).items():
            if "error" in t:
                reasons.setdefault(key[0], " ".join(str(t["error"]).split())[:300])
            else:
                figures[key] = browser_figure(t)
        return figures, reasons

    return measure


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
