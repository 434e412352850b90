"""Calibration benchmark: anomaly probabilities against known injected anomalies, and PIT
histograms of well-specified streams.

Prints one JSON document and writes ``benchmarks/results/reliability.png`` (reliability
diagrams) and ``benchmarks/results/pit_hist.png`` (PIT histograms); ``--quick`` draws them into
a temporary folder that it removes before exit (or writes them to ``--plots DIR``).
Run: ``python benchmarks/bench_calibration.py [--quick]``.

Anomaly probability (``out.scores[:, OUT_PROB]``) against labels, per data set:

- Well-specified: data drawn from the model the probability assumes (``_outlier.py``): each
  event is, independently, an outlier with probability ``outlier_rate``; a clean event is a
  draw from the stream's distribution, an outlier a draw from the same distribution widened
  ``outlier_scale`` times. ``normal_gamma``: N(mu, sigma^2), outliers N(mu, (c sigma)^2), per
  stream mu ~ U(-5, 5), sigma ~ U(0.5, 3); at ``outlier_rate`` 0.01 and at the default 0.001.
  ``gamma_poisson``: Poisson(lambda), lambda ~ U(2, 20), outliers Negative Binomial with mean
  lambda and variance c^2 lambda. ``beta_binomial``: Binomial(50, p), p ~ U(0.02, 0.2),
  outliers uniform on 0..50. ``outlier_scale`` c = 10 (the default), ``robust`` on (the
  default). The posterior starts from a weak prior, so the first ``--burn-in`` events of each
  stream are left out of the headline figures (they are reported too). ``stuck_streams``
  counts streams where more than half of the clean events after the burn-in get a
  probability above 0.5 (a robust posterior that locked onto early outliers), with the
  figures without them.
- Misspecified (``normal_gamma``, configured rate 0.01, scale 10): outliers as fixed spikes at
  mu +- 4 sigma or at mu + 8 sigma; outliers N(mu, (3 sigma)^2); five times the configured
  outlier rate; clean values Student-t with 3 degrees of freedom (scaled to sd sigma).

Figures: Brier score, ECE and MCE over 10 equal-width bins (``bayestream.calibration
.reliability``), the Brier skill score against the constant forecast of the observed
outlier frequency (ECE alone cannot tell a useful forecast from the constant one), and the
area under the ROC curve. Nearly every event has a probability close to 0, so the ECE is
dominated by the first bin; ``ece_flagged`` is the ECE among the events with a probability of
at least 0.1 alone, where miscalibration shows.

PIT (``out.scores[:, OUT_PIT]``): streams whose parameters are drawn from the rule's prior and
``robust = false``, so the one-step predictive is exactly the distribution of the next value
and the PITs are iid Uniform(0, 1) from the first event on. For counts, the PIT is randomised:
``u = mid-PIT + (v - 1/2) P(X = x)``, with ``v ~ U(0, 1)`` and ``P(X = x)`` the conjugate
predictive pmf computed independently with scipy.stats. Also the default ``robust = true``
on the same clean real-valued streams, and a misspecified contrast (Student-t 3 data).
Uniformity: ``bayestream.calibration.PitMonitor`` (20 bins, no forgetting), chi-square
p-value. Every stream goes through the family kernels as ``Engine.process`` calls them; a
cross-check sends some streams through ``Engine.process`` as JSON and compares the scores.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_drift import START_TS, Kernel, source_info  # the kernel path, shared

RESULTS = Path(__file__).resolve().parent / "results"
SEED = 20261210
SCALE = 10.0
BINS = 10
PIT_BINS = 20
FLAGGED = 0.1  # ECE among the events whose probability is at least this (the ones acted on)
NORMAL_PRIOR = {"mu": 0.0, "kappa": 0.01, "alpha": 1.0, "beta": 1.0}
POISSON_PRIOR = {"alpha": 1.0, "beta": 0.1}
BINOMIAL_PRIOR = {"alpha": 1.0, "beta": 1.0}
TRIALS = 50


def rule(family: str, prior: dict[str, float], **extra: Any) -> dict[str, Any]:
    return {"metric": "m", "family": family, "prior": prior, **extra}


# --- anomaly data sets ------------------------------------------------------------------------


def anomaly_set(
    name: str, streams: int, events: int, rng: np.random.Generator
) -> tuple[dict[str, Any], np.ndarray, np.ndarray, np.ndarray]:
    """``(rule, x, size, label)`` of one data set (``[streams, events]`` arrays)."""
    shape = (streams, events)
    size = np.ones(shape)
    rate = 0.001 if name == "normal_rate_0.001" else 0.01
    true_rate = 5 * rate if name == "misspecified_rate_x5" else rate
    label = rng.random(shape) < true_rate
    if name.startswith("normal") or name.startswith("misspecified"):
        mu = rng.uniform(-5.0, 5.0, (streams, 1))
        sigma = rng.uniform(0.5, 3.0, (streams, 1))
        if name == "misspecified_student_t3":
            clean = mu + sigma * rng.standard_t(3, shape) / math.sqrt(3.0)
        else:
            clean = rng.normal(mu, sigma, shape)
        if name == "misspecified_spikes_4sd":
            outlier = mu + np.where(rng.random(shape) < 0.5, -4.0, 4.0) * sigma
        elif name == "misspecified_spikes_8sd":
            outlier = np.broadcast_to(mu + 8.0 * sigma, shape)
        elif name == "misspecified_scale_3":
            outlier = rng.normal(mu, 3.0 * sigma, shape)
        else:
            outlier = rng.normal(mu, SCALE * sigma, shape)
        x = np.where(label, outlier, clean)
        r = rule("normal_gamma", NORMAL_PRIOR, outlier_rate=rate, outlier_scale=SCALE)
    elif name == "poisson":
        lam = rng.uniform(2.0, 20.0, (streams, 1)) * np.ones(shape)
        var = SCALE**2 * lam
        p = lam / var  # Negative Binomial with this mean and variance
        outlier = rng.negative_binomial(lam * p / (1.0 - p), p)
        x = np.where(label, outlier, rng.poisson(lam)).astype(np.float64)
        r = rule("gamma_poisson", POISSON_PRIOR, outlier_rate=rate, outlier_scale=SCALE)
    elif name == "binomial":
        p = rng.uniform(0.02, 0.2, (streams, 1)) * np.ones(shape)
        outlier = rng.integers(0, TRIALS + 1, shape)
        x = np.where(label, outlier, rng.binomial(TRIALS, p)).astype(np.float64)
        size[:] = TRIALS
        r = rule("beta_binomial", BINOMIAL_PRIOR, outlier_rate=rate, outlier_scale=SCALE)
    else:
        raise ValueError(name)
    return r, x, size, label


WELL_SPECIFIED = ["normal", "normal_rate_0.001", "poisson", "binomial"]
MISSPECIFIED = [
    "misspecified_spikes_4sd",
    "misspecified_spikes_8sd",
    "misspecified_scale_3",
    "misspecified_rate_x5",
    "misspecified_student_t3",
]


def auc(prob: np.ndarray, label: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann-Whitney, ties counted half)."""
    from scipy.stats import rankdata

    pos = int(label.sum())
    neg = label.size - pos
    if pos == 0 or neg == 0:
        return None
    ranks = rankdata(prob)
    return float((ranks[label].sum() - pos * (pos + 1) / 2) / (pos * neg))


