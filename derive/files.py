"""Reading inputs and writing outputs, safely: the only place derive opens a user's file.

Reading (`read_input`): specs, claims files and templates.  Only a regular file is read (or `-`,
standard input, where the caller allows it); a FIFO, a device, a directory is refused, and at most
`limit` + 1 bytes are ever read, so `/dev/zero` or a growing file cannot exhaust memory.  The file
is opened without blocking (a FIFO cannot hang the open) and checked with fstat on the open
descriptor.  Every OSError (no such file, permission denied, a name too long …) becomes one
DeriveError line naming the path.  Each file read is remembered (device and inode) as an input of
this run, so that no output can overwrite it.

Writing (`write_output`), by what the target is:

- `-`: standard output;
- a new path or a regular file: replaced atomically — a temporary file in the same directory,
  then os.replace — so no reader ever sees a half-written file.  The target's permission bits
  (and, when derive may, its owner and group) are kept; a new file gets 0666 less the umask.  A
  symbolic link is followed: the file it points to is replaced, the link stays.  A file with several
  hard links, or one in a directory derive may not write, is written in place instead (the new
  bytes are complete before the file is opened, and the space is reserved first, so a full disk
  leaves the old contents; the links stay one file);
- a character device (/dev/null, a terminal) or a FIFO: written to, as a stream;
- anything else (a directory, a block device, a socket): refused.

A target the user could not write (os.access(W_OK): a read-only file, for anyone but root) is
refused, and so is a target that is one of this run's inputs (the same device and inode, through
any name or link): `derive render spec.toml -o spec.toml` leaves spec.toml alone.
"""
from __future__ import annotations

import errno
import fcntl
import os
import stat
import sys
import tempfile
from pathlib import Path

from .errors import DeriveError, LimitError

STDIO = "-"
_INPUTS: set = set()          # identities (see _identity) of every file read in this process


def _reason(e: OSError) -> str:
    return e.strerror or str(e)


