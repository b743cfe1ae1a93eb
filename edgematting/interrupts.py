"""Ctrl-C that is never swallowed.

Python raises KeyboardInterrupt wherever the main thread happens to be when SIGINT arrives.
Inside a ``__del__`` method or a weakref callback -- frequent while TensorFlow, coremltools
and onnxruntime convert a model -- that exception cannot propagate: Python prints
"Exception ignored in: ..." and carries on, so the interrupt is lost and the command
finishes as if nothing happened. `install` (called by the CLI) remembers every SIGINT, and
long-running library code calls `check` between its steps: an interrupt that was swallowed
is raised again there. The "Exception ignored" noise for it is dropped.
"""
from __future__ import annotations

import signal
import sys
import threading

_pending = threading.Event()


def _on_sigint(signum, frame):
    _pending.set()
    raise KeyboardInterrupt


def _unraisable(hook):
    def quiet(unraisable):
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            _pending.set()  # raised again at the next `check`
            return
        hook(unraisable)
    return quiet


def install() -> None:
    """Remember every Ctrl-C (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        return
    _pending.clear()
    signal.signal(signal.SIGINT, _on_sigint)
    if not getattr(sys.unraisablehook, "_edgematting", False):
        sys.unraisablehook = _unraisable(sys.unraisablehook)
        sys.unraisablehook._edgematting = True


def interrupted() -> bool:
    """Was Ctrl-C pressed since `install`?"""
    return _pending.is_set()


def check() -> None:
    """Raise KeyboardInterrupt if Ctrl-C was pressed (even if its first raise was swallowed).

    The interrupt is delivered once: raising it here consumes it, so a caller that catches it
    (the CLI, which exits 130; a test) leaves nothing behind for the next, unrelated work in the
    same process (a pending flag left set once stopped a later conversion in a test worker)."""
    if _pending.is_set():
        _pending.clear()
        raise KeyboardInterrupt
