"""The one path by which neurocomp writes an output file.

Every file the project writes (Programs, recordings, checkpoints, check reports, learned
Programs, snapshots, saved models) goes through :func:`atomic_write`:

* the data go to a temporary file in the target's own directory (so the final rename
  stays on one file system), are flushed and fsynced, and the temporary file is renamed
  over the target: a reader, or a crash, sees the old file or the new one, never half of
  either;
* a symlink is written through: the file it points to is replaced and the link stays;
* an existing directory, device, FIFO or socket is refused with :class:`OutputError`
  (replacing ``/dev/null`` with a regular file, or blocking forever on a FIFO, is never
  what a user meant);
* the temporary file is removed on every failure, including ``KeyboardInterrupt``. Only a
  process killed outright (SIGKILL) can leave one, named ``.<name>.<random>.tmp``, beside
  the untouched target. (The file is created 0600 and given the target's mode, or the
  usual 0666 & ~umask, just before the rename.)
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from .errors import NeurocompError, Problem


class OutputError(NeurocompError, OSError):
    """An output file cannot be written where it was asked for."""

    kind = "output"


_NOT_A_FILE = {
    stat.S_ISDIR: "a directory",
    stat.S_ISCHR: "a character device",
    stat.S_ISBLK: "a block device",
    stat.S_ISFIFO: "a FIFO",
    stat.S_ISSOCK: "a socket",
}


def output_target(path: str | os.PathLike) -> Path:
    """The regular file that writing ``path`` would replace: symlinks resolved, the
    directory checked to exist. Raises :class:`OutputError` naming the path otherwise."""
    given = Path(path)
    target = Path(os.path.realpath(given))
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise OutputError([Problem(str(given), f"cannot write here ({exc.strerror or exc})")]) from None
    if mode is not None:
        for test, what in _NOT_A_FILE.items():
            if test(mode):
                raise OutputError([Problem(str(given), f"is {what}; refusing to replace it with a file")])
    parent = target.parent
    if not parent.is_dir():
        raise OutputError([Problem(str(given), f"directory {str(parent)!r} does not exist")])
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError([Problem(str(given), f"directory {str(parent)!r} is not writable")])
    return target


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """``with atomic_open(path) as f: f.write(...)``: the file appears at ``path`` complete
    when the block ends without an error, and nothing changes at ``path`` otherwise.
    ``mode`` is ``"wb"`` or ``"w"`` (UTF-8 text)."""
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open: mode must be 'wb' or 'w', got {mode!r}")
    target = output_target(path)
    # the name is chosen before the file exists, so an interrupt at any point can remove it
    tmp = str(target.parent / f".{target.name}.{secrets.token_hex(8)}.tmp")
    try:
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
        except FileExistsError:
            tmp = None  # not ours (a 1 in 2^64 clash): never remove it
            raise OutputError([Problem(str(path), "a temporary file of the same name exists; try again")]) from None
        except OSError as exc:
            raise OutputError([Problem(str(path), f"cannot create a file here ({exc.strerror or exc})")]) from None
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        _keep_mode(target, tmp)
        os.replace(tmp, target)
    except BaseException as exc:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        stop = _interrupt_behind(exc)
        if stop is not None:
            raise stop.with_traceback(stop.__traceback__) from None
        if isinstance(exc, OSError) and not isinstance(exc, NeurocompError):
            raise OutputError([Problem(str(path), f"cannot write ({exc.strerror or exc})")]) from exc
        raise
    _fsync_dir(target.parent)


def _interrupt_behind(exc: BaseException) -> BaseException | None:
    """The interrupt (``KeyboardInterrupt``, a signal raised as an exception, ``SystemExit``)
    that an ordinary error was raised while handling, if any.

    A writer's own clean-up can fail because it was interrupted mid-write: numpy 2's
    ``savez`` closes its zip in a ``finally`` and raises ``ValueError`` ("open writing
    handle") over the SIGTERM that stopped it. The caller must see the interrupt, so that
    it exits as interrupted, not as an internal error."""
    if not isinstance(exc, Exception):
        return None  # already the interrupt itself
    seen, ctx = set(), exc.__context__
    while ctx is not None and id(ctx) not in seen:
        if not isinstance(ctx, Exception):
            return ctx
        seen.add(id(ctx))
        ctx = ctx.__context__
    return None


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], object]) -> Path:
    """Call ``write(f)`` on a binary file that replaces ``path`` atomically (see the module
    docstring). Returns ``path`` as given."""
    with atomic_open(path, "wb") as f:
        write(f)
    return Path(path)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def atomic_savez(path: str | os.PathLike, arrays: dict) -> Path:
    """``numpy.savez`` of ``arrays`` written atomically (no pickles)."""
    import numpy as np

    return atomic_write(path, lambda f: np.savez(f, **arrays))


def _keep_mode(target: Path, tmp: str) -> None:
    """A replaced file keeps its permission bits; a new one gets the usual 0666 & ~umask
    (mkstemp makes it 0600)."""
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    os.chmod(tmp, mode)


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (not every file system allows opening a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