def calibration_figures(prob: np.ndarray, label: np.ndarray) -> dict[str, Any]:
    from bayestream.calibration import reliability

    rel = reliability(prob, label, bins=BINS)
    flagged = prob >= FLAGGED
    rel_flagged = reliability(prob[flagged], label[flagged], bins=BINS)
    base = float(label.mean())
    brier_ref = base * (1.0 - base)
    return {
        "events": int(rel.count),
        "outliers": int(label.sum()),
        "outlier_frequency": round(base, 6),
        "mean_probability": round(float(prob.mean()), 6),
        "brier": round(rel.brier, 6),
        "brier_skill_score": round(1.0 - rel.brier / brier_ref, 4) if brier_ref > 0 else None,
        "ece": round(rel.ece, 6),
        "mce": round(rel.mce, 4),
        "flagged_events": int(flagged.sum()),
        "ece_flagged": None if rel_flagged.count == 0 else round(rel_flagged.ece, 4),
        "auc": None if (a := auc(prob, label)) is None else round(a, 4),
        "table": [
            {
                "bin": [b.lower, b.upper],
                "count": b.count,
                "mean_probability": None
                if math.isnan(b.mean_probability)
                else round(b.mean_probability, 4),
                "observed_frequency": None
                if math.isnan(b.observed_frequency)
                else round(b.observed_frequency, 4),
            }
            for b in rel.table
        ],
    }


