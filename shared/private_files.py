"""Files only this process's user may read: the snapshot cache (key hashes,
encrypted provider keys) and the usage spool (who asked what, and when).

Files are created (and, when an older version left them open to others,
narrowed to) 0600. Folders that do not exist yet are created 0700. A folder that
already exists is left as it is: it may be the operator's (a shared /var/lib, a
home directory), and changing its mode could break something else that uses it;
the files in it are 0600 whatever the folder's mode.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["FILE_MODE", "FOLDER_MODE", "make_folder", "open_private"]

FILE_MODE = 0o600
FOLDER_MODE = 0o700


def make_folder(path: Path) -> None:
    """Create `path` and its missing parents 0700 (not subject to the umask)."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=FOLDER_MODE)
        except FileExistsError:
            continue  # created meanwhile by someone else: theirs, left alone
        folder.chmod(FOLDER_MODE)  # mkdir's mode is narrowed by the umask, never widened


def open_private(path: Path, *, append: bool) -> int:
    """A file descriptor of `path`, opened for writing (appending or truncating),
    created 0600 in a folder made by `make_folder` when missing; a symlink at `path`
    is not followed (OSError)."""
    make_folder(path.parent)
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_APPEND if append else os.O_TRUNC)
    fd = os.open(path, flags, FILE_MODE)
    try:
        if os.fstat(fd).st_mode & 0o777 != FILE_MODE:
            os.fchmod(fd, FILE_MODE)  # a file an older version wrote 0644
    except OSError:
        os.close(fd)
        raise
    return fd
