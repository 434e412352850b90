"""The counter-based generator: Random123 known answers, and distributions of its draws."""

from __future__ import annotations

import numpy as np
from scipy import special, stats

from bayestream.models.particle import philox

# Random123 kat_vectors: counter[4] key[2] -> output[4] (32-bit words).
KAT = [
    ([0, 0, 0, 0], [0, 0], [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]),
    ([0xFFFFFFFF] * 4, [0xFFFFFFFF] * 2, [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]),
    (
        [0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344],
        [0xA4093822, 0x299F31D0],
        [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1],
    ),
]
LEVEL = 1e-4  # each distribution test; the seeds are fixed, so the outcome is deterministic


def test_known_answers() -> None:
    for counter, key, expected in KAT:
        out = np.zeros(4, dtype=np.uint64)
        philox.philox4x32_10(np.array(counter, np.uint64), np.array(key, np.uint64), out)
        np.testing.assert_array_equal(out, np.array(expected, np.uint64))


def test_block_is_the_counter_split_into_words() -> None:
    key = np.uint64(0x299F31D0A4093822)
    counter = np.uint64(0x85A308D3243F6A88)
    out = np.zeros((1, 4), dtype=np.uint64)
    philox.blocks(key, counter, 1, out)
    ref = np.zeros(4, dtype=np.uint64)
    words = np.array([0x243F6A88, 0x85A308D3, 0, 0], np.uint64)
    philox.philox4x32_10(words, np.array([0xA4093822, 0x299F31D0], np.uint64), ref)
    np.testing.assert_array_equal(out[0], ref)


def test_draws_depend_only_on_key_and_counter() -> None:
    key = np.uint64(12345)
    whole = np.empty(1000)
    nxt = philox.normals(key, np.uint64(7), whole)
    assert 7 + 250 <= nxt <= 7 + 250 + 20  # four normals a block, plus rare slow-path words
    again = np.empty(1000)
    assert philox.normals(key, np.uint64(7), again) == nxt
    np.testing.assert_array_equal(again, whole)
    # normal j starts from word j: a shorter fill agrees wherever the fast path decided
    first = np.empty(400)
    philox.normals(key, np.uint64(7), first)
    assert np.mean(first == whole[:400]) > 0.97
    for k, c in ((key ^ np.uint64(1), np.uint64(7)), (key, np.uint64(8))):
        other = np.empty(1000)
        philox.normals(k, c, other)
        assert not np.any(other == whole)


def test_ziggurat_layers_close_at_zero() -> None:
    """The tail start r makes the top layer end at x = 0, so all 256 layers have equal area."""
    r = philox.ZIGGURAT_R
    v = r * np.exp(-0.5 * r * r) + np.sqrt(np.pi / 2) * special.erfc(r / np.sqrt(2))
    top = philox._ZK[-2]  # X_255, the lower edge of the top layer
    assert abs(v / top + np.exp(-0.5 * top * top) - 1.0) < 1e-12
    areas = philox._ZW * 2.0**23 * np.diff(philox._ZF)  # X_i (f(X_i+1) - f(X_i)), i >= 1
    np.testing.assert_allclose(areas[1:], v, rtol=1e-9)
    base = philox._ZW[0] * 2.0**23 * philox._ZF[1]  # X_0 f(r): the rectangle and the tail
    np.testing.assert_allclose(base, v, rtol=1e-12)


def test_uniforms_are_uniform_on_the_open_interval() -> None:
    u = np.empty(200_000)
    philox.uniforms(np.uint64(2024), np.uint64(0), u)
    assert u.min() > 0.0 and u.max() < 1.0
    assert stats.kstest(u, "uniform").pvalue > LEVEL
    # consecutive pairs independent: chi-square on a 10 x 10 grid
    grid = np.histogram2d(u[0::2], u[1::2], bins=10, range=[[0, 1], [0, 1]])[0]
    assert stats.chisquare(grid.ravel()).pvalue > LEVEL


def test_normals_are_standard_normal() -> None:
    z = np.empty(200_000)
    philox.normals(np.uint64(99), np.uint64(3), z)
    assert stats.kstest(z, "norm").pvalue > LEVEL
    # four standard errors on the first two moments
    assert abs(z.mean()) < 4.0 / np.sqrt(z.size)
    assert abs(z.var() - 1.0) < 4.0 * np.sqrt(2.0 / z.size)
    assert abs(np.corrcoef(z[0::2], z[1::2])[0, 1]) < 4.0 / np.sqrt(z.size / 2)


def test_ziggurat_slow_paths() -> None:
    """The wedges and the tail beyond r: frequencies of |z| in bands that only the slow path
    reaches in part, and the shape of the tail, against the normal distribution."""
    z = np.empty(2_000_000)
    philox.normals(np.uint64(5), np.uint64(0), z)
    r = philox.ZIGGURAT_R
    edges = np.array([0.0, 1.0, 2.0, 3.0, r, 4.5, np.inf])
    counts = np.histogram(np.abs(z), edges)[0]
    expected = z.size * np.diff(2.0 * special.ndtr(edges) - 1.0)
    assert stats.chisquare(counts, expected).pvalue > LEVEL
    far = np.abs(z[np.abs(z) > r])
    tail = special.ndtr(-r)
    assert stats.kstest(far, lambda t: (tail - special.ndtr(-t)) / tail).pvalue > LEVEL
    assert abs(np.mean(z > 0) - 0.5) < 4.0 * 0.5 / np.sqrt(z.size)


def test_a_wrong_generator_would_be_rejected() -> None:
    """Power of the checks above: a uniform squeezed by 1 % fails the KS test."""
    u = np.empty(200_000)
    philox.uniforms(np.uint64(2024), np.uint64(0), u)
    assert stats.kstest(0.99 * u, "uniform").pvalue < LEVEL
