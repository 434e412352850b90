r"""Bootstrap particle filter: batch kernels that apply events to stream rows in place.

State of a stream with ``P`` particles: row ``s`` of ``params``, the family's
``row_width(P) = 2P + 2`` cells, then the columns every family has after its own
(:mod:`bayestream.models._protocol`: ``EXTRA`` columns, then the drift block of a rule with
drift):

    params[s, 0:P]    particles x_j (the latent state)
    params[s, P:2P]   normalised log-weights lw_j (logsumexp = 0)
    params[s, 2P]     Philox key (raw uint64 bits)
    params[s, 2P+1]   Philox counter (raw uint64 bits)
    params[s, 2P+2]   the anomaly probability of the stream's newest event (written here)
    params[s, 2P+3:2P+2+EXTRA]  the other extra columns: the conjugate families' outlier run and
                      monitor (unused: particle rules follow a moving level by their process
                      noise), the alert window
    params[s, 2P+2+EXTRA:]  the drift block (:mod:`bayestream.models._drift`), with
                      ``[rule.drift]``

so ``params`` is at least ``2P + 2 + EXTRA`` wide; plus ``last_ts[s]`` (NaN: no event yet),
``n_eff[s]`` (events applied since the particles were drawn) and ``obs_size[s]`` (trials or
exposure of the newest event). Model (Gordon, Salmond &
Smith 1993, the bootstrap filter): a Gaussian random walk

    x_t = x_{t-1} + sqrt(q dt) eps,   eps ~ N(0, 1),

with ``dt`` the elapsed event seconds (1 per event with ``per_event``), observed through one of
the models of :mod:`.observation`. Per event, in order:

1. lateness as in :func:`bayestream.models._stream.begin_event`: an event more than
   ``max_lateness`` behind the newest is LATE and touches nothing; an out-of-order one within
   it gets ``dt = 0``. A stream with no event yet, or idle past its TTL (``last_ts <
   expire_before``), (re)draws ``x_j ~ Normal(init_mean, init_sd)`` with uniform weights from
   its own generator (key kept, counter continued), ``n_eff = 0``, and takes ``dt = 0``;
2. propagation (skipped when ``q dt = 0``, drawing nothing);
3. the predictive tail probability of the observation under the weighted particles, before
   the weights see it (sides 0 upper, 1 lower, 2 two-sided; mid-p for counts);
4. ``lw_j += log p(y | x_j)``, normalised by log-sum-exp; ``ESS = 1 / sum w_j^2``; resampling
   (:mod:`.resampling`) when ``ESS < ess_threshold P``, after which ``lw_j = -log P``.

Degenerate events keep the state finite: if every particle's log-likelihood is -inf or NaN
(an observation far outside every particle, or a count the model cannot produce) the previous
weights are kept unchanged and nothing is resampled (the tail probability is still reported;
it is 0 for an impossible observation); particles are clamped to ``|x| <= X_MAX``. A NaN
tail (e.g. a NaN observation) is reported as 0.

Generator use per event (blocks of the counter): ceil(P/4) for an initial draw and for a
propagation (ziggurat normals from the four 32-bit words of each block, plus ~0.4% of P/4 for
its slow path; :mod:`.philox`), and 1 (systematic, residual) or ceil(P/2) (stratified) for a
resampling. With Normal noise the tail and log-likelihood pass and the normalisation use the
branch-free ``exp`` and normal tail of :mod:`.vmath` and sums in a fixed order, so those loops
run in SIMD lanes.
Everything a stream's events do depends only on its row and the events, so results do not
depend on batching or on the other streams, and :func:`update_parallel` equals :func:`update`
bit for bit.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from bayestream.models._drift import drift_step
from bayestream.models._jit import kernel, parallel_kernel
from bayestream.models._outlier import mixture_probability, wants_interval
from bayestream.models._protocol import (
    OUT_PIT,
    OUT_PRED_HI,
    OUT_PRED_LO,
    OUT_PROB,
    OUT_TAIL,
    S_DRIFT,
    S_IVL_UPPER,
    S_OUTLIER_RATE,
    S_OUTLIER_SCALE,
    S_ROBUST,
    S_ROBUST_MIN,
)
from bayestream.models._stream import APPLIED, LATE, side_tail
from bayestream.models.particle.codes import (
    MODEL_BINOMIAL_RATE,
    MODEL_LOCAL_LEVEL,
    OBS_NORMAL,
    X_MAX,
)
from bayestream.models.particle.observation import (
    binomial_pass,
    continuous_constant,
    continuous_pass,
    normal_pass,
    outlier_log_density,
    poisson_pass,
    valid_count,
)
from bayestream.models.particle.philox import gaussian_fill
from bayestream.models.particle.resampling import resample
from bayestream.models.particle.summaries import predictive_interval
from bayestream.models.particle.vmath import exp as vexp
from bayestream.models.particle.vmath import sum2

CHUNKS = 64
"""update_parallel splits the batch's streams into at most this many contiguous chunks (each
with its own scratch), shared among numba's threads; a constant, because a kernel that asks
numba for its thread count cannot be cached on disk."""


@kernel
def seed_rows(params: np.ndarray, p: int, slots: np.ndarray, keys: np.ndarray) -> None:
    """Give rows ``slots[i]`` (of ``p`` particles) the generator key ``keys[i]`` (uint64)
    and counter 0."""
    bits = params.view(np.uint64)
    for i in range(slots.shape[0]):
        bits[slots[i], 2 * p] = keys[i]
        bits[slots[i], 2 * p + 1] = np.uint64(0)


@kernel
def apply_event(
    params: np.ndarray,
    bits: np.ndarray,
    last_ts: np.ndarray,
    n_eff: np.ndarray,
    obs_size: np.ndarray,
    p: int,
    model: int,
    obs: int,
    nu: float,
    q: float,
    per_event: bool,
    r: float,
    init_mean: float,
    init_sd: float,
    resampling: int,
    ess_threshold: float,
    side: int,
    max_lateness: float,
    s: int,
    t: float,
    y: float,
    size: float,
    expire_before: float,
    new: np.ndarray,
    w: np.ndarray,
    z: np.ndarray,
    words: np.ndarray,
    settings: np.ndarray,
    out: np.ndarray,
    i: int,
    cur_post: np.ndarray,
    ref_post: np.ndarray,
) -> np.int8:
    """One event on row ``s`` (see the module docstring); writes its tail probability, PIT
    and anomaly probability into ``out[i]`` and returns its status. ``new``, ``w`` and ``z``
    are float scratch of length ``p``, ``words`` uint64 scratch of length ``4 ceil(p / 4)``."""
    x = params[s, 0:p]
    lw = params[s, p : 2 * p]
    key = bits[s, 2 * p]
    counter = bits[s, 2 * p + 1]
    newest = last_ts[s]
    fresh = math.isnan(newest) or newest < expire_before
    if fresh:
        last_ts[s] = t
        n_eff[s] = 0.0
        counter = gaussian_fill(x, x, False, init_mean, init_sd, X_MAX, key, counter, words, z)
        lw[:] = -math.log(p)
        dt = 0.0
    else:
        if t < newest - max_lateness:
            return LATE
        if per_event:
            dt = 1.0
        else:
            dt = t - newest if t > newest else 0.0
        if t > newest:
            last_ts[s] = t
    var = q * dt
    if var > 0.0:
        sd = min(math.sqrt(var), X_MAX)
        counter = gaussian_fill(x, x, True, 0.0, sd, X_MAX, key, counter, words, z)

    if model == MODEL_LOCAL_LEVEL:
        ok = True
        if obs == OBS_NORMAL:
            lower, at, upper, top = normal_pass(x, lw, new, w, z, y, math.sqrt(r))
        else:
            lower, at, upper, top = continuous_pass(x, lw, new, y, math.sqrt(r), obs, nu)
    else:
        binomial = model == MODEL_BINOMIAL_RATE
        ok = valid_count(y, size, binomial)
        if not ok:
            lower, at, upper, top = 0.0, 0.0, 0.0, -math.inf
        elif binomial:
            lower, at, upper, top = binomial_pass(x, lw, new, y, size)
        else:
            lower, at, upper, top = poisson_pass(x, lw, new, y, size)
    tail = side_tail(lower + 0.5 * at, upper + 0.5 * at, side) if ok else 0.0
    if tail != tail:
        tail = 0.0
    pit = min(lower + 0.5 * at, 1.0) if ok else np.nan
    log_q = outlier_log_density(x, lw, w, model, obs, nu, r, settings[S_OUTLIER_SCALE], y, size)
    if model != MODEL_LOCAL_LEVEL:
        log_p = math.log(at) if ok else -math.inf
    else:
        log_p = math.inf  # set below from the normalising constant
    prob = 1.0

    if top > -math.inf:  # else: no particle can explain y; keep the weights
        for j in range(p):
            e = vexp(new[j] - top)
            w[j] = e
            z[j] = e * e
        total, squares = sum2(w, z, p)
        if model == MODEL_LOCAL_LEVEL:
            log_p = top + math.log(total) + continuous_constant(obs, nu, r)
        prob = mixture_probability(log_q - log_p, settings[S_OUTLIER_RATE])
    if wants_interval(settings, tail, prob):  # from the particles before the update; z is free
        out[i, OUT_PRED_LO], out[i, OUT_PRED_HI] = predictive_interval(
            x, lw, z, settings[S_IVL_UPPER], model, obs, nu, math.sqrt(r), size
        )
    if top > -math.inf:
        robust = settings[S_ROBUST] == 1.0 and n_eff[s] >= settings[S_ROBUST_MIN]
        weight = 1.0 - prob if robust else 1.0
        if weight != 1.0:  # temper the likelihood: lw_j + weight log p(y | x_j)
            top = -math.inf
            for j in range(p):
                v = lw[j] + weight * (new[j] - lw[j]) if weight > 0.0 else lw[j]
                new[j] = v
                top = max(top, v)
            for j in range(p):
                e = vexp(new[j] - top)
                w[j] = e
                z[j] = e * e
            total, squares = sum2(w, z, p)
        log_total = math.log(total)
        for j in range(p):  # (new - top) first: top may be so large that top + log_total = top
            lw[j] = (new[j] - top) - log_total
        if total * total < ess_threshold * p * squares:  # ESS = total^2 / squares
            counter = resample(x, w, total, resampling, key, counter, new)
            x[:] = new
            lw[:] = -math.log(p)
    bits[s, 2 * p + 1] = counter
    n_eff[s] += 1.0
    obs_size[s] = size
    out[i, OUT_TAIL] = tail
    out[i, OUT_PIT] = pit
    out[i, OUT_PROB] = prob
    params[s, 2 * p + 2] = prob
    if settings[S_DRIFT] == 1.0 and ok:
        # particle windows are never categorical: 3 statistics; no reset (see the config)
        drift_step(params[s], settings, fresh, t, y, size, out, i, cur_post, ref_post)
    return APPLIED


@kernel
def update(
    params: np.ndarray,
    last_ts: np.ndarray,
    n_eff: np.ndarray,
    obs_size: np.ndarray,
    n_particles: int,
    model: int,
    obs: int,
    nu: float,
    q: float,
    per_event: bool,
    r: float,
    init_mean: float,
    init_sd: float,
    resampling: int,
    ess_threshold: float,
    side: int,
    max_lateness: float,
    slots: np.ndarray,
    ts: np.ndarray,
    x: np.ndarray,
    size: np.ndarray,
    expire_before: np.ndarray,
    settings: np.ndarray,
    out: np.ndarray,
    out_status: np.ndarray,
) -> None:
    """Apply events ``i`` in order to rows ``slots[i]``; ``out[i]`` gets the event's tail
    probability, PIT and anomaly probability (columns of :mod:`bayestream.models._protocol`),
    ``out_status[i]`` APPLIED or LATE."""
    p = n_particles
    bits = params.view(np.uint64)
    new = np.empty(p)
    w = np.empty(p)
    z = np.empty(p)
    words = np.empty(4 * ((p + 3) // 4), dtype=np.uint64)
    cur_post, ref_post = np.empty(7), np.empty(7)  # window model + statistics
    for i in range(slots.shape[0]):
        out_status[i] = apply_event(
            params, bits, last_ts, n_eff, obs_size, p, model, obs, nu, q, per_event, r,
            init_mean, init_sd, resampling, ess_threshold, side, max_lateness,
            slots[i], ts[i], x[i], size[i], expire_before[i], new, w, z, words,
            settings, out, i, cur_post, ref_post,
        )  # fmt: skip


@parallel_kernel
def update_parallel(
    params: np.ndarray,
    last_ts: np.ndarray,
    n_eff: np.ndarray,
    obs_size: np.ndarray,
    n_particles: int,
    model: int,
    obs: int,
    nu: float,
    q: float,
    per_event: bool,
    r: float,
    init_mean: float,
    init_sd: float,
    resampling: int,
    ess_threshold: float,
    side: int,
    max_lateness: float,
    slots: np.ndarray,
    ts: np.ndarray,
    x: np.ndarray,
    size: np.ndarray,
    expire_before: np.ndarray,
    settings: np.ndarray,
    out: np.ndarray,
    out_status: np.ndarray,
) -> None:
    """:func:`update` with distinct streams in parallel (``numba.prange`` over chunks of
    streams, each stream's events in their order); the same results bit for bit."""
    p = n_particles
    n = slots.shape[0]
    if n == 0:
        return
    bits = params.view(np.uint64)
    order = np.argsort(slots, kind="mergesort")  # stable: a stream's events keep their order
    starts = np.empty(n + 1, dtype=np.int64)
    groups = 0
    for k in range(n):
        if k == 0 or slots[order[k]] != slots[order[k - 1]]:
            starts[groups] = k
            groups += 1
    starts[groups] = n
    chunks = min(groups, CHUNKS)
    for c in numba.prange(chunks):
        new = np.empty(p)
        w = np.empty(p)
        z = np.empty(p)
        words = np.empty(4 * ((p + 3) // 4), dtype=np.uint64)
        cur_post, ref_post = np.empty(7), np.empty(7)  # window model + statistics
        for g in range(c * groups // chunks, (c + 1) * groups // chunks):
            for k in range(starts[g], starts[g + 1]):
                i = order[k]
                out_status[i] = apply_event(
                    params, bits, last_ts, n_eff, obs_size, p, model, obs, nu, q, per_event,
                    r, init_mean, init_sd, resampling, ess_threshold, side, max_lateness,
                    slots[i], ts[i], x[i], size[i], expire_before[i], new, w, z, words,
                    settings, out, i, cur_post, ref_post,
                )  # fmt: skip
