"""Writing files so that nobody ever sees half of one.

Every file and folder edgematting publishes goes through here: it is written under a
hidden temporary name in the destination folder (same filesystem), given the usual
umask-based permissions (``mkstemp``/``mkdtemp`` create 0600/0700), and then moved over
the destination with ``os.replace``. On any failure, Ctrl-C included, the temporary is
removed and the destination is left as it was.

    write_bytes(path, data)          write_json(path, obj)
    write_with(path, fn)             fn(tmp_path) writes the file (model.save, np.savez, ...)
    copy(src, dst)
    publish_dir(staged_dir, dst)     replace a folder (an .mlpackage) atomically
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def publish_mode(path: str | os.PathLike, directory: bool | None = None) -> None:
    """Give a file or folder made by mkstemp/mkdtemp the usual umask-based mode
    (recursively for a folder)."""
    p = Path(path)
    if directory is None:
        directory = p.is_dir()
    if directory:
        for sub in p.rglob("*"):
            os.chmod(sub, (0o777 if sub.is_dir() else 0o666) & ~_umask())
    os.chmod(p, (0o777 if directory else 0o666) & ~_umask())


def digest(path: str | os.PathLike, limit: int | None = None) -> str:
    """sha256 of a file, or of a folder's files in sorted order (each read up to `limit`
    bytes when given): what a sidecar records to tell that its artifact is unchanged."""
    import hashlib

    p = Path(path)
    h = hashlib.sha256()
    for f in (sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]):
        with open(f, "rb") as fh:
            if limit is not None:
                h.update(fh.read(limit))
            else:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()


def fsync(path: str | os.PathLike) -> None:
    """Flush a file (or a folder's entries) to disk; a filesystem that cannot is let be."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_with(path: str | os.PathLike, fn: Callable[[str], Any], suffix: str = ".part") -> Path:
    """Call ``fn(tmp)`` to write a temporary file beside `path`, then move it over `path`.

    `suffix` is the temporary's suffix (some writers, e.g. Keras, pick the format from it).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        fn(tmp)
        publish_mode(tmp, directory=False)
        fsync(tmp)  # on disk before the rename makes it visible: a crash never leaves a short file
        os.replace(tmp, path)
        fsync(path.parent)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` so that a reader never sees a half-written file."""
    return write_with(path, lambda tmp: Path(tmp).write_bytes(data))


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def copy(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Copy the bytes of `src` to `dst` atomically (permissions from the umask)."""
    return write_with(dst, lambda tmp: shutil.copyfile(src, tmp))


def publish_dir(staged: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Move the folder `staged` over `dst` (a file or folder, or nothing yet).

    The old `dst` is moved aside first and put back if the move fails, then removed.
    """
    staged, dst = Path(staged), Path(dst)
    publish_mode(staged, directory=True)
    old = None
    if dst.exists():
        old = dst.with_name(f".{dst.name}.old-{os.getpid()}")
        os.replace(dst, old)
    try:
        os.replace(staged, dst)
    except BaseException:
        if old is not None:
            os.replace(old, dst)
        raise
    if old is not None:
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)
    return dst


def publish(staged: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Move a staged file or folder over `dst` (same filesystem), with the usual mode."""
    staged, dst = Path(staged), Path(dst)
    if staged.is_dir():
        return publish_dir(staged, dst)
    publish_mode(staged, directory=False)
    if dst.is_dir():
        shutil.rmtree(dst)
    os.replace(staged, dst)
    return dst


def check_output_dir(path: str | os.PathLike, flag: str = "--out") -> Path:
    """InputError (one line, before any work) unless `path` is, or can be made, a folder
    this process can write to. Creates nothing: the nearest existing folder is probed with
    a temporary file (so it also works as root, where permission bits do not tell)."""
    from .errors import InputError

    p = Path(path)
    if p.exists() and not p.is_dir():
        raise InputError(f"{flag} {p} is an existing file, not a folder: pass a folder (it is created if missing).")
    probe = p
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise InputError(f"{flag} {p} cannot be created: {probe} is a file, not a folder.")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".edgematting-write-test-", dir=probe)
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        where = "" if probe == p else f" (its nearest existing folder {probe} is not writable)"
        raise InputError(f"{flag} {p} is not writable{where}: {e.strerror or e}. Pick a folder you can "
                         "write to.") from None
    return p


def check_output_file(path: str | os.PathLike, flag: str = "--out") -> Path:
    """InputError unless a file can be written at `path` (its folder writable, and `path`
    not a folder)."""
    from .errors import InputError

    p = Path(path)
    if p.is_dir():
        raise InputError(f"{flag} {p} is a folder; pass a file name, e.g. {p / 'report.json'}.")
    check_output_dir(p.parent if str(p.parent) else Path("."), flag=f"{flag} {p}: folder")
    return p
