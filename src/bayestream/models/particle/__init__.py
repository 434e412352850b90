"""Bootstrap particle filter family: a latent Gaussian random walk per stream, observed through
a local-level (Normal / Student-t), Poisson-rate or binomial-rate model.

Modules: :mod:`.philox` (counter-based generator, ziggurat normals), :mod:`.vmath` (vectorisable
``exp`` and normal tail), :mod:`.resampling` (schemes),
:mod:`.observation` (likelihoods and predictive tails), :mod:`.filter` (``seed_rows``,
``update``, ``update_parallel``; the state layout is documented there), :mod:`.quantiles`
(weighted particle and continuous predictive quantiles), :mod:`.counts` (count quantiles),
:mod:`.summaries` (``summarize``, ``kl``), :mod:`.codes` (option codes).
"""

from __future__ import annotations

from bayestream.models._stream import APPLIED, LATE
from bayestream.models.particle.codes import (
    MODEL_BINOMIAL_RATE,
    MODEL_LOCAL_LEVEL,
    MODEL_POISSON_RATE,
    OBS_NORMAL,
    OBS_STUDENT_T,
    RESAMPLE_RESIDUAL,
    RESAMPLE_STRATIFIED,
    RESAMPLE_SYSTEMATIC,
    X_MAX,
    row_width,
)
from bayestream.models.particle.filter import seed_rows, update, update_parallel
from bayestream.models.particle.quantiles import EXPANSION_ERROR, TOLERANCE
from bayestream.models.particle.summaries import gaussian_kl, kl, summarize

__all__ = [
    "APPLIED",
    "EXPANSION_ERROR",
    "LATE",
    "MODEL_BINOMIAL_RATE",
    "MODEL_LOCAL_LEVEL",
    "MODEL_POISSON_RATE",
    "OBS_NORMAL",
    "OBS_STUDENT_T",
    "RESAMPLE_RESIDUAL",
    "RESAMPLE_STRATIFIED",
    "RESAMPLE_SYSTEMATIC",
    "TOLERANCE",
    "X_MAX",
    "gaussian_kl",
    "kl",
    "row_width",
    "seed_rows",
    "summarize",
    "update",
    "update_parallel",
]
