"""What the command line prints around the commands: quiet native logs, one-line warnings,
tables that stay readable in a log file, shell-quoted "next:" hints.

* TensorFlow's C++ start-up noise (oneDNN, CUDA, absl lines) is written straight to file
  descriptor 2 by native code, before and after ``import tensorflow``; no environment
  variable silences all of it. `quiet_native_logs` (used by `edgematting.cli.main` unless
  ``--verbose``) points fd 2 at a pipe whose reader drops those lines and forwards
  everything else, while Python's own ``sys.stderr`` keeps writing to the terminal (so
  progress bars still see a TTY).
* `show_table` (from `edgematting.console`) prints a rich table as boxes on a wide enough
  terminal, and as a plain Markdown table when stdout is not a terminal or is too narrow.
* `next_hint` builds ``next: edgematting ...`` with every argument shell-quoted.
"""
from __future__ import annotations

import argparse
import io
import os
import re
import shlex
import sys
import threading

from ..console import show_table, table_markdown  # noqa: F401 - the commands print tables

#: Native log lines that are noise for a user: absl's pre-init banner, and absl-format
#: lines (``I0000 00:00:1796180887.757298    9101 port.cc:153] ...``) at info/warning level,
#: or errors about a missing CUDA driver on a CPU-only machine.
_ABSL_LINE = re.compile(r"^([IWEF])\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [\w./-]+:\d+\] ?(.*)$")
_NOISE = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",)


#: Native lines by prefix: LiteRT announces its default CPU delegate on every interpreter; the
#: TFLite calibrator prints its settings on every full-integer conversion.
_NOISE_PREFIXES = ("INFO: Created TensorFlow Lite XNNPACK delegate", "fully_quantize: ")


def is_noise(line: str) -> bool:
    s = line.rstrip("\r\n")
    if s in _NOISE or s.startswith(_NOISE_PREFIXES):
        return True
    m = _ABSL_LINE.match(s)
    if not m:
        return False
    level, text = m.groups()
    return level in "IW" or "cuda" in text.lower() or "cuInit" in text


class quiet_native_logs:
    """Context manager: filter native noise out of fd 2 (see the module docstring).

    Does nothing when Python's stderr is not the process's own (a test capturing it)."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled and sys.stderr is sys.__stderr__ and os.environ.get("EDGEMATTING_RAW_STDERR") != "1"
        self._saved = None

    def __enter__(self):
        if not self.enabled:
            return self
        try:
            sys.stderr.flush()
            self._saved = os.dup(2)
            r, w = os.pipe()
            os.dup2(w, 2)
            os.close(w)
        except OSError:
            self._saved = None
            return self
        self._old_stderr = sys.stderr
        # Python keeps writing to the real stderr (a TTY stays a TTY for rich).
        sys.stderr = io.TextIOWrapper(io.FileIO(os.dup(self._saved), "w"), write_through=True,
                                      encoding=self._old_stderr.encoding, errors="backslashreplace")
        self._thread = threading.Thread(target=self._pump, args=(r, self._saved), daemon=True)
        self._thread.start()
        return self

    @staticmethod
    def _pump(r: int, out: int) -> None:
        buf = b""
        with os.fdopen(r, "rb", buffering=0) as f:
            while True:
                chunk = f.read(65536)
                if not chunk:
                    break
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for ln in lines:
                    if not is_noise(ln.decode("utf-8", "replace")):
                        os.write(out, ln + b"\n")
        if buf and not is_noise(buf.decode("utf-8", "replace")):
            os.write(out, buf)

    def __exit__(self, *exc):
        if self._saved is None:
            return False
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(self._saved, 2)  # closes the pipe's write end: the reader sees EOF
        self._thread.join(timeout=2.0)
        try:
            sys.stderr.close()
        except OSError:
            pass
        sys.stderr = self._old_stderr
        os.close(self._saved)
        self._saved = None
        return False


# -- hints -----------------------------------------------------------------------------
def next_hint(*argv) -> str:
    """``next: edgematting ARG...`` with each argument shell-quoted (paths with spaces)."""
    return "next: " + " ".join(shlex.quote(str(a)) for a in argv)


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """`--help` with each option's default, said once: not for an option whose help already
    says its default, nor a default of None or False (a flag, or "not set"), which read as
    noise ("(default: None)")."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default in (None, False, argparse.SUPPRESS) or "default" in text.lower():
            return text
        return super()._get_help_string(action)