def kind_of(mode: int) -> str:
    """'a directory', 'a FIFO', … for a st_mode."""
    for test, name in ((stat.S_ISREG, "a regular file"), (stat.S_ISDIR, "a directory"),
                       (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return name
    return "a special file"


def is_file(path) -> bool:
    """Path.is_file() that is False (not an OSError) for a name too long, a loop, a denied lookup."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def is_dir(path) -> bool:
    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def lexists(path) -> bool:
    """True when something is there (even a dangling link, or a name the system refuses to look up:
    reading it then says what is wrong); False only for no such file or directory."""
    try:
        os.lstat(path)
        return True
    except (FileNotFoundError, NotADirectoryError):
        return False
    except (OSError, ValueError):
        return True


def exists(path) -> bool:
    try:
        os.stat(path)
        return True
    except (OSError, ValueError):
        return False


def _identity(st) -> tuple:
    """A file's identity: device and inode, and the inode's change time (so that an inode freed
    and reused for another file later in a long-running process is not mistaken for an input)."""
    return st.st_dev, st.st_ino, st.st_ctime_ns


def is_input(st) -> bool:
    """True when the file with this stat is one this process has read (through any name or link)."""
    return _identity(st) in _INPUTS


def remember_input(st) -> None:
    _INPUTS.add(_identity(st))


# ---------------------------------------------------------------- reading
def read_input(path, *, limit: int, display: str | None = None, stdin: bool = False,
               what: str = "file") -> tuple[str, str]:
    """(display name, text) of a regular file (or standard input for `-` when `stdin`), as UTF-8.

    Raises DeriveError (one line, naming the file) for anything else, and LimitError when the file
    has more than `limit` bytes."""
    text_path = str(path)
    if stdin and text_path == STDIO:
        display = display or "<stdin>"
        data = _read_stream(sys.stdin.buffer, limit, display)
        return display, _decode(data, display)
    display = display or text_path
    try:
        fd = os.open(text_path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    except (OSError, ValueError) as e:
        reason = _reason(e) if isinstance(e, OSError) else str(e)
        raise DeriveError(f"cannot read {what}: {reason}", file=display) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise DeriveError(f"cannot read {what}: it is {kind_of(st.st_mode)}, not a regular file",
                              file=display)
        if st.st_size > limit:
            raise LimitError(f"file is larger than {limit} bytes", file=display)
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)
        remember_input(st)
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = _read_stream(f, limit, display)
    except OSError as e:
        raise DeriveError(f"cannot read {what}: {_reason(e)}", file=display) from None
    finally:
        os.close(fd)
    return display, _decode(data, display)


def _read_stream(f, limit: int, display: str) -> bytes:
    chunks, size = [], 0
    try:
        while size <= limit:
            chunk = f.read(min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as e:
        raise DeriveError(f"cannot read: {_reason(e)}", file=display) from None
    if size > limit:
        raise LimitError(f"file is larger than {limit} bytes", file=display)
    return b"".join(chunks)


def _decode(data: bytes, display: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DeriveError(f"cannot read file: not UTF-8 text (byte {e.start})", file=display) from None


# ---------------------------------------------------------------- writing
def check_output(path) -> None:
    """Raise DeriveError now if `write_output(path, …)` could not succeed (before any work is done)."""
    _plan(path)


def _plan(path):
    """('stdout'|'stream'|'replace'|'in-place'|'new', resolved Path, stat or None)."""
    text = str(path)
    if text == STDIO:
        return "stdout", None, None
    if not text:
        raise DeriveError("cannot write: empty file name")
    p = Path(text)
    try:
        st = os.stat(p)                       # follows a symbolic link to what it names
    except FileNotFoundError:
        st = None
    except (OSError, ValueError) as e:
        raise DeriveError(f"cannot write {p}: {_reason(e) if isinstance(e, OSError) else e}") from None
    if st is None:
        try:
            os.lstat(p)                       # a dangling link: write what it points to
            p = Path(os.path.realpath(p))
        except OSError:
            pass
        parent = p.parent
        if not is_dir(parent):
            raise DeriveError(f"cannot write {p}: no such directory {parent}")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise DeriveError(f"cannot write {p}: permission denied (directory {parent})")
        return "new", p, None
    real = Path(os.path.realpath(p))
    mode = st.st_mode
    if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode):
        if not os.access(p, os.W_OK):
            raise DeriveError(f"cannot write {p}: permission denied")
        return "stream", p, st
    if not stat.S_ISREG(mode):
        raise DeriveError(f"cannot write {p}: it is {kind_of(mode)}")
    if is_input(st):
        raise DeriveError(f"cannot write {p}: it is an input of this command; name another file")
    if not os.access(real, os.W_OK):
        raise DeriveError(f"cannot write {p}: permission denied (the file is read-only)")
    if st.st_nlink > 1 or not os.access(real.parent, os.W_OK | os.X_OK):
        return "in-place", real, st
    return "replace", real, st


def write_output(path, data: bytes | str) -> None:
    """Write `data` (text as UTF-8) to `path` as described in the module docstring."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    how, p, st = _plan(path)
    if how == "stdout":
        try:
            sys.stdout.flush()
            if hasattr(sys.stdout, "buffer"):
                sys.stdout.buffer.write(data)
            else:                                  # a text stream (an embedding program's)
                sys.stdout.write(data.decode("utf-8", errors="replace"))
            sys.stdout.flush()
        except BrokenPipeError:
            raise
        except OSError as e:
            raise DeriveError(f"cannot write to standard output: {_reason(e)}") from None
        return
    try:
        if how == "stream":
            _write_stream(p, data)
        elif how == "in-place":
            _write_in_place(p, data)
        else:
            _replace(p, data, st)
    except OSError as e:
        raise DeriveError(f"cannot write {p}: {_reason(e)}") from None


def write_atomic(path, data: bytes | str, *, make_parents: bool = False) -> None:
    """Write a file (see write_output); `make_parents` creates missing directories first."""
    if make_parents and str(path) != STDIO:
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise DeriveError(f"cannot write {path}: {_reason(e)}") from None
    write_output(path, data)


def _write_stream(p: Path, data: bytes) -> None:
    fd = os.open(p, os.O_WRONLY | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
    finally:
        os.close(fd)


def _write_in_place(p: Path, data: bytes) -> None:
    fd = os.open(p, os.O_WRONLY | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    try:
        if data:
            try:
                os.posix_fallocate(fd, 0, len(data))   # a full disk fails here, the old bytes intact
            except OSError as e:
                if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                    raise
        view, offset = memoryview(data), 0
        while offset < len(data):
            offset += os.pwrite(fd, view[offset:], offset)
        os.ftruncate(fd, len(data))
        os.fsync(fd)
    finally:
        os.close(fd)


def new_file_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _replace(p: Path, data: bytes, st) -> None:
    directory = p.parent if str(p.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".derive-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        if st is None:
            os.chmod(tmp, new_file_mode())     # the permissions an ordinary new file would get
        else:
            os.chmod(tmp, stat.S_IMODE(st.st_mode) & 0o1777)
            if (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
                try:
                    os.chown(tmp, st.st_uid, st.st_gid)
                    os.chmod(tmp, stat.S_IMODE(st.st_mode) & 0o1777)
                except OSError:
                    pass
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
