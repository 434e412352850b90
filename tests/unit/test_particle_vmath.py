"""The branch-free exp and normal tail of the vectorised passes, against numpy and scipy."""

from __future__ import annotations

import numpy as np
from scipy import special

from bayestream.models._jit import kernel
from bayestream.models.particle import vmath


@kernel
def _exp(x: np.ndarray, out: np.ndarray) -> None:
    for j in range(x.shape[0]):
        out[j] = vmath.exp(x[j])


@kernel
def _sf(a: np.ndarray, out: np.ndarray) -> None:
    for j in range(a.shape[0]):
        out[j] = vmath.normal_sf(a[j])


def test_exp_is_within_one_ulp_of_numpy() -> None:
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.uniform(-750, 712, 400_000), rng.uniform(-1, 1, 100_000)])
    x = np.concatenate([x, [0.0, -0.0, 709.78, 709.79, -708.4, -744.4, -745.2, -746.0]])
    out = np.empty_like(x)
    _exp(x, out)
    with np.errstate(over="ignore"):
        ref = np.exp(x)
    normal = np.isfinite(ref) & (ref >= np.finfo(float).tiny)
    assert np.all(np.abs(out[normal] - ref[normal]) <= np.spacing(ref[normal]))
    sub = ~normal & np.isfinite(ref)
    assert np.all(np.abs(out[sub] - ref[sub]) <= 5e-324)  # subnormal: one unit at most
    np.testing.assert_array_equal(out[~np.isfinite(ref)], ref[~np.isfinite(ref)])
    special_values = np.array([np.inf, -np.inf, np.nan])
    out = np.empty(3)
    _exp(special_values, out)
    assert out[0] == np.inf and out[1] == 0.0 and np.isnan(out[2])


def test_normal_sf_matches_scipy() -> None:
    rng = np.random.default_rng(2)
    a = np.concatenate([rng.uniform(0, 3, 200_000), rng.uniform(0, 38, 200_000)])
    a = np.concatenate([a, [0.0, 1e-300, 0.5, 1.0, 5.0, 10.0, 20.0, 30.0, 37.0]])
    out = np.empty_like(a)
    _sf(a, out)
    ref = special.ndtr(-a)
    small = a < 10.0
    np.testing.assert_allclose(out[small], ref[small], rtol=1e-14, atol=0)
    normal = ref > 1e-300  # below, scipy's ndtr flushes to 0 sooner
    np.testing.assert_allclose(out[normal], ref[normal], rtol=1e-12, atol=0)
    assert np.all(out[~normal] < 1e-299)
    out = np.empty(2)
    _sf(np.array([np.inf, np.nan]), out)
    assert out[0] == 0.0 and np.isnan(out[1])
