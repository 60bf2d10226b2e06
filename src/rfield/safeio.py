"""Reading and writing files as untrusted places: regular files only, sizes capped,
outputs written whole or not at all.

A path given to rfield may be a device (``/dev/zero``), a FIFO, or a link to
one; reading it would never end. An output path may be a link, a device or a
file with a mode of its own; replacing it blindly would break it. And a write
killed half-way must not leave a temporary file behind.
"""

from __future__ import annotations

import os
import signal
import stat
import threading
from contextlib import contextmanager
from pathlib import Path

from .errors import RfieldError, TargetError


def check_regular(path: str | os.PathLike, what: str = "file",
                  max_bytes: int | None = None) -> int:
    """The size of ``path`` if it is a regular file (links followed) within
    ``max_bytes``; else a one-line error that says what it is."""
    p = os.fspath(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise TargetError(f"{p}: no such file") from None
    except OSError as exc:
        raise TargetError(f"{p}: cannot be read ({exc.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise TargetError(f"{p}: is a directory, not a {what}")
    if not stat.S_ISREG(st.st_mode):
        raise TargetError(f"{p}: not a regular file (a device, FIFO or socket); rfield reads "
                          "only regular files")
    if max_bytes is not None and st.st_size > max_bytes:
        raise TargetError(f"{p}: {st.st_size} bytes, more than a {what} may have "
                          f"({max_bytes} bytes)")
    return st.st_size


def read_regular(path: str | os.PathLike, what: str = "file",
                 max_bytes: int = 64 * 1024 * 1024) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``."""
    check_regular(path, what, max_bytes)
    try:
        with open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise TargetError(f"{os.fspath(path)}: cannot be read ({exc.strerror})") from None
    if len(data) > max_bytes:  # it grew since the check
        raise TargetError(f"{os.fspath(path)}: more than a {what} may have ({max_bytes} bytes)")
    return data


def _target(path: str) -> str:
    """Where writing ``path`` must land: through links to a regular file, or a new file
    in a folder that exists."""
    real = os.path.realpath(path)
    if os.path.lexists(real):
        mode = os.stat(real).st_mode
        if not stat.S_ISREG(mode):
            kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
            raise RfieldError(f"cannot write {path}: it is {kind}; rfield writes only "
                              "regular files")
    folder = os.path.dirname(real) or "."
    if not os.path.isdir(folder):
        raise RfieldError(f"cannot write {path}: the folder {os.path.dirname(path)!r} "
                          "does not exist")
    return real


_CAUGHT = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def check_writable(path: str | os.PathLike) -> None:
    """Refuse, before any work, a path that write_atomic would refuse."""
    _target(os.fspath(path))


@contextmanager
def _removed_on_signal(tmp: str):
    """While writing ``tmp``: on a catchable signal, remove it, then let the signal act."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in _CAUGHT}

    def handler(signum, frame):
        _unlink(tmp)
        signal.signal(signum, previous[signum])
        os.kill(os.getpid(), signum)

    for s in _CAUGHT:
        if previous[s] is not signal.SIG_IGN:  # under nohup SIGHUP stays ignored
            signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def write_atomic(path: str | os.PathLike, data: str | bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all, keeping an existing file's mode
    and writing through a link to its target."""
    p = os.fspath(path)
    real = _target(p)
    tmp = os.path.join(os.path.dirname(real), f".{Path(real).name}.tmp{os.getpid()}")
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with _removed_on_signal(tmp):
        try:
            mode = stat.S_IMODE(os.stat(real).st_mode) if os.path.exists(real) else None
            # a new file gets the usual mode (the umask applies); an old one its own
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                         0o666 if mode is None else mode)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(payload)
                if mode is not None:  # the umask may have narrowed it
                    os.chmod(tmp, mode)
                os.replace(tmp, real)
            except BaseException:
                _unlink(tmp)
                raise
        except OSError as exc:
            raise RfieldError(f"cannot write {p}: {exc.strerror}") from None
