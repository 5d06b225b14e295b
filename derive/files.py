"""Writing output files: atomically, so that no reader ever sees a half-written file.

`write_atomic(path, data)` writes to a temporary file in the target directory and renames it over
the target (os.replace); on any error the temporary file is removed, the target is untouched, and a
one-line DeriveError says what went wrong.  Text is written as UTF-8 with "\n" line ends.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import DeriveError


def write_atomic(path, data: bytes | str, *, make_parents: bool = False) -> None:
    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    directory = path.parent if str(path.parent) else Path(".")
    try:
        if make_parents:
            directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise DeriveError(f"cannot write {path}: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)   # the permissions an ordinary new file would get
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise DeriveError(f"cannot write {path}: {e.strerror or e}") from None
        raise
