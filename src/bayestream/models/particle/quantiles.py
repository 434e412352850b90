r"""Quantiles of weighted particles and of their predictive mixture, exact, without a sort.

Notation: particles ``x_j`` with normalised weights ``w_j`` (``j < P``), ``lo_x`` and ``hi_x``
the smallest and largest particle, ``s`` the observation scale (``sqrt(r)``).

**Grouping**: instead of sorting, :func:`group` counting-sorts the particles into ``B = P / 4``
equal buckets over ``[lo_x, hi_x]`` (bucket ``floor((x - lo_x) B / (hi_x - lo_x))``, monotone
in ``x``, so every particle of a bucket is below every particle of the next), with each
bucket's weight: two passes over the particles.

**Weighted particle quantile** (credible intervals): ``Q(u) = x_(k)``, the smallest sorted
particle whose cumulative weight reaches ``u`` (the largest particle if rounding leaves the
total below ``u``). :func:`grouped_quantile` walks the bucket weights to the bucket where the
cumulative weight reaches ``u`` and sorts only that bucket's particles. The cumulative weight
is summed per bucket, then in sorted order within the bucket: the same sum as a full sort's up
to rounding (so ``Q`` can differ only where a partial sum lies within rounding of ``u``).

**Predictive quantiles, continuous** (local level): the root ``v`` of ``F(v) = u``,

    F(v) = sum_j w_j G((v - x_j) / s),   G = Phi (Normal noise) or the Student-t CDF,

to ``|F(v) - u| <= TOLERANCE`` (or, where no double lies between the ends of the bracket, at
the float spacing). The root lies in ``[lo_x + s t_u, hi_x + s t_u]`` (``t_u = G^-1(u)``: the
smallest and largest component quantiles), which brackets a safeguarded Newton iteration
(bisection when a step leaves the bracket or does not halve the step before, as ``rtsafe`` in
Numerical Recipes) started from the Cornish-Fisher guess of the particles' first four
cumulants plus the noise's variance (Student-t: the moment-matched Normal). Each iteration
evaluates ``F`` and its density ``f``:

- Student-t noise, or Normal noise whose buckets are wider than a bin (below):
  directly, ``P`` component CDFs and densities per evaluation (:func:`direct_cdf`);
- Normal noise otherwise, from a Taylor expansion on bins (:func:`expand`, :func:`expansion_cdf`):
  consecutive buckets make bins at most ``2 h s`` wide (``h = HALF_WIDTH``), centres ``c_b``;
  with
  ``d_j = (x_j - c_b) / s`` (``|d_j| <= h``) and ``z_b = (v - c_b) / s``,

      Phi(z_b - d) = Phi(z_b) - phi(z_b) sum_{k=1..K} He_{k-1}(z_b) d^k / k!  + R_K,
      phi(z_b - d) = phi(z_b) sum_{k=0..K} He_k(z_b) d^k / k!  + ...,

  (``He`` the probabilists' Hermite polynomials, ``Phi^(k) = (-1)^(k-1) He_{k-1} phi``), so a
  bin enters through its moments ``A_{b,k} = sum_{j in b} w_j d_j^k / k!`` (``K = TERMS``),
  accumulated once per row, and each evaluation costs a few operations per bin instead of one
  CDF per particle. Cramer's inequality ``|He_n(z)| <= 1.086435 sqrt(n!) exp(z^2 / 4)`` bounds
  ``|R_K| <= 1.086435 / sqrt(2 pi) sqrt(K!) |d|^(K+1) / (K+1)!``, so the expanded ``F`` is
  within ``EXPANSION_ERROR`` (2.3e-14 for h = 1/4, K = 12) of the exact mixture CDF; the root
  of the expanded ``F`` to ``TOLERANCE`` is thus a root of the exact one to
  ``TOLERANCE + EXPANSION_ERROR``. Bins more than ``Z_FAR`` scales from ``v`` count as 0 or
  their weight (``Phi(-Z_FAR + h) < 1e-300``). The expansion also gives ``f' = F''``, so the
  step is Halley's, and a step ``D`` is taken without evaluating ``F`` again when Taylor's
  theorem bounds ``|F(v + D) - u|`` below ``TOLERANCE``: the quadratic model's residual, plus
  the expansion errors of ``F``, ``f``, ``f'`` (``EXPANSION_ERROR`` times 1, ``sqrt(K + 1)``,
  ``sqrt((K + 1)(K + 2))``: the next Hermite functions) times 1, ``|D|``, ``D^2 / 2``, plus
  ``sup |F'''| |D|^3 / 6`` with ``|F'''| <= phi(0) / s^3``. On the benchmark's rows a
  quantile then costs 1.7 evaluations of ``F`` on average.

Predictive quantiles of counts (Poisson and binomial rate) are in :mod:`.counts`.
"""

