"""What one would write per event in a Faust or Quix Streams handler: a dict of per-stream
state, orjson to decode, scipy for the maths. Same features as the engine's Normal-Gamma path:
validation, forgetting toward the prior, predictive tail probability before each update,
anomaly records, and one posterior summary per touched stream per batch, JSON-encoded."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from scipy import special, stats


def _tail_stats(df: float, loc: float, scale: float, x: float) -> float:
    return float(stats.t(df, loc=loc, scale=scale).sf(x))


def _tail_special(df: float, loc: float, scale: float, x: float) -> float:
    return float(special.stdtr(df, -(x - loc) / scale))


def _ppf_stats(df: float, q: float) -> float:
    return float(stats.t.ppf(q, df))


def _ppf_special(df: float, q: float) -> float:
    return float(special.stdtrit(df, q))


class PerEventNormalGamma:
    """Normal-Gamma with forgetting, one event at a time."""

    def __init__(
        self,
        rule: dict[str, Any],
        tail: Callable[[float, float, float, float], float],
        ppf: Callable[[float, float], float],
    ) -> None:
        p = rule["prior"]
        self.prior = (p["mu"], p["kappa"], p["alpha"], p["beta"])
        self.half_life = rule["half_life_seconds"]
        self.threshold = rule["anomaly_threshold"]
        self.levels = rule["credible_levels"]
        self.quantiles = rule["predictive_quantiles"]
        self.tail = tail
        self.ppf = ppf
        self.state: dict[tuple[str, str], list[float]] = {}

    def process(self, lines: Sequence[bytes]) -> list[bytes]:
        out: list[bytes] = []
        touched: dict[tuple[str, str], list[float]] = {}
        mu0, k0, a0, b0 = self.prior
        for line in lines:
            try:
                ev = orjson.loads(line)
                key, metric, ts, x = ev["key"], ev["metric"], float(ev["ts"]), float(ev["value"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                out.append(
                    orjson.dumps({"reason": "invalid", "raw": line.decode("utf-8", "replace")})
                )
                continue
            if not isinstance(key, str) or not isinstance(metric, str) or not math.isfinite(x):
                out.append(orjson.dumps({"reason": "invalid", "raw": line.decode()}))
                continue
            s = self.state.get((key, metric))
            if s is None:
                s = self.state[(key, metric)] = [mu0, k0, a0, b0, ts, 0.0]
            mu, kappa, alpha, beta, last, n_eff = s
            dt = ts - last if ts > last else 0.0
            d = 2.0 ** (-dt / self.half_life)
            if d != 1.0:
                w1, w0 = d * kappa, (1.0 - d) * k0
                k_new = w1 + w0
                beta = d * beta + (1.0 - d) * b0 + 0.5 * (w1 * w0 / k_new) * (mu - mu0) ** 2
                mu = (w1 * mu + w0 * mu0) / k_new
                kappa, alpha, n_eff = k_new, d * alpha + (1.0 - d) * a0, n_eff * d
            scale = math.sqrt(beta * (kappa + 1.0) / (alpha * kappa))
            p = self.tail(2.0 * alpha, mu, scale, x)
            if p < self.threshold:
                out.append(
                    orjson.dumps(
                        {"key": key, "metric": metric, "ts": ts, "value": x, "tail_probability": p}
                    )
                )
            dev = x - mu
            s[:] = [
                mu + dev / (kappa + 1.0),
                kappa + 1.0,
                alpha + 0.5,
                beta + kappa * dev * dev / (2.0 * (kappa + 1.0)),
                max(last, ts),
                n_eff + 1.0,
            ]
            touched[(key, metric)] = s
        for (key, metric), s in touched.items():
            out.append(orjson.dumps(self.summary(key, metric, s)))
        return out

    def summary(self, key: str, metric: str, s: list[float]) -> dict[str, Any]:
        mu, kappa, alpha, beta, last, n_eff = s
        df = 2.0 * alpha
        post = math.sqrt(beta / (alpha * kappa))
        pred = math.sqrt(beta * (kappa + 1.0) / (alpha * kappa))
        return {
            "key": key,
            "metric": metric,
            "family": "normal_gamma",
            "params": {"mu": mu, "kappa": kappa, "alpha": alpha, "beta": beta},
            "mean": mu,
            "sd": math.sqrt(beta / (kappa * (alpha - 1.0))) if alpha > 1 else None,
            "credible_intervals": {
                str(c): [
                    mu - post * self.ppf(df, 0.5 + c / 2),
                    mu + post * self.ppf(df, 0.5 + c / 2),
                ]
                for c in self.levels
            },
            "predictive_quantiles": {str(q): mu + pred * self.ppf(df, q) for q in self.quantiles},
            "n_eff": n_eff,
            "last_ts": last,
        }


def scipy_stats_baseline(rule: dict[str, Any]) -> PerEventNormalGamma:
    """The common way: scipy.stats distribution objects per event."""
    return PerEventNormalGamma(rule, _tail_stats, _ppf_stats)


def scipy_special_baseline(rule: dict[str, Any]) -> PerEventNormalGamma:
    """The fast way: scalar scipy.special calls."""
    return PerEventNormalGamma(rule, _tail_special, _ppf_special)
