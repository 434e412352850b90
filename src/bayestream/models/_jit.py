"""The one place that sets numba policy for bayestream.

Every kernel in the project is compiled through :func:`kernel`; nobody else writes
``numba.njit(...)`` options. The policy:

- ``cache=True``: compiled machine code is cached (in ``~/.cache/bayestream/numba/<hash of the
  sources>``, or ``NUMBA_CACHE_DIR``), so a second process starts warm;
- ``nogil=True``: kernels release the GIL, so a runtime thread can poll Kafka meanwhile;
- ``error_model="numpy"``: division by zero gives inf/nan instead of raising, as in numpy;
- ``fastmath=False``: IEEE semantics, so results are reproducible bit for bit;
- per-event helpers are inlined into the kernels that call them (:func:`inline`).
"""

from __future__ import annotations

import glob
import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import numba
import numpy as np
from numba.core.caching import _CacheLocator

F = TypeVar("F", bound=Callable[..., Any])


def _cache_dir() -> str:
    """Where compiled kernels are cached: a folder per version of the package's sources.

    numba keys a cached kernel on its own module's file only, but our kernels inline helpers
    from other modules (special functions, float formatting); a folder named by a hash of every
    module that compiles kernels (those that import this one) means that a change in any of
    them can never load a stale kernel, while edits elsewhere keep the cache.
    """
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256(numba.__version__.encode())
    for path in sorted(package.rglob("*.py")):
        source = path.read_bytes()
        if b"models._jit import" in source or path.name in ("_jit.py", "_special.py"):
            digest.update(path.relative_to(package).as_posix().encode())
            digest.update(source)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "bayestream", "numba", digest.hexdigest()[:16])


if not os.environ.get("NUMBA_CACHE_DIR"):  # an explicit numba setting wins
    numba.config.CACHE_DIR = _cache_dir()  # type: ignore[attr-defined]


def cache_root() -> Path:
    """The folder this process caches compiled kernels in (numba's ``CACHE_DIR``)."""
    return Path(numba.config.CACHE_DIR)  # type: ignore[attr-defined]


def cache_is_empty() -> bool:
    """True when no kernel has been cached yet for this installation's sources: a first run.

    numba caches the kernels of a source folder in a subfolder named by that folder's path, so
    another checkout or virtualenv of the same version has a cache of its own under the same
    root; this looks at the one for this installation's models.
    """
    folder = cache_root() / _CacheLocator.get_suitable_cache_subpath(__file__)  # type: ignore[no-untyped-call]
    return not folder.is_dir() or next(folder.glob("*.nbi"), None) is None


def adopt_cache(source: Path) -> int:
    """Move the kernels another process cached under ``source`` (its ``NUMBA_CACHE_DIR``) into
    :func:`cache_root`; returns how many kernels moved.

    numba caches a kernel as an index file (``<base>.nbi``: signature -> data file) and one
    data file per signature (``<base>.<n>.nbc``), under a folder derived from the source
    file's path, which is the same for any cache root. Two processes that compile the same
    kernel into one folder at once can interleave their writes so that an index names the
    other process's data file; kept in separate folders and adopted after the other process
    has ended, that cannot happen. A kernel the target already indexes keeps its own entries
    (the source's copy is left behind); data files move before their index, so a reader never
    finds an index whose data is missing.
    """
    target = cache_root()
    moved = 0
    for index in sorted(source.rglob("*.nbi")):
        folder = target / index.parent.relative_to(source)
        if (folder / index.name).exists():
            continue
        folder.mkdir(parents=True, exist_ok=True)
        for data in index.parent.glob(glob.escape(index.name[: -len(".nbi")]) + ".*.nbc"):
            os.replace(data, folder / data.name)
        os.replace(index, folder / index.name)
        moved += 1
    return moved


ZERO = cast(int, np.int64(0))  # an int to the type checker, as it is to the kernels
"""0 as an argument of a called (not inlined) kernel: numba compiles a separate copy of a
kernel for every literal int it is called with (``f(a, 0)`` and ``f(a, i)`` are two
compilations), while a numpy scalar is typed as a plain int64."""

_POLICY: dict[str, Any] = {
    "cache": True,
    "nogil": True,
    "error_model": "numpy",
    "fastmath": False,
}


def kernel(fn: F) -> F:
    """Compile ``fn`` with the project's numba policy."""
    return numba.njit(**_POLICY)(fn)  # type: ignore[no-any-return]


def parallel_kernel(fn: F) -> F:
    """Compile ``fn`` with the project's policy plus ``parallel=True`` (for ``numba.prange``)."""
    return numba.njit(parallel=True, **_POLICY)(fn)  # type: ignore[no-any-return]


def inline(fn: F) -> F:
    """Compile a small helper that kernels call per event, inlined into its callers.

    A call between separately compiled functions costs a call and reference counting for each
    array argument; per event that is measurable, so per-event helpers are inlined at the
    numba IR level (``inline="always"``). IR inlining copies the helper into every caller and
    types it again there, so it is kept for small helpers on the per-event path: large ones
    (float formatting) and those that run once per window (drift comparisons) are plain
    :func:`kernel` calls. Inlining those had made the first start's compilation half as long
    again (the demo's warm-up: 51 s, 34 s after).
    """
    return numba.njit(inline="always", **_POLICY)(fn)  # type: ignore[no-any-return]
