"""Writing files so that a crash or a full disk never leaves one half-written."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence


def write_atomically(path: str, text: str) -> None:
    """Replace path with text in one rename (keeping the file's mode), making folders."""
    write_all([(path, text)])


def write_all(files: Sequence[tuple[str, str]]) -> None:
    """Write every (path, text) or none: each is staged beside its target, and only once all
    are staged are they renamed into place. On failure, what was staged or made is removed."""
    staged: list[tuple[str, str]] = []
    made: list[str] = []
    path = ""
    try:
        for path, text in files:
            made += _make_folders(os.path.dirname(path) or ".")
            staged.append((_stage(path, text), path))
    except BaseException as error:
        for temporary, _ in staged:
            os.unlink(temporary)
        for folder in reversed(made):
            os.rmdir(folder)
        if isinstance(error, OSError) and error.filename is None:  # a full disk, say
            raise OSError(error.errno, error.strerror, path) from error
        raise
    for temporary, path in staged:
        os.replace(temporary, path)


def _make_folders(folder: str) -> list[str]:
    """Make folder and its missing parents; return those it made, outermost first."""
    missing = []
    while not os.path.isdir(folder):
        missing.append(folder)
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    for each in reversed(missing):
        os.mkdir(each)
    return list(reversed(missing))


def _stage(path: str, text: str) -> str:
    """A temporary file beside path holding text, with path's mode (or the umask's)."""
    folder = os.path.dirname(path) or "."
    try:
        mode: int | None = os.stat(path).st_mode
    except FileNotFoundError:
        mode = None
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".reconciler-")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            out.write(text)
        os.chmod(temporary, mode if mode is not None else 0o666 & ~_umask())
    except BaseException:
        os.unlink(temporary)
        raise
    return temporary


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def check_writable(root: str, paths: Sequence[str], *, force: bool) -> None:
    """Before anything is written: refuse paths (relative to root) that exist, unless force,
    and any whose folder on the way is a link out of root."""
    from reconciler.diagnostics import ReconcilerError

    existing = [path for path in paths if os.path.lexists(os.path.join(root, path))]
    if existing and not force:
        raise ReconcilerError(f"{', '.join(existing)} already exist: nothing written "
                              "(--force overwrites them)")
    real_root = os.path.realpath(root)
    for path in paths:
        folder = os.path.dirname(os.path.join(root, path))
        while not os.path.lexists(folder) and len(folder) > len(root):
            folder = os.path.dirname(folder)  # what will be made cannot be a link yet
        if os.path.commonpath([real_root, os.path.realpath(folder)]) != real_root:
            raise ReconcilerError(f"{path}: a folder on the way is a link out of {root}: "
                                  "nothing written")


def put_in_place(made: str, target: str, *, replace: bool) -> None:
    """Rename made (a file or a folder, beside target) to target; with replace, what was
    there goes only once made is in place, so a failure leaves one or the other whole."""
    import shutil

    if not os.path.lexists(target):
        os.rename(made, target)
        return
    if not replace:
        raise FileExistsError(target)
    if os.path.isfile(made) and not os.path.isdir(target):
        os.replace(made, target)  # atomic for a file over a file
        return
    aside = tempfile.mkdtemp(prefix=".reconciler-replaced-",
                             dir=os.path.dirname(os.path.abspath(target)))
    try:
        os.rename(target, os.path.join(aside, "old"))
        os.rename(made, target)
    finally:
        shutil.rmtree(aside, ignore_errors=True)
