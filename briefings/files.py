"""Writing a file so that a crash leaves the old one or the new one, never half of one."""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path


@functools.cache
def file_mode() -> int:
    """0o666 less the umask: the mode a plain open() would give, so a web server can read the archive.

    Read once, from /proc without changing it (no other thread sees a zero umask); else set and put back.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def write_atomic(path: Path, content: str | bytes, *, mode: int | None = None) -> None:
    """Write to a temporary file beside path, flush it to disk, then rename it over path.

    mode: the new file's permissions (default: what the umask allows). Any fault (an OSError: full,
    read-only, no permission) is raised as it is, after the temporary file is removed; path is left as it was.
    """
    if isinstance(content, str):
        content = content.encode("utf-8")
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(fd, file_mode() if mode is None else mode)  # mkstemp makes it 0600
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        raise