def run_anomaly(name: str, streams: int, events: int, burn_in: int) -> dict[str, Any]:
    from bayestream.models._protocol import OUT_PROB

    rng = np.random.default_rng([SEED, sum(name.encode())])
    r, x, size, label = anomaly_set(name, streams, events, rng)
    kernel = Kernel(r)
    scores = kernel.scores(x, size, [OUT_PROB])
    seconds = kernel.seconds
    prob = scores[OUT_PROB]
    assert not np.isnan(prob).any()
    after = np.s_[:, burn_in:]
    # streams whose posterior locked onto outliers: most of their clean events look anomalous
    clean = ~label[after]
    share = ((prob[after] > 0.5) & clean).sum(axis=1) / np.maximum(clean.sum(axis=1), 1)
    stuck = share > 0.5
    ok = ~stuck
    return {
        "family": r["family"],
        "outlier_rate": r["outlier_rate"],
        "outlier_scale": r["outlier_scale"],
        "streams": streams,
        "events_per_stream": events,
        "after_burn_in": calibration_figures(prob[after].ravel(), label[after].ravel()),
        "stuck_streams": {
            "count": int(stuck.sum()),
            "first_event_was_an_outlier": int((stuck & label[:, 0]).sum()),
            "streams_whose_first_event_was_an_outlier": int(label[:, 0].sum()),
            "excluding_them": {
                k: v
                for k, v in calibration_figures(
                    prob[ok, burn_in:].ravel(), label[ok, burn_in:].ravel()
                ).items()
                if k in ("events", "ece", "ece_flagged", "brier_skill_score")
            },
        },
        "all_events": {
            k: v
            for k, v in calibration_figures(prob.ravel(), label.ravel()).items()
            if k != "table"
        },
        "events_per_s": round(x.size / seconds),
    }


# --- PIT data sets ----------------------------------------------------------------------------


PIT_PRIORS = {
    "normal_gamma": {"mu": 0.0, "kappa": 1.0, "alpha": 3.0, "beta": 3.0},
    "gamma_poisson": {"alpha": 4.0, "beta": 0.5},
    "beta_binomial": {"alpha": 2.0, "beta": 18.0},
}


def pit_set(
    name: str, streams: int, events: int, rng: np.random.Generator
) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """Streams whose parameters are drawn from the rule's prior (``robust = false`` unless
    the name says ``robust``)."""
    shape = (streams, events)
    size = np.ones(shape)
    if name.startswith("normal"):
        pr = PIT_PRIORS["normal_gamma"]
        tau = rng.gamma(pr["alpha"], 1.0 / pr["beta"], (streams, 1))
        mu = rng.normal(pr["mu"], 1.0 / np.sqrt(pr["kappa"] * tau))
        if name == "normal_student_t3_misspecified":
            x = mu + rng.standard_t(3, shape) / np.sqrt(tau) / math.sqrt(3.0)
        else:
            x = rng.normal(mu, 1.0 / np.sqrt(tau), shape)
        robust = name == "normal_robust_default"
        return rule("normal_gamma", pr, robust=robust), x, size
    if name == "poisson_randomised":
        pr = PIT_PRIORS["gamma_poisson"]
        lam = rng.gamma(pr["alpha"], 1.0 / pr["beta"], (streams, 1))
        return rule("gamma_poisson", pr, robust=False), rng.poisson(lam * size), size
    pr = PIT_PRIORS["beta_binomial"]
    p = rng.beta(pr["alpha"], pr["beta"], (streams, 1)) * np.ones(shape)
    size[:] = TRIALS
    x = rng.binomial(TRIALS, p).astype(np.float64)
    return rule("beta_binomial", pr, robust=False), x, size


PIT_SETS = [
    "normal_exact",
    "normal_robust_default",
    "poisson_randomised",
    "binomial_randomised",
    "normal_student_t3_misspecified",
]


def point_mass(r: dict[str, Any], x: np.ndarray, size: np.ndarray) -> np.ndarray:
    """P(X = x) under the conjugate predictive before each event (plain updating, no
    forgetting), computed with scipy.stats apart from the engine."""
    from scipy import stats

    a0, b0 = r["prior"]["alpha"], r["prior"]["beta"]
    before_x = np.cumsum(x, axis=1) - x
    before_n = np.cumsum(size, axis=1) - size
    if r["family"] == "gamma_poisson":
        a, b = a0 + before_x, b0 + before_n
        return stats.nbinom.pmf(x, a, b / (b + size))
    a, b = a0 + before_x, b0 + before_n - before_x
    return stats.betabinom.pmf(x, size, a, b)


