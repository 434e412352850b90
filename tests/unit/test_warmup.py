"""The warm-up: a first run compiles in two processes at once; the helper's kernels are adopted
into the cache; a failing helper only makes the warm-up slower."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numba
import pytest
from numba.core.caching import _CacheLocator

from bayestream.config import Config, parse_config
from bayestream.engine import warmup
from bayestream.models import _jit
from bayestream.models._jit import adopt_cache, cache_is_empty

RULES = {
    "rule": [
        {"metric": "latency", "family": "normal_gamma", "half_life_events": 50},
        {"metric": "errors", "family": "beta_binomial"},
    ]
}


def _config() -> Config:
    return parse_config(RULES, "warm-up test")


def test_adopt_cache_moves_new_kernels_and_keeps_the_targets_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, target = tmp_path / "helper", tmp_path / "cache"
    monkeypatch.setattr(numba.config, "CACHE_DIR", str(target))
    assert cache_is_empty()
    where = Path(_CacheLocator.get_suitable_cache_subpath(_jit.__file__))  # this install's
    (source / where).mkdir(parents=True)
    (target / where).mkdir(parents=True)
    for name, text in {
        "a.update-10.py311.nbi": "index a",
        "a.update-10.py311.1.nbc": "a1",
        "a.update-10.py311.2.nbc": "a2",
        "a.update-100.py311.1.nbc": "another kernel's data",  # prefix of a's, not a's
        "b.scan-5.py311.nbi": "helper's index b",
        "b.scan-5.py311.1.nbc": "helper's b1",
    }.items():
        (source / where / name).write_text(text)
    (target / where / "b.scan-5.py311.nbi").write_text("own index b")
    (target / where / "b.scan-5.py311.1.nbc").write_text("own b1")
    assert not cache_is_empty()

    assert adopt_cache(source) == 1

    moved = {p.name: p.read_text() for p in (target / where).iterdir()}
    assert moved == {
        "a.update-10.py311.nbi": "index a",
        "a.update-10.py311.1.nbc": "a1",
        "a.update-10.py311.2.nbc": "a2",
        "b.scan-5.py311.nbi": "own index b",
        "b.scan-5.py311.1.nbc": "own b1",
    }
    left = sorted(p.name for p in (source / where).iterdir())
    assert left == ["a.update-100.py311.1.nbc", "b.scan-5.py311.1.nbc", "b.scan-5.py311.nbi"]


@pytest.mark.parametrize("executable", ["/nonexistent/python", "false"])
def test_a_helper_that_fails_leaves_the_warm_up_to_this_process(
    executable: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(numba.config, "CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(sys, "executable", executable)
    with caplog.at_level(logging.WARNING, logger=warmup.__name__):
        warmup.warm_up(_config(), split=True)
    assert "warm-up helper" in caplog.text
    assert not list(tmp_path.glob(".warm-up-*"))  # its folder is removed either way


_PROBE = """
import json, sys
from bayestream.config import Config
from bayestream.engine import warmup
from bayestream.models import beta_binomial, normal_gamma
config = Config.model_validate_json(sys.stdin.read())
if sys.argv[1] == "split":
    warmup.warm_up(config, split=True)
else:
    warmup._warm(config)
stats = {
    name: {"hits": sum(k.stats.cache_hits.values()), "misses": sum(k.stats.cache_misses.values())}
    for name, k in (("normal_gamma", normal_gamma.update), ("beta_binomial", beta_binomial.update))
}
print(json.dumps(stats))
"""


def _probe(mode: str, cache_home: Path) -> dict[str, dict[str, int]]:
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(cache_home)
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, mode],
        input=_config().model_dump_json(),
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "warm-up helper" not in done.stderr  # no fallback warning: the helper worked
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_a_split_first_run_caches_both_halves(tmp_path: Path) -> None:
    """From an empty cache: the Normal-Gamma rule compiles here, the Beta-Binomial one in the
    helper; a later process loads both from the cache and compiles neither."""
    first = _probe("split", tmp_path)
    # here: Normal-Gamma compiled, Beta-Binomial loaded from what the helper cached
    assert first["normal_gamma"]["misses"] >= 1
    assert first["beta_binomial"] == {"hits": 1, "misses": 0}
    later = _probe("serial", tmp_path)
    assert later["normal_gamma"]["misses"] == 0 and later["normal_gamma"]["hits"] >= 1
    assert later["beta_binomial"] == {"hits": 1, "misses": 0}
