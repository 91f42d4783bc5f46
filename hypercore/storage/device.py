"""The ``CORESTORE`` device file of a store directory, as JS ``device-file`` 2 writes and checks
it, and the exclusive lock JS holds on it while a store is open.

The file is text, one ``key=value`` per line (``\\n``; ``\\r\\n`` on Windows)::

    device/platform=linux
    device/inode=2179675
    device/created=1763934161311
    device/attribute=original

``inode`` is the file's own inode, ``created`` the creation time in ms, and the last line is
only written when the extended attribute ``user.device-file`` (``device-file`` off Linux) could
be set to ``original`` on the file. A copy of the store gets a new inode and loses the
attribute, which is how JS notices a store that was copied or moved ("moved unsafely").

Opening an existing file checks, in this order (the messages are the JS ones):

1. the exclusive lock (``fcntl(F_OFD_SETLK)`` write lock on the whole file on Linux, ``flock``
   elsewhere, as ``fs-native-extensions``); held by anyone -> :class:`StorageLockedError`;
2. ``device/platform``, if present, equals this platform -> else "was made on different
   platform";
3. the file's ``device-file`` attribute equals ``device/attribute`` (both may be absent) ->
   else "was moved unsafely";
4. ``device/inode`` equals the inode, and if ``device/created`` is a number, the modification
   time is within 5 s of it -> else "was modified".

Difference to JS: JS compares ``created`` with max(mtime, birth time); Python cannot read the
birth time on Linux and uses the mtime alone (they differ only for a file whose birth time is
after its mtime, i.e. one copied with its mtime preserved, which already fails the inode check).

OFD locks belong to the open file description, so a second open of the same store in the same
Python process conflicts too, and closing an unrelated descriptor of the file does not drop the
lock (unlike POSIX ``lockf`` locks).
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from .errors import DeviceFileError, StorageLockedError

__all__ = ["ATTRIBUTE", "MODIFIED_SLACK_MS", "PLATFORM", "DeviceFile", "try_lock"]


def _js_platform() -> str:
    p = sys.platform
    for prefix, name in (("linux", "linux"), ("freebsd", "freebsd"), ("openbsd", "openbsd")):
        if p.startswith(prefix):
            return name
    return {"cygwin": "win32"}.get(p, p)  # darwin, win32, aix, sunos ... match node already


PLATFORM = _js_platform()
"""``process.platform`` of node on this machine."""
ATTRIBUTE = "user.device-file" if PLATFORM == "linux" else "device-file"
MODIFIED_SLACK_MS = 5000
_NL = "\r\n" if PLATFORM == "win32" else "\n"

# struct flock on Linux: short l_type, short l_whence, off_t l_start, off_t l_len, pid_t l_pid.
_FLOCK = struct.Struct("@hhqqi4x")


def try_lock(fd: int) -> bool:
    """Take the exclusive whole-file lock JS takes; False if someone else holds it."""
    try:
        ofd = getattr(fcntl, "F_OFD_SETLK", None)
        if ofd is not None:
            fcntl.fcntl(fd, ofd, _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0))
        else:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return False
        raise
    return True


class DeviceFile:
    """An open, verified (and, with ``lock``, locked) ``CORESTORE`` file.

    ``data`` holds the file's other ``key=value`` lines (JS ``DeviceFile.data``).
    """

    def __init__(self, filename: Path, fd: int | None, data: dict[str, str]) -> None:
        self.filename = filename
        self.data = data
        self._fd = fd

    @classmethod
    def open(
        cls,
        filename: str | os.PathLike[str],
        *,
        lock: bool = True,
        create: bool = True,
        data: Mapping[str, str | None] | None = None,
    ) -> DeviceFile:
        """Verify the device file, or write a new one if there is none (and ``create``)."""
        path = Path(filename)
        wanted = dict(data or {})
        try:
            fd = os.open(path, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            fd = -1
        if fd >= 0:
            return cls._verify(path, fd, lock, wanted)
        if not create:
            raise DeviceFileError("No device file present")
        return cls._write(path, lock, wanted)

    @classmethod
    def _verify(cls, path: Path, fd: int, lock: bool, wanted: dict[str, str | None]) -> DeviceFile:
        try:
            if lock and not try_lock(fd):
                raise StorageLockedError(f"{path} is locked: the store is open in another process")
            result, platform, inode, created, attr = _parse(_read_all(fd))
            for k, v in wanted.items():
                if v is None or k not in result:
                    continue
                if result[k] != v:
                    raise DeviceFileError(
                        f"Invalid device file, {k} has changed. Was {result[k]}, is {v}"
                    )
            st = os.fstat(fd)
            actual_attr = _get_attr(fd)
            modified_ms = st.st_mtime_ns // 1_000_000
            birth = getattr(st, "st_birthtime", None)
            if birth is not None:
                modified_ms = max(modified_ms, int(birth * 1000))
            if platform and platform != PLATFORM:
                raise DeviceFileError("Invalid device file, was made on different platform")
            if actual_attr != attr:
                raise DeviceFileError("Invalid device file, was moved unsafely")
            if st.st_ino != inode or (created and abs(modified_ms - created) >= MODIFIED_SLACK_MS):
                raise DeviceFileError("Invalid device file, was modified")
        except BaseException:
            os.close(fd)
            raise
        if not lock:
            os.close(fd)
            return cls(path, None, result)
        return cls(path, fd, result)

    @classmethod
    def _write(cls, path: Path, lock: bool, wanted: dict[str, str | None]) -> DeviceFile:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0))
        try:
            if lock and not try_lock(fd):
                raise StorageLockedError(f"{path} is locked: the store is open in another process")
            text = "".join(f"{k}={v}{_NL}" for k, v in wanted.items() if v is not None)
            st = os.fstat(fd)
            created = int(time.time() * 1000)
            text += f"device/platform={PLATFORM}{_NL}"
            text += f"device/inode={st.st_ino}{_NL}"
            text += f"device/created={created}{_NL}"
            if _set_attr(fd):
                text += f"device/attribute=original{_NL}"
            buf = text.encode()
            written = 0
            while written < len(buf):
                written += os.pwrite(fd, buf[written:], written)
        except BaseException:
            os.close(fd)
            raise
        if not lock:
            os.close(fd)
            return cls(path, None, {k: v for k, v in wanted.items() if v is not None})
        return cls(path, fd, {k: v for k, v in wanted.items() if v is not None})

    @property
    def locked(self) -> bool:
        return self._fd is not None

    def close(self) -> None:
        """Close the file, which releases the lock."""
        fd = self._fd
        self._fd = None
        if fd is not None:
            os.close(fd)


def _read_all(fd: int) -> bytes:
    chunks: list[bytes] = []
    offset = 0
    while offset < 4096:
        chunk = os.pread(fd, 4096 - offset, offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def _js_number(text: str) -> float:
    """JS ``Number(text)`` for the decimal integers this file holds (NaN otherwise)."""
    text = text.strip()
    if not text:
        return 0
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return float("nan")


def _parse(buf: bytes) -> tuple[dict[str, str], str, float, float, str]:
    result: dict[str, str] = {}
    platform = ""
    inode: float = 0
    created: float = 0
    attr = ""
    for line in buf.decode("utf-8", "replace").strip().split("\n"):
        i = line.find("=")
        if i == -1:
            continue
        k = line[:i].strip()
        v = line[i + 1 :].strip()
        if k == "device/platform":
            platform = v
        elif k == "device/inode":
            inode = _js_number(v)
        elif k == "device/created":
            created = _js_number(v)
            if created != created:  # NaN is falsy in JS: no modification check
                created = 0
        elif k == "device/attribute":
            attr = v
        else:
            result[k] = v
    return result, platform, inode, created, attr


def _get_attr(fd: int) -> str:
    getxattr = getattr(os, "getxattr", None)
    if getxattr is None:
        return ""
    try:
        value: bytes = getxattr(fd, ATTRIBUTE)
    except OSError:
        return ""
    return value.decode("utf-8", "replace")


def _set_attr(fd: int) -> bool:
    setxattr = getattr(os, "setxattr", None)
    if setxattr is None:
        return False
    try:
        setxattr(fd, ATTRIBUTE, b"original")
    except OSError:
        return False
    return True
