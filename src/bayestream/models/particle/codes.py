"""Integer codes of the particle family's options, as the kernels receive them."""

from __future__ import annotations

MODEL_LOCAL_LEVEL = 0
MODEL_POISSON_RATE = 1
MODEL_BINOMIAL_RATE = 2

OBS_NORMAL = 0
OBS_STUDENT_T = 1

RESAMPLE_SYSTEMATIC = 0
RESAMPLE_STRATIFIED = 1
RESAMPLE_RESIDUAL = 2

X_MAX = 1e150
"""Particles are clamped to [-X_MAX, X_MAX], so squares and weighted sums stay finite."""


def row_width(n_particles: int) -> int:
    """Cells of a state row: particles, log-weights, generator key and counter."""
    return 2 * n_particles + 2