def run_pit(name: str, streams: int, events: int) -> tuple[dict[str, Any], np.ndarray]:
    from bayestream.calibration import PitMonitor
    from bayestream.models._protocol import OUT_PIT

    rng = np.random.default_rng([SEED + 1, sum(name.encode())])
    r, x, size = pit_set(name, streams, events, rng)
    x = x.astype(np.float64)
    pit = Kernel(r).scores(x, size, [OUT_PIT])[OUT_PIT]
    if name.endswith("randomised"):
        v = rng.random(pit.shape)
        pit = np.clip(pit + (v - 0.5) * point_mass(r, x, size), 0.0, 1.0)
    result: dict[str, Any] = {
        "family": r["family"],
        "robust": r["robust"],
        "streams": streams,
        "events_per_stream": events,
    }
    for label, part in (
        ("all_events", pit),
        ("first_10_events", pit[:, :10]),
        (f"events_{events // 2}_on", pit[:, events // 2 :]),
    ):
        monitor = PitMonitor(bins=PIT_BINS, half_life=math.inf)
        monitor.update(part.ravel())
        u = monitor.uniformity()
        result[label] = {
            "count": round(monitor.total_weight),
            "chi2": round(u.statistic, 2),
            "dof": u.dof,
            "p_value": round(u.p_value, 4),
            "density_min": round(float(monitor.density().min()), 4),
            "density_max": round(float(monitor.density().max()), 4),
        }
    result["uniform_at_1pct"] = bool(result["all_events"]["p_value"] >= 0.01)
    return result, pit.ravel()


# --- Engine cross-check -----------------------------------------------------------------------


def crosscheck(streams: int, events: int) -> dict[str, bool]:
    """A few streams of three data sets through ``Engine.process`` as JSON, in time order:
    the same anomaly probabilities and PITs as the kernel path, bit for bit?"""
    from bayestream import Engine, RawBatch, parse_config
    from bayestream.models._protocol import OUT_PIT, OUT_PROB

    result = {}
    for name in ("normal", "poisson", "binomial"):
        rng = np.random.default_rng([SEED, sum(name.encode())])
        r, x, size, _ = anomaly_set(name, streams, events, rng)
        kernel = Kernel(r).scores(x, size, [OUT_PROB, OUT_PIT])
        engine = Engine(parse_config({"rule": [r]}))
        msgs = []
        xs, ns = x.tolist(), size.tolist()
        for t in range(events):
            for s in range(streams):
                m = b'{"key":"s%d","metric":"m","ts":%r,"value":%r' % (s, START_TS + t, xs[s][t])
                if name == "binomial":
                    m += b',"trials":%d' % ns[s][t]
                msgs.append(m + b"}")
        out = engine.process(RawBatch.from_messages(msgs))
        assert not out.dead_letters, out.dead_letters[:3]
        same = True
        for col in (OUT_PROB, OUT_PIT):
            e = out.scores[:, col].reshape(events, streams).T
            same &= bool(np.array_equal(e, kernel[col]))
        result[name] = same
    return result


# --- plots ------------------------------------------------------------------------------------


def plot_reliability(path: Path, sets: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 5.4))
    for ax, names, title in (
        (axes[0], WELL_SPECIFIED, "well-specified"),
        (axes[1], MISSPECIFIED, "misspecified"),
    ):
        ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--")
        for name in names:
            fig_ = sets[name]["after_burn_in"]
            rows = [b for b in fig_["table"] if b["count"] > 0]
            p = [b["mean_probability"] for b in rows]
            y = [b["observed_frequency"] for b in rows]
            ms = [3 + 2.5 * math.log10(b["count"]) for b in rows]
            line = ax.plot(p, y, "-", lw=1.2, label=f"{name} (ECE {fig_['ece']:.4f})")[0]
            for pi, yi, m in zip(p, y, ms, strict=True):
                ax.plot(pi, yi, "o", ms=m, color=line.get_color(), alpha=0.8)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("anomaly probability (bin mean)")
        ax.set_ylabel("observed outlier frequency")
        ax.set_title(f"reliability, {title} ({BINS} bins; marker size ~ log count)")
        ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_pit(path: Path, pits: dict[str, np.ndarray], results: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(pits), figsize=(3.4 * len(pits), 3.2), sharey=True)
    for ax, (name, pit) in zip(axes, pits.items(), strict=True):
        ax.hist(pit, bins=PIT_BINS, range=(0, 1), density=True, color="C0", alpha=0.8)
        ax.axhline(1.0, color="k", lw=1, ls="--")
        p = results[name]["all_events"]["p_value"]
        ax.set_title(f"{name}\nchi2 p = {p:.3g}", fontsize=8)
        ax.set_xlabel("PIT")
    axes[0].set_ylabel("density")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- main -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--burn-in", type=int, default=100)
    parser.add_argument("--pit-streams", type=int, default=2000)
    parser.add_argument("--pit-events", type=int, default=500)
    parser.add_argument("--quick", action="store_true", help="small sizes, for CI smoke runs")
    parser.add_argument(
        "--plots",
        type=Path,
        default=None,
        help="folder for the PNGs (default benchmarks/results; with --quick a temporary one, "
        "so that smoke runs leave the committed plots alone)",
    )
    args = parser.parse_args()
    # A quick run without --plots draws the PNGs (so that smoke runs exercise the plotting)
    # into a temporary folder that is removed before exit, and reports no plot paths.
    scratch = tempfile.TemporaryDirectory(prefix="bayestream-plots-") if args.quick else None
    if args.plots is None:
        args.plots = RESULTS if scratch is None else Path(scratch.name)
    discarded = scratch is not None and args.plots == Path(scratch.name)
    if args.quick:
        args.streams, args.events = 200, 500
        args.pit_streams, args.pit_events = 200, 200
    started = time.perf_counter()

    sets = {
        name: run_anomaly(name, args.streams, args.events, args.burn_in)
        for name in WELL_SPECIFIED + MISSPECIFIED
    }
    pit_results: dict[str, Any] = {}
    pits: dict[str, np.ndarray] = {}
    for name in PIT_SETS:
        pit_results[name], pits[name] = run_pit(name, args.pit_streams, args.pit_events)
    check = crosscheck(3, 300)

    plots: Path = args.plots
    plots.mkdir(parents=True, exist_ok=True)
    plot_reliability(plots / "reliability.png", sets)
    plot_pit(plots / "pit_hist.png", pits, pit_results)

    ece = {name: sets[name]["after_burn_in"]["ece"] for name in sets}
    well = WELL_SPECIFIED
    report = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
        },
        "args": {**vars(args), "plots": None if discarded else str(args.plots)},
        "bayestream": source_info(),
        "design": {
            "seed": SEED,
            "outlier_scale": SCALE,
            "reliability_bins": BINS,
            "pit_bins": PIT_BINS,
            "priors": {
                "anomaly": {
                    "normal_gamma": NORMAL_PRIOR,
                    "gamma_poisson": POISSON_PRIOR,
                    "beta_binomial": BINOMIAL_PRIOR,
                },
                "pit": PIT_PRIORS,
            },
        },
        "anomaly_probability": sets,
        "pit": pit_results,
        "engine_crosscheck_identical": check,
        "summary": {
            "ece_after_burn_in": ece,
            "target_ece_at_most_0.03_well_specified": all(ece[n] <= 0.03 for n in well),
            "max_ece_well_specified": max(ece[n] for n in well),
            "misspecified_ece": {n: ece[n] for n in MISSPECIFIED},
            "ece_flagged_after_burn_in": {n: sets[n]["after_burn_in"]["ece_flagged"] for n in sets},
            "stuck_streams": {n: sets[n]["stuck_streams"]["count"] for n in sets},
            "pit_p_values": {n: r["all_events"]["p_value"] for n, r in pit_results.items()},
            "pit_uniform_well_specified": all(
                pit_results[n]["uniform_at_1pct"] for n in PIT_SETS if "misspecified" not in n
            ),
            "engine_path_identical_to_kernel_path": all(check.values()),
            "plots": []
            if discarded
            else [str(plots / "reliability.png"), str(plots / "pit_hist.png")],
            "seconds": round(time.perf_counter() - started, 1),
        },
    }
    if scratch is not None:
        scratch.cleanup()
    json.dump(report, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
