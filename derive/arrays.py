"""Values from NumPy files: `W1 = { file = "weights.npz", key = "W1" }` in [data] or [parameters].

Takes the spec's table and the directory the spec is in; gives a `spec.Value` whose entries are
the exact binary numbers stored (a float64 0.1 is 3602879701896397/2^55, not 1/10).  Files are
read with `allow_pickle=False`; `.npy` holds one array (no `key`), `.npz` several (`key` names
one).  A 0-d array is a scalar, 1-d a column vector, 2-d a matrix.  NumPy is imported only when a
spec uses a file, so specs without files never pay for it.
"""
from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

from .errors import DeriveError, LimitError

ARRAY_KEYS = {"file", "key"}
MAX_ARRAY_BYTES = 2 * 10 ** 9      # a larger file is refused before it is read
MAX_ARRAY_ENTRIES = 10 ** 7


def file_beside_spec(name, base_dir: Path | None, suffixes: tuple, path: str, key: str, *,
                     expected: str, what: str) -> Path:
    """The file a spec names at `key` (a path relative to the spec's folder), or DeriveError: not
    a non-empty string (`expected` says what is), a spec from standard input, a suffix not in
    `suffixes`."""
    if not isinstance(name, str) or not name:
        raise DeriveError(f"expected {expected}", file=path, key=key)
    if base_dir is None:
        raise DeriveError(f"a spec read from standard input cannot name {what}", file=path, key=key)
    target = base_dir / name
    if target.suffix not in suffixes:
        raise DeriveError(f"{name}: expected a {' or '.join(suffixes)} file", file=path, key=key)
    return target


def read_array(table: dict, base_dir: Path | None, path: str, key: str):
    """(shape, entries, flat) of the array a `{ file = …, key = … }` table names."""
    unknown = sorted(set(table) - ARRAY_KEYS)
    if unknown:
        raise DeriveError(f"unknown key {unknown[0]!r} in an array table (allowed: file, key)",
                          file=path, key=key)
    name = table.get("file")
    target = file_beside_spec(name, base_dir, (".npy", ".npz"), path, key,
                              expected='{ file = "weights.npz", key = "W1" }', what="array files")
    check_file(target, name, path, key)
    array = _load(target, name, table.get("key"), path, key)
    return _to_entries(array, name, path, key)


def check_file(target: Path, name: str, path: str, key: str) -> None:
    """The NumPy file exists, is a regular file and is not too large (before it is read)."""
    try:
        st = os.stat(target)
    except OSError as e:
        raise DeriveError(f"cannot read {name}: {e.strerror or e}", file=path, key=key) from None
    if not os.path.isfile(target):
        raise DeriveError(f"{name} is not a regular file", file=path, key=key)
    if st.st_size > MAX_ARRAY_BYTES:
        raise LimitError(f"{name} is larger than {MAX_ARRAY_BYTES} bytes", file=path, key=key)


def open_numpy(target: Path, name: str, path: str, key: str):
    """np.load with allow_pickle=False: an array (.npy) or an NpzFile (.npz); one line for
    anything unreadable or pickled."""
    import numpy as np   # only specs that use array files pay for NumPy
    try:
        return np.load(target, allow_pickle=False)
    except ValueError as e:
        raise DeriveError(f"cannot read {name}: {_why(e)}", file=path, key=key) from None
    except (OSError, EOFError) as e:
        raise DeriveError(f"cannot read {name}: {e}", file=path, key=key) from None


def member(loaded, name: str, which: str, path: str, key: str):
    """One array of an .npz archive (it exists)."""
    try:
        return loaded[which]
    except ValueError as e:
        raise DeriveError(f"cannot read {name}[{which}]: {_why(e)}", file=path, key=key) from None


def _why(e: ValueError) -> str:
    return "it holds Python objects (pickled), which are never loaded" if "pickle" in str(e) else str(e)


def _load(target: Path, name: str, which, path: str, key: str):
    import numpy as np
    loaded = open_numpy(target, name, path, key)
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            if not isinstance(which, str):
                raise DeriveError(f"{name} holds {', '.join(sorted(loaded.files)) or 'no arrays'}; "
                                  "say which with key = \"…\"", file=path, key=key)
            if which not in loaded.files:
                raise DeriveError(f"{name} has no array {which!r} (it has: "
                                  f"{', '.join(sorted(loaded.files)) or 'none'})", file=path, key=key)
            return member(loaded, name, which, path, key)
    if which is not None:
        raise DeriveError(f"{name} is a .npy file with one array; remove key", file=path, key=key)
    return loaded


def exact_entries(array, name: str, path: str, key: str) -> list:
    """The entries of a numeric array (row-major) as the exact numbers stored: a float64 is its
    binary value; other dtypes, NaN and infinity are refused with one line."""
    import numpy as np
    kind = array.dtype.kind
    if kind not in "biuf":
        raise DeriveError(f"{name}: expected numbers, got arrays of dtype {array.dtype}", file=path, key=key)
    if kind == "f":
        if not np.isfinite(array).all():
            raise DeriveError(f"{name}: contains NaN or infinity", file=path, key=key)
        if array.dtype.itemsize > 8:
            raise DeriveError(f"{name}: {array.dtype} is not supported (use float64)", file=path, key=key)
        return [Fraction(*x.as_integer_ratio()) for x in array.astype(np.float64).ravel().tolist()]
    return [Fraction(int(x)) for x in array.ravel().tolist()]


def _to_entries(array, name: str, path: str, key: str):
    if array.dtype.kind not in "biuf":
        raise DeriveError(f"{name}: expected numbers, got arrays of dtype {array.dtype}", file=path, key=key)
    if array.ndim > 2:
        raise DeriveError(f"{name}: expected a scalar, a vector or a matrix, got shape {array.shape}",
                          file=path, key=key)
    if array.size == 0:
        raise DeriveError(f"{name}: the array is empty", file=path, key=key)
    if array.size > MAX_ARRAY_ENTRIES:
        raise LimitError(f"{name}: more than {MAX_ARRAY_ENTRIES} entries", file=path, key=key)
    flat = exact_entries(array, name, path, key)
    if array.ndim == 0:
        return (), tuple(flat), False
    if array.ndim == 1:
        return (array.shape[0], 1), tuple(flat), True
    return tuple(array.shape), tuple(flat), False
