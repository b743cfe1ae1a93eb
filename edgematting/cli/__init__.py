"""`edgematting` command line: a thin layer over the library API.

Each subcommand lives in `edgematting/cli/cmd_<name>.py` and exposes
``register(subparsers) -> argparse.ArgumentParser`` whose parser sets ``func=run``
(``run(args) -> int | None``). Modules must not import TensorFlow at import time.
Errors derived from `EdgemattingError` become one clear message and a distinct exit code
(see `edgematting.errors`); an operating-system error (disk full, permission denied) is
one line too, exit 1; Ctrl-C exits with 130. Warnings (`EdgemattingWarning`) are one
``warning: ...`` line each. TensorFlow's native start-up noise is filtered out unless
``--verbose`` (`edgematting.cli._console.quiet_native_logs`), which also shows tracebacks.
"""
from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
import warnings

from .. import __version__
from ..errors import EdgemattingError, InputError

# Order shown in --help; any other cmd_* module is appended after these.
ORDER = ["quickstart", "train", "evaluate", "calibrate", "predict", "summary", "convert", "verify", "inspect", "bench",
         "peer", "android", "web_demo"]

EPILOG = """\
exit codes: 0 ok, 1 unexpected error, 2 bad input, 3 bad dataset, 4 unsupported
combination, 5 conversion failed, 6 parity check failed, 7 missing dependency,
8 op unknown to the Core ML reference interpreter, 9 the model produces NaN/Inf,
130 interrupted.

Start with `edgematting quickstart`: it trains, evaluates, cuts out, converts and
benchmarks a small model on synthetic data, with no downloads."""


def _command_modules():
    names = [m.name[4:] for m in pkgutil.iter_modules(__path__) if m.name.startswith("cmd_")]
    ordered = [n for n in ORDER if n in names] + sorted(n for n in names if n not in ORDER)
    return [importlib.import_module(f"{__name__}.cmd_{n}") for n in ordered]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgematting",
        description="Train, quantize, convert, verify and benchmark portrait "
        "segmentation (Fast-SCNN) and matting (MattingNet) models for phones.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"edgematting {__version__}")
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's native log lines and full tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in _command_modules():
        p = mod.register(sub)
        if isinstance(p, argparse.ArgumentParser) and "--verbose" not in p._option_string_actions:
            # also after the command (`edgematting predict ... --verbose`); SUPPRESS keeps the
            # top-level value when it is not given here
            p.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                           help="show TensorFlow's native log lines and full tracebacks")
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """`EdgemattingWarning`s as ``warning: ...`` (no file:line); others as Python shows them."""
    from ..errors import EdgemattingWarning

    if issubclass(category, EdgemattingWarning):
        print(f"warning: {message}", file=sys.stderr)
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


_default_showwarning = warnings.showwarning


#: Arguments that name a file or folder: an empty string would silently mean the current folder.
_PATH_ARGS = ("out", "data", "clips", "grid", "calib", "verify_data", "model", "unlabelled", "teacher", "init_weights")


def _check_no_empty_paths(args) -> None:
    for name in _PATH_ARGS:
        if getattr(args, name, None) == "":
            flag = name if name == "model" else "--" + name.replace("_", "-")
            raise InputError(f"{flag} is empty: pass a file or folder (an empty path would mean the current folder).")


def _quiet_libraries() -> None:
    """What the converters' libraries print on every run and a user can do nothing about
    (kept with --verbose): coremltools' per-pass progress bars and its import-time notes
    (untested TensorFlow/scikit-learn versions, no native Core ML off macOS), tf2onnx's
    per-op log, and TFLite's note that a float-input int8 model has no input statistics."""
    import logging

    os.environ.setdefault("TQDM_DISABLE", "1")  # read when tqdm is imported
    for name in ("coremltools", "tf2onnx"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from ._console import quiet_native_logs

    verbose = bool(getattr(args, "verbose", False))
    if verbose:
        os.environ["EDGEMATTING_VERBOSE"] = "1"
    else:
        _quiet_libraries()
    with quiet_native_logs(enabled=not verbose), warnings.catch_warnings():
        warnings.showwarning = _show_warning
        from ..errors import EdgemattingWarning

        warnings.simplefilter("always", EdgemattingWarning)  # every run shows its own warnings
        from .. import interrupts

        try:
            interrupts.install()
            _check_no_empty_paths(args)
            rc = args.func(args)
            interrupts.check()  # an interrupt that a library swallowed still ends the command as one
            return int(rc or 0)
        except EdgemattingError as e:
            print(f"error: {e}", file=sys.stderr)
            return e.exit_code
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
        except OSError as e:  # disk full, permission denied...: one line, not a traceback
            if verbose:
                raise
            print(f"error: {e.strerror or e}" + (f": {e.filename}" if getattr(e, "filename", None) else "")
                  + " (rerun with --verbose for the traceback)", file=sys.stderr)
            return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
