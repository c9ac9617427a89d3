"""The few exceptions the core raises. Only cli.py turns them into messages and exit codes."""

from __future__ import annotations


class BriefingsError(Exception):
    """An error a user can act on: a message and, where there is one, the fix."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigError(BriefingsError):
    """config.toml is missing or malformed; the message names file, line and key."""

    exit_code = 2


class StoreError(BriefingsError):
    """The state file cannot be opened, migrated or locked."""


class FeedError(BriefingsError):
    """One feed could not be fetched or parsed. Never fatal for a run."""


class DeliveryError(BriefingsError):
    """A briefing could not be written or sent."""


# What to say about a storage fault: (what is wrong, what to do), by kind.
_FAULTS = {
    "garbage": ("is not an SQLite database: garbage, or another kind of file",
                "restore it from a backup, or move it aside to start a new one"),
    "damaged": ("is damaged: truncated or corrupted",
                "restore it from a backup, or move it aside to start a new one"),
    "read-only": ("cannot be written: read-only, or permission denied",
                  "fix the permissions of {folder} (or mount it read-write) and run again"),
    "full": ("cannot be written: no space left on the disk, in the quota or under the file size limit",
             "free space on the disk of {folder} and run again; nothing was lost"),
    "cannot-open": ("cannot be opened", "check that {folder} exists and is writable, and run again"),
    "io": ("could not be read or written",
           "check that the disk of {folder} has free space and is writable, and run again"),
    "busy": ("is locked by another process", "wait for it to finish, or stop it, and run again"),
    "file-in-the-way": ("cannot be written: a file stands where a folder on its path should be",
                        "move that file aside, or set the path in config.toml to a folder, and run again"),
    "folder-in-the-way": ("cannot be written: it is a folder",
                          "move the folder aside, or set {setting} to a file, and run again"),
}
_SQLITE_KINDS = {26: "garbage", 11: "damaged", 8: "read-only", 3: "read-only", 13: "full", 14: "cannot-open",
                 10: "io", 5: "busy", 6: "busy"}  # primary SQLite result codes
_ERRNO_KINDS = {"EROFS": "read-only", "EACCES": "read-only", "EPERM": "read-only", "ENOSPC": "full",
                "EDQUOT": "full", "EFBIG": "full", "EIO": "io", "ENOENT": "cannot-open", "ENOTDIR": "file-in-the-way",
                "EEXIST": "file-in-the-way", "EISDIR": "folder-in-the-way"}


def storage_fault(exc: BaseException, path, what: str, kind: type[BriefingsError] = StoreError,
                  setting: str = "the path in config.toml") -> BriefingsError | None:
    """The one-line error for a disk or SQLite fault on path (what: "the state file", "the archive page"...).

    setting: the key that names path, for the fix of a folder standing where the file goes.

    None when exc is not a storage fault (a programming error stays what it is: a bug).
    """
    import errno
    import sqlite3
    from pathlib import Path

    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        fault = _SQLITE_KINDS.get(code & 0xFF) if isinstance(code, int) else None
        detail = str(exc)
    elif isinstance(exc, OSError):
        fault = _ERRNO_KINDS.get(errno.errorcode.get(exc.errno or 0, ""))
        detail = exc.strerror or str(exc)
        if fault == "file-in-the-way" and exc.filename is not None and str(exc.filename) != str(path):
            detail = f"{detail}: {exc.filename}"  # the file in the way
    else:
        return None
    if fault is None:
        return None
    if fault == "cannot-open" and Path(path).is_dir():
        fault = "folder-in-the-way"  # SQLite says only that it cannot open the file
    folder = Path(path).parent
    if fault == "io":
        import shutil

        try:
            if shutil.disk_usage(folder).free < 1 << 20:
                fault = "full"
        except OSError:
            pass
    wrong, todo = _FAULTS[fault]
    return kind(f"{path}: {what} {wrong} ({detail}): {todo.format(folder=folder, setting=setting)}")