from __future__ import annotations

import math

import numpy as np

from bayestream.models._jit import inline, kernel
from bayestream.models._special import gammaln, ndtr, ndtri, stdtr, stdtrit
from bayestream.models.particle.codes import OBS_NORMAL
from bayestream.models.particle.vmath import exp as vexp

HALF_WIDTH = 0.25
"""Bins of the Normal expansion are 2 HALF_WIDTH observation scales wide."""
TERMS = 12
"""Order K of the Taylor expansion (moments d^0 .. d^K per bin)."""
CRAMER = 1.086435
EXPANSION_ERROR = (
    CRAMER / math.sqrt(2.0 * math.pi)
    * math.sqrt(math.factorial(TERMS)) * HALF_WIDTH ** (TERMS + 1) / math.factorial(TERMS + 1)
)  # fmt: skip
"""Bound on |expanded F - F| for particles within HALF_WIDTH of their bin centre."""
DENSITY_ERROR = EXPANSION_ERROR * math.sqrt(TERMS + 1)
"""... on |expanded f - f| times the scale (the next Hermite function: sqrt(K + 1) more)."""
SLOPE_ERROR = 0.5 * EXPANSION_ERROR * math.sqrt((TERMS + 1) * (TERMS + 2))
"""... on |expanded f' - f'| / 2 times the scale squared."""
CUBIC = 0.3989422804014327 / 6.0
"""sup |F'''| / 3! times the scale cubed: |phi''(z)| = |z^2 - 1| phi(z) <= phi(0)."""
TOLERANCE = 1e-13
"""|F(v) - u| at which the continuous root search stops."""
Z_FAR = 38.0
MAX_ITERATIONS = 2200
"""Enough bisections to take any bracket of doubles to the float spacing."""

_INV_SQRT_2PI = 0.3989422804014327


@inline
def extent(x: np.ndarray) -> tuple[float, float]:
    """(smallest, largest) particle."""
    lo = math.inf
    hi = -math.inf
    for j in range(x.shape[0]):
        lo = min(lo, x[j])
        hi = max(hi, x[j])
    return lo, hi


# --- grouping the particles --------------------------------------------------------------------


@kernel
def group(
    x: np.ndarray, w: np.ndarray, lo_x: float, hi_x: float, start: np.ndarray,
    cursor: np.ndarray, bucket_w: np.ndarray, xs: np.ndarray, ws: np.ndarray,
    slot: np.ndarray,
) -> None:  # fmt: skip
    """Counting sort of the particles into ``B = bucket_w.shape[0]`` buckets (the module
    docstring): bucket ``b`` holds ``xs[start[b]:start[b + 1]]`` with weights ``ws[...]`` and
    total weight ``bucket_w[b]``. ``cursor`` (``B``) and ``slot`` (``P``) are int scratch."""
    nb = bucket_w.shape[0]
    span = hi_x - lo_x
    inv = nb / span if span > 0.0 else 0.0
    if not inv < math.inf:  # a subnormal span
        inv = 0.0
    start[:] = 0
    bucket_w[:] = 0.0
    for j in range(x.shape[0]):
        t = (x[j] - lo_x) * inv
        b = 0
        if t >= nb:
            b = nb - 1
        elif t > 0.0:
            b = int(t)
        slot[j] = b
        start[b + 1] += 1
        bucket_w[b] += w[j]
    for b in range(nb):
        start[b + 1] += start[b]
        cursor[b] = start[b]
    for j in range(x.shape[0]):
        b = slot[j]
        k = cursor[b]
        cursor[b] = k + 1
        xs[k] = x[j]
        ws[k] = w[j]


@kernel
def grouped_quantile(
    u: float, xs: np.ndarray, ws: np.ndarray, start: np.ndarray, bucket_w: np.ndarray
) -> float:
    """``Q(u)`` of the module docstring from the buckets of :func:`group`; sorts the bucket
    that holds it in place."""
    nb = bucket_w.shape[0]
    cum = 0.0
    b = nb - 1
    for k in range(nb):
        if cum + bucket_w[k] >= u:
            b = k
            break
        if k < nb - 1:
            cum += bucket_w[k]
    first, end = start[b], start[b + 1]
    if first == end:  # rounding left u beyond the last (empty) bucket: the largest particle
        top = -math.inf
        for t in range(xs.shape[0]):
            top = max(top, xs[t])
        return top
    for t in range(first + 1, end):  # insertion sort: a bucket holds a few particles
        v, vw = xs[t], ws[t]
        k = t - 1
        while k >= first and xs[k] > v:
            xs[k + 1] = xs[k]
            ws[k + 1] = ws[k]
            k -= 1
        xs[k + 1] = v
        ws[k + 1] = vw
    for t in range(first, end):
        cum += ws[t]
        if cum >= u:
            return xs[t]  # type: ignore[no-any-return]
    return xs[end - 1]  # type: ignore[no-any-return]


