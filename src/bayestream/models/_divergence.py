r"""Closed-form KL divergences between posteriors of one family: KL(P || Q) = E_P[log p/q].

Drift detection compares window posteriors with these, and each family module exposes its own
as ``kl``. Inputs are parameter vectors in the state-row parameterisation of the family.
"""

from __future__ import annotations

import math

import numpy as np

from bayestream.models._jit import kernel
from bayestream.models._special import betaln, gammaln, psi


@kernel
def kl_normal_gamma(p: np.ndarray, q: np.ndarray) -> float:
    """KL(NG(p) || NG(q)) in closed form.

    KL = KL_Gamma(alpha_p, beta_p || alpha_q, beta_q)
         + 1/2 [kappa_q/kappa_p - 1 - ln(kappa_q/kappa_p) + kappa_q (alpha_p/beta_p)(mu_p-mu_q)^2]
    """
    mu1, k1, a1, b1 = p[0], p[1], p[2], p[3]
    mu2, k2, a2, b2 = q[0], q[1], q[2], q[3]
    gamma_part = (
        (a1 - a2) * psi(a1)
        - gammaln(a1)
        + gammaln(a2)
        + a2 * (math.log(b1) - math.log(b2))
        + a1 * (b2 - b1) / b1
    )
    ratio = k2 / k1
    normal_part = 0.5 * (ratio - 1.0 - math.log(ratio) + k2 * (a1 / b1) * (mu1 - mu2) ** 2)
    return gamma_part + normal_part  # type: ignore[no-any-return]


@kernel
def kl_beta(p: np.ndarray, q: np.ndarray) -> float:
    """KL(Beta(p) || Beta(q)) in closed form."""
    a1, b1, a2, b2 = p[0], p[1], q[0], q[1]
    return (  # type: ignore[no-any-return]
        betaln(a2, b2)
        - betaln(a1, b1)
        + (a1 - a2) * psi(a1)
        + (b1 - b2) * psi(b1)
        + (a2 - a1 + b2 - b1) * psi(a1 + b1)
    )


@kernel
def kl_gamma(p: np.ndarray, q: np.ndarray) -> float:
    """KL(Gamma(p) || Gamma(q)), shape-rate parameterisation, in closed form."""
    a1, b1, a2, b2 = p[0], p[1], q[0], q[1]
    return (  # type: ignore[no-any-return]
        (a1 - a2) * psi(a1)
        - gammaln(a1)
        + gammaln(a2)
        + a2 * (math.log(b1) - math.log(b2))
        + a1 * (b2 - b1) / b1
    )


@kernel
def kl_dirichlet(p: np.ndarray, q: np.ndarray) -> float:
    """KL(Dir(p) || Dir(q)) in closed form."""
    sp = p.sum()
    sq = q.sum()
    out = gammaln(sp) - gammaln(sq)
    digamma_sp = psi(sp)
    for k in range(p.shape[0]):
        out += gammaln(q[k]) - gammaln(p[k]) + (p[k] - q[k]) * (psi(p[k]) - digamma_sp)
    return out


__all__ = ["kl_beta", "kl_dirichlet", "kl_gamma", "kl_normal_gamma"]
