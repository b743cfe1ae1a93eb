"""Typed errors, each mapped to a distinct CLI exit code.

A user mistake raises one of these with a message that says what to do next; the CLI
prints the message (never a traceback) and exits with `exit_code`:

    0 ok, 1 unexpected error, 2 InputError, 3 DataError, 4 UnsupportedError,
    5 ConversionError, 6 ParityError, 7 DependencyError, 8 UnsupportedOpError,
    9 NonFiniteError, 130 interrupted (Ctrl-C).
"""
from __future__ import annotations


class EdgemattingError(Exception):
    """Base class. `exit_code` is what the CLI exits with."""

    exit_code = 1


class InputError(EdgemattingError):
    """Bad command-line input: missing file, unknown option value, bad size."""

    exit_code = 2


class DataError(EdgemattingError):
    """A dataset folder is empty, or has unpaired, unreadable or mismatched files."""

    exit_code = 3

    def __init__(self, message: str, bad_files: list[tuple[str, str]] | None = None):
        self.bad_files = list(bad_files or [])
        if self.bad_files:
            lines = [f"  {path}: {why}" for path, why in self.bad_files[:50]]
            more = len(self.bad_files) - 50
            if more > 0:
                lines.append(f"  ... and {more} more")
            message = message + "\n" + "\n".join(lines)
        super().__init__(message)


class UnsupportedError(EdgemattingError):
    """A valid option that this target/precision combination does not support."""

    exit_code = 4


class ConversionError(EdgemattingError):
    """A converter failed on a model that passed validation."""

    exit_code = 5


class ParityError(EdgemattingError):
    """A converted artifact does not reproduce the Keras model within tolerance."""

    exit_code = 6

    def __init__(self, message: str, failures: list[str] | None = None, report=None):
        self.failures = list(failures or [])
        self.report = report
        if self.failures:
            message = message + "\n" + "\n".join(f"  - {f}" for f in self.failures)
        super().__init__(message)


class DependencyError(EdgemattingError):
    """An optional package or external file needed for this command is missing."""

    exit_code = 7


class NonFiniteError(EdgemattingError):
    """The model itself produces NaN or Inf (a corrupt weight, a diverged training run):
    not a converter's or a runtime's fault, so it has its own exit code.

    `layer`: the first layer (Keras) or op (TFLite) whose output is non-finite, when known."""

    exit_code = 9

    def __init__(self, message: str, layer: str | None = None):
        self.layer = layer
        super().__init__(message)


class EdgemattingWarning(UserWarning):
    """Something the user should know that does not stop the command (a skipped file, a
    converted photo); the CLI prints it as one ``warning: ...`` line."""


class UnsupportedOpError(ConversionError):
    """The Core ML reference interpreter met an op it does not implement."""

    exit_code = 8

    def __init__(self, op_type: str, where: str = ""):
        self.op_type = op_type
        super().__init__(
            f"The Core ML reference interpreter does not implement op '{op_type}'"
            + (f" (in {where})" if where else "")
            + ". The program was not verified; add the op to "
            "edgematting/runners/mil_interpreter.py or run the check on macOS."
        )
