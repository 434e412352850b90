"""SLO violation probabilities (engine/slo.py) against scipy, and their configuration."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from jsonschema import Draft202012Validator
from scipy import integrate, stats

from bayestream import Engine, RawBatch, parse_config
from bayestream.errors import BayestreamError
from bayestream.schema.contract import json_schema


def _run(rule: dict[str, Any], events: list[dict[str, Any]]) -> tuple[np.ndarray, dict[str, Any]]:
    engine = Engine(parse_config({"rule": [{"metric": "m", "robust": False, **rule}]}))
    msgs = [json.dumps({"key": "k", "metric": "m", "ts": float(t), **e}).encode()
            for t, e in enumerate(events)]  # fmt: skip
    out = engine.process(RawBatch.from_messages(msgs))
    record = json.loads(out.posteriors.json_lines().decode().splitlines()[-1])
    assert list(out.posteriors)[-1].to_dict() == record
    Draft202012Validator(json_schema("posteriors")).validate(record)
    return next(engine.state_rows()).params, record["slo"]


@pytest.mark.parametrize("above", [True, False])
def test_beta_binomial_error_rate(above: bool) -> None:
    rng = np.random.default_rng(1)
    events = [{"value": int(rng.binomial(200, 0.011)), "trials": 200} for _ in range(80)]
    params, slo = _run({"family": "beta_binomial", "slo": {"objective": 0.01, "above": above}},
                       events)  # fmt: skip
    a, b = params[:2]
    sf = stats.beta(a, b).sf(0.01)
    assert slo["violation_probability"] == pytest.approx(sf if above else 1 - sf, rel=1e-10)
    burn = a / (a + b) / 0.01 if above else b / (a + b) / 0.99
    assert slo["error_budget_burn"] == pytest.approx(burn, rel=1e-12)
    assert slo["objective"] == 0.01


def test_gamma_poisson_rate() -> None:
    rng = np.random.default_rng(2)
    events = [{"value": int(rng.poisson(30)), "exposure": 10.0} for _ in range(50)]
    params, slo = _run({"family": "gamma_poisson", "slo": {"objective": 3.1}}, events)
    a, b = params[:2]
    assert slo["violation_probability"] == pytest.approx(stats.gamma(a, scale=1 / b).sf(3.1),
                                                          rel=1e-10)  # fmt: skip
    assert slo["error_budget_burn"] == pytest.approx(a / b / 3.1, rel=1e-12)


@pytest.mark.parametrize("transform", ["none", "log"])
def test_normal_gamma_mean(transform: str) -> None:
    """The mean's Student-t marginal; with the log transform, exp(mu) against the objective."""
    rng = np.random.default_rng(3)
    values = np.exp(rng.normal(4.6, 0.3, 100))
    objective = 101.0 if transform == "log" else float(values.mean()) * 1.01
    params, slo = _run({"family": "normal_gamma", "transform": transform,
                        "slo": {"objective": objective}},
                       [{"value": float(v)} for v in values])  # fmt: skip
    mu, kappa, alpha, beta = params[:4]
    o = math.log(objective) if transform == "log" else objective
    t = stats.t(2 * alpha, mu, math.sqrt(beta / (alpha * kappa)))
    assert slo["violation_probability"] == pytest.approx(t.sf(o), rel=1e-9)
    assert slo["error_budget_burn"] is None


