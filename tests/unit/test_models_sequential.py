"""Event-by-event ``update`` equals the closed-form batch ``posterior`` and the exact naive
sequential reference (no forgetting), with many streams interleaved in one kernel call.

Tolerance: the naive reference is exact (rational arithmetic), so the only error is the
kernel's own rounding, at most a few ulp per event. Over <= 200 events per stream that is
below 200 * 2.2e-16 ~ 5e-14 relative; we assert rtol = 1e-12.
"""

from __future__ import annotations

import numpy as np
import pytest

from bayestream.models import (
    APPLIED,
    FAMILIES,
    beta_binomial,
    dirichlet,
    gamma_poisson,
    normal_gamma,
)
from tests import naive

MODULES = {
    "normal_gamma": normal_gamma,
    "beta_binomial": beta_binomial,
    "gamma_poisson": gamma_poisson,
    "dirichlet": dirichlet,
}
RTOL = 1e-12


def batch(family: str, prior: np.ndarray, x: np.ndarray, size: np.ndarray) -> np.ndarray:
    module = MODULES[family]
    if family in ("normal_gamma", "dirichlet"):
        return module.posterior(prior, x)
    return module.posterior(prior, x, size)


@pytest.mark.parametrize("family", list(MODULES))
def test_interleaved_streams_equal_batch_and_naive(family: str) -> None:
    rng = np.random.default_rng(20240601)
    n_rows, m = 6, 600
    prior = naive.PRIORS[family]
    x, size = naive.draw_events(family, rng, m)
    slots = rng.integers(0, n_rows, m)
    slots[:n_rows] = np.arange(n_rows)  # every row sees at least one event
    ts = np.sort(rng.uniform(0.0, 1000.0, m))
    rows = naive.Rows(prior, n_rows)
    _, status = naive.apply(MODULES[family], rows, slots, ts, x, size)
    assert np.all(status == APPLIED)
    for r in range(n_rows):
        mine = slots == r
        expected = naive.sequential(family, prior, x[mine], size[mine])
        np.testing.assert_allclose(rows.params[r], expected, rtol=RTOL, atol=0)
        np.testing.assert_allclose(
            rows.params[r], batch(family, prior, x[mine], size[mine]), rtol=RTOL, atol=0
        )
        assert rows.n_eff[r] == mine.sum()
        assert rows.last_ts[r] == ts[mine].max()
        assert rows.obs_size[r] == size[mine][-1]


@pytest.mark.parametrize("family", list(MODULES))
def test_one_call_equals_many_calls(family: str) -> None:
    """Splitting the same events over several kernel calls changes nothing, bit for bit."""
    rng = np.random.default_rng(7)
    m = 200
    x, size = naive.draw_events(family, rng, m)
    slots = rng.integers(0, 3, m)
    ts = np.arange(m, dtype=float)
    whole = naive.Rows(naive.PRIORS[family], 3)
    tail_whole, _ = naive.apply(MODULES[family], whole, slots, ts, x, size, half_life=15.0)
    parts = naive.Rows(naive.PRIORS[family], 3)
    tails = []
    for chunk in np.array_split(np.arange(m), 7):
        tails.append(
            naive.apply(
                MODULES[family],
                parts,
                slots[chunk],
                ts[chunk],
                x[chunk],
                size[chunk],
                half_life=15.0,
            )[0]
        )
    np.testing.assert_array_equal(whole.params, parts.params)
    np.testing.assert_array_equal(whole.n_eff, parts.n_eff)
    np.testing.assert_array_equal(tail_whole, np.concatenate(tails))


@pytest.mark.parametrize("family", list(MODULES))
def test_batch_posterior_is_exact(family: str) -> None:
    """The closed form itself against exact rational arithmetic, including no data."""
    rng = np.random.default_rng(11)
    prior = naive.PRIORS[family]
    for m in (0, 1, 2, 50):
        x, size = naive.draw_events(family, rng, m)
        np.testing.assert_allclose(
            batch(family, prior, x, size), naive.sequential(family, prior, x, size), rtol=RTOL
        )


def test_normal_gamma_large_offset_is_stable() -> None:
    """Data far from zero with a small spread: the update must not lose the spread to
    cancellation (beta is a sum of squared deviations, not E[x^2] - E[x]^2)."""
    rng = np.random.default_rng(3)
    x = 1e8 + rng.normal(0.0, 1e-3, 400)
    prior = np.array([1e8, 1.0, 1.0, 1e-6])
    rows = naive.Rows(prior, 1)
    naive.apply(normal_gamma, rows, np.zeros(x.size), np.arange(x.size), x)
    expected = naive.sequential("normal_gamma", prior, x)
    # mu is ~1e8 with deviations ~1e-3: each update rounds mu at 1e8 * eps ~ 1e-8, i.e. 1e-5
    # of the spread, so beta (a sum of squared deviations) is good to ~1e-5 relative.
    np.testing.assert_allclose(rows.params[0, :3], expected[:3], rtol=RTOL)
    np.testing.assert_allclose(rows.params[0, 3], expected[3], rtol=1e-4)


def test_families_are_registered_with_their_kernels() -> None:
    for name, module in MODULES.items():
        family = FAMILIES[name]
        assert family.update is module.update
        assert family.summarize is module.summarize
        assert family.kl is module.kl
    assert [f.code for f in FAMILIES.values()] == [1, 2, 3, 4, 6]  # 6: dlm (5: particle)
    assert {n for n, f in FAMILIES.items() if f.discrete} == {
        "beta_binomial",
        "gamma_poisson",
        "dirichlet",
    }


def test_warm_up_compiles_every_family_kernel() -> None:
    # in a fresh interpreter: kernels this process compiled for other tests would hide a
    # family that warm_up leaves out
    import subprocess
    import sys

    script = """
from bayestream.models import FAMILIES, warm_up
kernels = {(n, k): getattr(f, k) for n, f in FAMILIES.items() for k in ("update", "summarize")}
assert not any(k.signatures for k in kernels.values()), "compiled before warm_up"
warm_up()
missing = sorted(name for name, k in kernels.items() if not k.signatures)
assert not missing, missing
print(len(kernels))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout) == 2 * 5  # update and summarize of the five conjugate families
