"""Compile every kernel a configuration needs before the first real message arrives.

On a first run (nothing cached yet for these sources) compiling is most of the start-up time.
numba compiles on one thread, so with two cores or more the rules are split in two halves
compiled at once: the Normal-Gamma and particle rules (the largest kernels: drift windows, robust
updates) here, every other family in a helper process (``python -m bayestream.engine.warmup``,
the configuration as JSON on stdin) caching into a folder of its own, which this process
adopts when the helper ends (:func:`bayestream.models._jit.adopt_cache` says why not into the
same folder at once). Then the whole configuration runs once more, now from the cache. If the
helper fails, that last pass compiles what it did not: slower, never wrong.

The kernels both halves use (decoders, stream index, drift windows: about 11 s of the demo's
compiling) are compiled in both, so the gain is less than half: for the demo's four rules on
this project's 2-core machine, 30.5 s on one core, 24.8 s split (2026-12-04).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bayestream.config import Config
from bayestream.engine.engine import Engine
from bayestream.engine.kernels import observation_kind
from bayestream.models._jit import adopt_cache, cache_is_empty, cache_root
from bayestream.models._threads import auto_threads
from bayestream.schema.batch import RawBatch

log = logging.getLogger(__name__)

_SAMPLE: dict[str, dict[str, Any]] = {
    "real": {"value": 1.5},
    "count_exposure": {"value": 2, "exposure": 1.5},
    "count_trials": {"value": 1, "trials": 3},
}
_HERE = frozenset({"normal_gamma", "particle"})  # the families this process compiles itself
HELPER_TIMEOUT_S = 600.0


def warm_up(config: Config, split: bool | None = None) -> None:
    """Run a few events per rule through a scratch engine with this configuration (decoders,
    stream index, family kernels, summaries and the JSON writer all compile, or load from the
    on-disk cache); the real engine's state is not touched.

    ``split``: compile in two processes at once (see the module's docstring); None (the
    default) splits on a first run with two cores or more."""
    if split is None:
        split = auto_threads() >= 2 and cache_is_empty()
    here = tuple(rule for rule in config.rule if rule.family in _HERE)
    there = tuple(rule for rule in config.rule if rule.family not in _HERE)
    if split and here and there:
        root = cache_root()
        root.parent.mkdir(parents=True, exist_ok=True)
        # beside the cache, so that adopting its kernels is a rename on one file system
        with tempfile.TemporaryDirectory(dir=root.parent, prefix=".warm-up-") as folder:
            helper = _start_helper(config.model_copy(update={"rule": there}), Path(folder))
            _warm(config.model_copy(update={"rule": here}))
            _finish_helper(helper, Path(folder))
    _warm(config)


def _warm(config: Config, write_json: bool = True) -> None:
    rules = tuple(
        rule.model_copy(update={"metric": f"__warm_up_{i}__"}) for i, rule in enumerate(config.rule)
    )
    scratch = Engine(config.model_copy(update={"rule": rules}))
    messages = []
    for i, rule in enumerate(rules):
        kind = observation_kind(rule)
        fields: dict[str, Any] = (
            {"value": rule.categories[0]} if kind == "category" else _SAMPLE[kind]
        )
        for t in (1.0, 2.0):
            event = {"key": "k", "metric": f"__warm_up_{i}__", "ts": 1e9 + t, **fields}
            messages.append(json.dumps(event).encode())
    messages.append('{"key":"ü","metric":"__warm_up_0__","ts":1e9,"value":1}'.encode())
    messages.append(b"not json")
    out = scratch.process(RawBatch.from_messages(messages))
    flushed = scratch.flush()
    if write_json:
        out.posteriors.json_lines()
        flushed.posteriors.json_lines()


def _start_helper(config: Config, folder: Path) -> subprocess.Popen[bytes] | None:
    try:
        with (folder / "helper.log").open("wb") as stderr:  # a file: no pipe to fill up
            helper = subprocess.Popen(
                [sys.executable, "-m", "bayestream.engine.warmup"],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env={**os.environ, "NUMBA_CACHE_DIR": str(folder / "cache")},
            )
    except OSError as exc:
        log.warning("warm-up helper did not start (%s): compiling on one core", exc)
        return None
    assert helper.stdin is not None
    try:
        with helper.stdin:
            helper.stdin.write(config.model_dump_json().encode())
    except OSError:  # it died at once: _finish_helper reports why
        pass
    return helper


def _finish_helper(helper: subprocess.Popen[bytes] | None, folder: Path) -> None:
    if helper is None:
        return
    try:
        helper.wait(HELPER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        helper.kill()
        helper.wait()
    if helper.returncode != 0:
        output = (folder / "helper.log").read_text("utf-8", "replace").strip().splitlines()
        log.warning(
            "warm-up helper exited %s (%s): this process compiles the rest",
            helper.returncode,
            output[-1] if output else "no output",
        )
        return
    adopt_cache(folder / "cache")


def _helper_main() -> int:
    """The helper process: warm up the configuration read from stdin (no JSON writing: that
    kernel is compiled by the parent)."""
    _warm(Config.model_validate_json(sys.stdin.buffer.read()), write_json=False)
    return 0


if __name__ == "__main__":
    sys.exit(_helper_main())


__all__ = ["HELPER_TIMEOUT_S", "warm_up"]