# --- continuous predictive mixtures -----------------------------------------------------------


@kernel
def expand(
    xs: np.ndarray, ws: np.ndarray, start: np.ndarray, lo_x: float, hi_x: float, scale: float,
    moments: np.ndarray,
) -> tuple[int, float]:  # fmt: skip
    """Bin moments ``A_{b,k}`` of the Normal expansion into ``moments[b, k]`` from the buckets
    of :func:`group`; a bin is the union of the most consecutive buckets that fit in
    ``2 HALF_WIDTH`` scales. Returns the number of bins and their width, or ``(0, 0.0)`` when a
    bucket is wider than a bin (the particles span more than ``B`` bins: the mixture is then
    evaluated directly) or, by rounding, a particle lies farther than ``HALF_WIDTH`` from its
    bin's centre. The sums are unrolled for ``TERMS = 12``."""
    buckets = start.shape[0] - 1
    span = hi_x - lo_x
    delta = span / buckets
    per = buckets
    if span > 0.0:
        fits = 2.0 * HALF_WIDTH * scale / delta
        if not fits >= 1.0:
            return 0, 0.0
        per = int(min(fits, float(buckets)))
    width = per * delta
    nb = (buckets + per - 1) // per
    inv = 1.0 / scale
    far = 0.0
    for b in range(nb):
        c = lo_x + (b + 0.5) * width
        a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = a8 = a9 = a10 = a11 = a12 = 0.0
        for t in range(start[b * per], start[min((b + 1) * per, buckets)]):
            d = (xs[t] - c) * inv
            far = max(far, abs(d))
            v = ws[t]
            a0 += v
            v *= d
            a1 += v
            v *= d
            a2 += v
            v *= d
            a3 += v
            v *= d
            a4 += v
            v *= d
            a5 += v
            v *= d
            a6 += v
            v *= d
            a7 += v
            v *= d
            a8 += v
            v *= d
            a9 += v
            v *= d
            a10 += v
            v *= d
            a11 += v
            v *= d
            a12 += v
        row = moments[b]
        row[0] = a0
        row[1] = a1
        row[2] = a2 / 2.0
        row[3] = a3 / 6.0
        row[4] = a4 / 24.0
        row[5] = a5 / 120.0
        row[6] = a6 / 720.0
        row[7] = a7 / 5040.0
        row[8] = a8 / 40320.0
        row[9] = a9 / 362880.0
        row[10] = a10 / 3628800.0
        row[11] = a11 / 39916800.0
        row[12] = a12 / 479001600.0
    if not far <= HALF_WIDTH * (1.0 + 1e-9):
        return 0, 0.0
    return nb, width


@inline
def expansion_cdf(
    v: float, moments: np.ndarray, nb: int, width: float, lo_x: float, scale: float
) -> tuple[float, float, float]:
    """(F(v), f(v), f'(v)) of the Normal mixture from the ``nb`` bins of :func:`expand`, of
    ``width``, the first centred at ``lo_x + width / 2``:
    ``phi(z - d) = phi(z) sum_k He_k(z) d^k / k!`` and its derivative
    ``-phi(z) sum_k He_{k+1}(z) d^k / k!``."""
    big = 0.0
    small = 0.0
    dens = 0.0
    slope = 0.0
    for b in range(nb):
        a0 = moments[b, 0]
        if a0 == 0.0:
            continue
        z = (v - (lo_x + (b + 0.5) * width)) / scale
        if z > Z_FAR:
            big += a0
            continue
        if not z >= -Z_FAR:
            continue
        below = 0.0  # He_{k-1} (He_{-1} = 0)
        here = 1.0  # He_k
        s_cdf = 0.0  # sum_k He_{k-1} A_k
        s_pdf = 0.0  # sum_k He_k A_k
        s_slope = 0.0  # sum_k He_{k+1} A_k
        for k in range(TERMS + 1):
            above = z * here - k * below
            ak = moments[b, k]
            s_cdf += below * ak
            s_pdf += here * ak
            s_slope += above * ak
            below = here
            here = above
        phi = vexp(-0.5 * z * z) * _INV_SQRT_2PI
        small += a0 * ndtr(z) - phi * s_cdf
        dens += phi * s_pdf
        slope -= phi * s_slope
    return big + small, dens / scale, slope / (scale * scale)