def test_normal_gamma_quantile_objective() -> None:
    """ "p95 of latency under 300 ms": P(mu + z_0.95 / sqrt(tau) > log 300) against scipy's
    adaptive quadrature over tau (to 1e-10); the burn: the predictive's share above 300 ms
    over the 5% allowed."""
    rng = np.random.default_rng(4)
    values = np.exp(rng.normal(5.0, 0.25, 40))
    params, slo = _run({"family": "normal_gamma", "transform": "log",
                        "prior": {"mu": 5.0, "kappa": 0.1, "alpha": 2.0, "beta": 0.1},
                        "slo": {"objective": 250.0, "quantile": 0.95}},
                       [{"value": float(v)} for v in values])  # fmt: skip
    mu, kappa, alpha, beta = params[:4]
    o, z = math.log(250.0), stats.norm.ppf(0.95)

    def integrand(tau: float) -> float:
        inside = stats.norm.cdf(math.sqrt(kappa * tau) * (mu - o + z / math.sqrt(tau)))
        return float(inside * stats.gamma(alpha, scale=1 / beta).pdf(tau))

    scale = alpha / beta
    expected, _ = integrate.quad(integrand, 0, 50 * scale, points=[scale], limit=400,
                                 epsabs=1e-12)  # fmt: skip
    assert 0.01 < expected < 0.99  # the case is not trivial
    assert slo["violation_probability"] == pytest.approx(expected, abs=1e-10)
    pred = stats.t(2 * alpha, mu, math.sqrt(beta * (kappa + 1) / (alpha * kappa)))
    assert slo["error_budget_burn"] == pytest.approx(pred.sf(o) / 0.05, rel=1e-9)


def test_dirichlet_category() -> None:
    rule = {"family": "dirichlet", "prior": {"categories": ["2xx", "5xx"]},
            "slo": {"objective": 0.05, "category": "5xx"}}  # fmt: skip
    params, slo = _run(rule, [{"value": "5xx" if t % 15 == 0 else "2xx"} for t in range(90)])
    a, rest = params[1], params[0]
    assert slo["violation_probability"] == pytest.approx(stats.beta(a, rest).sf(0.05), rel=1e-10)


def test_particle_latent_state() -> None:
    rule = {"family": "particle", "model": "local_level", "particles": 128,
            "process_noise": 0.01, "observation_noise": 1.0, "initial": {"mean": 0.0, "sd": 2.0},
            "slo": {"objective": 0.2}}  # fmt: skip
    rng = np.random.default_rng(5)
    params, slo = _run(rule, [{"value": float(v)} for v in rng.normal(0.2, 1.0, 60)])
    x, lw = params[:128], params[128:256]
    w = np.exp(lw - lw.max())
    assert slo["violation_probability"] == pytest.approx(float(w[x > 0.2].sum() / w.sum()),
                                                          rel=1e-12)  # fmt: skip


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ({"family": "beta_binomial", "slo": {"objective": 1.5}}, "slo.objective"),
        ({"family": "gamma_poisson", "slo": {"objective": 1.0, "quantile": 0.9}}, "slo.quantile"),
        (
            {"family": "dirichlet", "prior": {"categories": ["a", "b"]}, "slo": {"objective": 0.1}},
            "slo.category",
        ),
        ({"family": "normal_gamma", "slo": {"objective": 1.0, "category": "a"}}, "slo.category"),
        (
            {"family": "normal_gamma", "transform": "log", "slo": {"objective": -1.0}},
            "slo.objective",
        ),
    ],
)
def test_bad_slo_configurations_name_the_field(rule: dict[str, Any], field: str) -> None:
    with pytest.raises(BayestreamError, match=field.replace(".", r"\.")):
        parse_config({"rule": [{"metric": "m", **rule}]})


def test_dlm_deseasonalised_level() -> None:
    """A dlm rule's level: its Student-t marginal (the summaries' mean and scale) beyond the
    objective, the objective log1p-ed with the transform (set one scale above the level)."""
    from bayestream.models import dlm

    rng = np.random.default_rng(6)
    events = [{"value": float(rng.poisson(18 + 6 * math.sin(t / 24 * 2 * math.pi)))}
              for t in range(300)]  # fmt: skip
    rule = {"family": "dlm", "transform": "log1p",
            "seasonal": [{"period_events": 24, "harmonics": 2}]}  # fmt: skip
    params, _ = _run({**rule, "slo": {"objective": 1.0}}, events)
    df, loc, scale = dlm.level_marginal(params[None, :], np.zeros(1, dtype=np.int64))[0]
    objective = math.expm1(loc + scale)
    _, slo = _run({**rule, "slo": {"objective": objective}}, events)
    expected = stats.t(df, loc, scale).sf(math.log1p(objective))
    assert expected == pytest.approx(stats.t(df).sf(1.0), rel=1e-9)  # about 0.16
    assert slo["violation_probability"] == pytest.approx(expected, rel=1e-9)
