r"""SLO violation probabilities: the posterior probability that a stream's parameter is on the
wrong side of its objective, and the error budget's burn rate, per posterior record.

A rule's ``slo = { objective = 0.001, above = true }`` names the parameter by its family:

- **beta_binomial**: ``p``, the probability of what ``value`` counts (errors out of
  requests): ``P(p > objective) = 1 - I_objective(a, b)`` (regularised incomplete beta);
- **gamma_poisson**: the rate ``lambda`` per unit of exposure: ``P(lambda > objective) =
  Q(a, b objective)`` (regularised upper incomplete gamma);
- **normal_gamma**: the mean ``mu`` (with ``transform = "log"``: ``exp(mu)``, the median on the
  original scale, against the objective; its marginal is Student-t with ``2 alpha`` degrees of
  freedom, location ``mu``, scale² ``beta / (alpha kappa)``), or with ``quantile = q`` the
  observation's ``q``-quantile ``mu + z_q / sqrt(tau)`` (latency objectives: "p95 under
  300 ms"): ``P = int Phi(sqrt(kappa tau) (mu - o + z_q / sqrt(tau))) Gamma(tau; alpha, beta)
  dtau`` (``o`` the objective on the model's scale), by 96-point Gauss-Legendre quadrature
  in ``log tau`` between the Gamma's 1e-15 and 1 - 1e-15 quantiles (within 1e-12 of adaptive
  quadrature in the tests);
- **dlm**: the deseasonalised level (Student-t with ``n`` degrees of freedom, location the
  level's mean, scale ``sqrt(S C*_00)``), against the objective on the model's scale (log,
  log1p);
- **dirichlet**: the probability of ``category``: ``Beta(alpha_c, alpha_0 - alpha_c)``;
- **particle**: the latent state on its natural scale (a level, a rate, a probability): the
  particles' weight beyond the objective.

With ``above = false`` the probability is of the other side. ``error_budget_burn`` is the burn
rate of the error budget from the posterior (1: spending it exactly as fast as the objective
allows; the posterior mean of the parameter over the objective, not a point estimate's):
``E[p] / objective`` for probabilities and rates (``E[1 - p] / (1 - objective)`` with
``above = false``), and for a ``quantile`` objective the posterior predictive's probability
of an observation beyond the objective over the ``1 - q`` allowed (below it, over the ``q``
allowed, with ``above = false``); ``null`` for a mean of
real values and for particles.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from bayestream.config import Rule
from bayestream.state import RuleStore

_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(96)
_TAIL = 1e-15  # the Gamma's mass left outside the quadrature, on each side


def slo_table(rule: Rule, store: RuleStore, slots: np.ndarray) -> np.ndarray:
    """``[m, 2]``: each stream's violation probability and error budget burn."""
    slo = rule.slo
    assert slo is not None
    params = store.params[slots]
    out = np.full((slots.shape[0], 2), np.nan)
    o = slo.objective
    with np.errstate(all="ignore"):
        if rule.family == "beta_binomial":
            a, b = params[:, 0], params[:, 1]
            out[:, 0] = special.betaincc(a, b, o)
            out[:, 1] = a / (a + b) / o if slo.above else b / (a + b) / (1.0 - o)
        elif rule.family == "gamma_poisson":
            a, b = params[:, 0], params[:, 1]
            out[:, 0] = special.gammaincc(a, b * o)
            out[:, 1] = a / b / o if slo.above else o / (a / b)
        elif rule.family == "dirichlet":
            c = rule.categories.index(slo.category or "")
            alpha = params[:, : len(rule.categories)]
            a = alpha[:, c]
            b = alpha.sum(axis=1) - a
            out[:, 0] = special.betaincc(a, b, o)
            out[:, 1] = a / (a + b) / o if slo.above else b / (a + b) / (1.0 - o)
        elif rule.family == "normal_gamma":
            _normal_gamma(rule, params[:, :4], out)
        elif rule.family == "particle":
            out[:, 0] = _particle_beyond(rule, params, o)
        elif rule.family == "dlm":
            from bayestream.models import dlm

            df, loc, scale = dlm.level_marginal(store.params, slots).T
            out[:, 0] = special.stdtr(df, (loc - _model_scale(rule, o)) / scale)
        if not slo.above:
            out[:, 0] = 1.0 - out[:, 0]
    return out


def _normal_gamma(rule: Rule, params: np.ndarray, out: np.ndarray) -> None:
    slo = rule.slo
    assert slo is not None
    mu, kappa, alpha, beta = params.T
    o = _model_scale(rule, slo.objective)
    if slo.quantile is None:
        scale = np.sqrt(beta / (alpha * kappa))
        out[:, 0] = special.stdtr(2.0 * alpha, (mu - o) / scale)  # P(mu > o)
        return
    z = special.ndtri(slo.quantile)
    # t = log tau on nodes between the Gamma(alpha, beta)'s far quantiles (rows: streams)
    lo = np.log(special.gammaincinv(alpha, _TAIL) / beta)[:, None]
    hi = np.log(special.gammainccinv(alpha, _TAIL) / beta)[:, None]
    t = 0.5 * (hi - lo) * _NODES[None, :] + 0.5 * (hi + lo)
    tau = np.exp(t)
    a, b = alpha[:, None], beta[:, None]
    density = np.exp(a * np.log(b) + a * t - b * tau - special.gammaln(a))  # p(tau) dtau/dt
    inside = special.ndtr(np.sqrt(kappa[:, None]) * (np.sqrt(tau) * (mu[:, None] - o) + z))
    out[:, 0] = (inside * density * (0.5 * (hi - lo))) @ _WEIGHTS
    # the predictive's probability beyond the objective over the allowed 1 - q
    df = 2.0 * alpha
    pred_scale = np.sqrt(beta * (kappa + 1.0) / (alpha * kappa))
    beyond = special.stdtr(df, (mu - o) / pred_scale)
    q = slo.quantile
    out[:, 1] = beyond / (1.0 - q) if slo.above else (1.0 - beyond) / q


def _model_scale(rule: Rule, objective: float) -> float:
    """The objective on the scale the rule models (its transform applied)."""
    if rule.transform == "log":
        return math.log(objective)
    if rule.transform == "log1p":
        return math.log1p(objective)
    return objective


def _particle_beyond(rule: Rule, params: np.ndarray, o: float) -> np.ndarray:
    p = rule.particles
    x, lw = params[:, :p], params[:, p : 2 * p]
    w = np.exp(lw - lw.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    if rule.model == "poisson_rate":
        natural = np.exp(x)
    elif rule.model == "binomial_rate":
        natural = special.expit(x)
    else:
        natural = x
    return np.asarray((w * (natural > o)).sum(axis=1))


__all__ = ["slo_table"]