@inline
def direct_cdf(
    v: float, x: np.ndarray, w: np.ndarray, obs: int, nu: float, scale: float, c_t: float
) -> tuple[float, float]:
    """(F(v), f(v)) of the mixture, one component CDF and density per particle; ``c_t`` is the
    Student-t density's constant Gamma((nu+1)/2) / (Gamma(nu/2) sqrt(nu pi))."""
    f_sum = 0.0
    d_sum = 0.0
    for j in range(x.shape[0]):
        z = (v - x[j]) / scale
        if obs == OBS_NORMAL:
            f_sum += w[j] * ndtr(z)
            d_sum += w[j] * math.exp(-0.5 * z * z)
        else:
            f_sum += w[j] * stdtr(nu, z)
            d_sum += w[j] * math.exp(-0.5 * (nu + 1.0) * math.log1p(z * z / nu))
    return f_sum, d_sum * (_INV_SQRT_2PI if obs == OBS_NORMAL else c_t) / scale


@inline
def t_constant(nu: float) -> float:
    """Gamma((nu+1)/2) / (Gamma(nu/2) sqrt(nu pi))."""
    return math.exp(gammaln(0.5 * (nu + 1.0)) - gammaln(0.5 * nu)) / math.sqrt(nu * math.pi)


@inline
def _guess(t: float, mean: float, var: float, k3: float, k4: float, noise: float) -> float:
    """Cornish-Fisher quantile (standard quantile ``t``) of particles with mean, variance and
    third and fourth cumulants ``k3``, ``k4`` plus independent noise of variance ``noise``."""
    k2 = max(var, 0.0) + noise
    g1 = k3 / k2**1.5
    g2 = k4 / (k2 * k2)
    w = t + (t * t - 1.0) * g1 / 6.0 + (t**3 - 3.0 * t) * g2 / 24.0
    w -= (2.0 * t**3 - 5.0 * t) * g1 * g1 / 36.0
    return mean + math.sqrt(k2) * w  # type: ignore[no-any-return]


@kernel
def continuous_quantile(
    u: float, x: np.ndarray, w: np.ndarray, lo_x: float, hi_x: float, mean: float, var: float,
    k3: float, k4: float, obs: int, nu: float, scale: float, moments: np.ndarray, nb: int,
    width: float,
) -> float:  # fmt: skip
    """The u-quantile of the local level's predictive mixture (the module docstring); ``mean``,
    ``var``, ``k3``, ``k4``: the particles' weighted mean, variance and third and fourth
    cumulants, for the first guess (0, 0: the moment-matched Normal); ``nb > 0``: evaluate
    ``F`` from the ``nb`` bins of ``width`` of :func:`expand`, else directly."""
    if not 0.0 < u < 1.0:
        return -math.inf if u <= 0.0 else math.inf
    normal = obs == OBS_NORMAL
    t = ndtri(u) if normal else stdtrit(nu, u)
    lo = lo_x + scale * t  # F(lo) <= u <= F(hi)
    hi = hi_x + scale * t
    if not lo < hi:
        return lo if lo == hi else math.nan  # one point: every component's quantile
    c_t = 0.0 if normal else t_constant(nu)
    v = _guess(t, mean, var, k3, k4, scale * scale)
    if not lo < v < hi:
        v = 0.5 * (lo + hi)
    step = hi - lo
    before = step
    for _ in range(MAX_ITERATIONS):
        slope = 0.0
        if nb > 0:
            cdf, pdf, slope = expansion_cdf(v, moments, nb, width, lo_x, scale)
        else:
            cdf, pdf = direct_cdf(v, x, w, obs, nu, scale, c_t)
        g = cdf - u
        if abs(g) <= TOLERANCE:
            return v
        if g < 0.0:
            lo = v
        else:
            hi = v
        newton = v - g / pdf
        if nb > 0:  # Halley's step, taken unevaluated when its error bound is below TOLERANCE
            delta = -2.0 * g * pdf / (2.0 * pdf * pdf - g * slope)
            if lo < v + delta < hi:
                newton = v + delta
                r = abs(delta) / scale
                bound = abs(g + pdf * delta + 0.5 * slope * delta * delta) + EXPANSION_ERROR
                bound += DENSITY_ERROR * r + SLOPE_ERROR * r * r + CUBIC * r * r * r
                if bound <= TOLERANCE:
                    return newton
        before, step = step, abs(newton - v)
        if not lo < newton < hi or not step <= 0.5 * before:
            step = 0.5 * (hi - lo)
            newton = lo + step
            if not lo < newton < hi:  # no double between them
                return v
        v = newton
    return v
