"""The configuration schema. Field names here are public contract (README, "Configuration")."""

from __future__ import annotations

import math
from fnmatch import fnmatchcase
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bayestream.config.kafka import KafkaSettings

FamilyName = Literal[
    "normal_gamma", "beta_binomial", "gamma_poisson", "dirichlet", "particle", "dlm"
]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Probability = Annotated[float, Field(gt=0, lt=1)]

_PRIOR_FIELDS: dict[str, tuple[str, ...]] = {
    "normal_gamma": ("mu", "kappa", "alpha", "beta"),
    "beta_binomial": ("alpha", "beta"),
    "gamma_poisson": ("alpha", "beta"),
    "dirichlet": ("categories", "alpha"),
    "dlm": ("level", "level_var", "trend_var", "seasonal_var", "dof", "variance"),
}
_DEFAULT_PRIORS: dict[str, dict[str, Any]] = {
    "normal_gamma": {"mu": 0.0, "kappa": 1.0, "alpha": 1.0, "beta": 1.0},
    "beta_binomial": {"alpha": 1.0, "beta": 1.0},
    "gamma_poisson": {"alpha": 1.0, "beta": 1.0},
    # dlm: state variances in units of the observation variance (scale-free, West & Harrison
    # 4.6): a vague level, a slope near 0, seasonal amplitudes of a few noise sd
    "dlm": {
        "level": 0.0,
        "level_var": 1e6,
        "trend_var": 1e-4,
        "seasonal_var": 4.0,
        "dof": 1.0,
        "variance": 1.0,
    },
}


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EngineSettings(_Frozen):
    """``[engine]``: settings for every rule."""

    batch_size: Annotated[int, Field(ge=1, le=10_000_000)] = 50_000
    max_streams: Annotated[int, Field(ge=1)] = 10_000_000
    idle_ttl_seconds: Positive | None = None
    max_lateness_seconds: Annotated[float, Field(ge=0)] = 3600.0
    # a Beta-Binomial event's predictive tail and interval sum the pmf over up to its trials:
    # at most about 5 ms per event at 1e6, 50 ms at the cap 1e7 (linear beyond: 2**40 ran 40 min)
    max_trials: Annotated[float, Field(ge=1, le=1e7)] = 1_000_000.0
    calibration_interval_events: Annotated[int, Field(ge=0)] = 100_000
    calibration_half_life_events: Positive = 10_000.0
    min_ts: float = 0.0
    max_ts: float = 32_503_680_000.0  # 3000-01-01T00:00:00Z
    threads: Annotated[int, Field(ge=1, le=64)] | None = None  # None: the cores, at most 4


class Initial(_Frozen):
    """``initial``: the particle filter's prior on the latent state."""

    mean: Annotated[float, Field(allow_inf_nan=False)]
    sd: Positive


# count windows against a baseline simulate their drift null at start-up through 3 x
# baseline_windows warm-up windows of 1000 streams (engine/null.py): at 1000, about 0.1 GB
# and 3 s for real values, 50 s for counts (14 tables); time and memory grow linearly beyond
MAX_SIMULATED_BASELINE = 1000.0


class Drift(_Frozen):
    """``[rule.drift]``: windowed KL drift detection (see README, "Drift")."""

    window_seconds: Positive | None = None
    window_events: Annotated[int, Field(ge=2)] | None = None
    hop_events: Annotated[int, Field(ge=1)] | None = None  # sliding: compare every N events
    reference: Literal["previous", "baseline"] = "previous"
    baseline_windows: Annotated[float, Field(gt=1, le=1e6)] = 10.0
    false_alarm_rate: Probability = 0.001
    cooldown_windows: Annotated[int, Field(ge=0, le=1_000_000)] = 1
    reset_on_alarm: bool = False
    min_window_events: Annotated[int, Field(ge=2)] = 10
    window_prior_weight: Annotated[float, Field(gt=0, le=1)] = 0.5

    @model_validator(mode="after")
    def _one_window(self) -> Drift:
        if (self.window_seconds is None) == (self.window_events is None):
            raise ValueError("set exactly one of window_seconds and window_events")
        if (
            self.window_events is not None
            and self.reference == "baseline"
            and self.baseline_windows > MAX_SIMULATED_BASELINE
        ):
            raise ValueError(
                f"baseline_windows must be at most {MAX_SIMULATED_BASELINE:g} with "
                "window_events and reference = 'baseline' (its drift null is simulated at "
                "start-up through 3 x baseline_windows warm-up windows of 1000 streams)"
            )
        if self.hop_events is not None:
            if self.window_events is None or self.reference != "previous":
                raise ValueError("hop_events (sliding windows) needs window_events and "
                                 "reference = 'previous'")  # fmt: skip
            buckets = self.window_events // self.hop_events
            if buckets * self.hop_events != self.window_events or not 1 < buckets <= 64:
                raise ValueError("window_events must be 2 to 64 times hop_events")
        return self

    @property
    def buckets(self) -> int:
        """Buckets per window of a sliding window (0: tumbling)."""
        return 0 if self.hop_events is None else (self.window_events or 0) // self.hop_events


class Slo(_Frozen):
    """``slo``: an objective on the rule's parameter (see README, "SLO")."""

    objective: Annotated[float, Field(allow_inf_nan=False)]
    above: bool = True  # a violation is the parameter above the objective (false: below)
    quantile: Probability | None = None  # normal_gamma: the observation's quantile, not the mean
    category: str | None = None  # dirichlet: the category whose probability is meant


MAX_HORIZON = 366 * 86400.0  # a year: forecasts are for controllers, not for planning


class Seasonal(_Frozen):
    """One entry of a ``dlm`` rule's ``seasonal``: a period (event-time seconds, or events) and
    its number of Fourier harmonics."""

    period_seconds: Positive | None = None
    period_events: Annotated[int, Field(ge=2)] | None = None
    harmonics: Annotated[int, Field(ge=1, le=64)] = 3

    @model_validator(mode="after")
    def _one_period(self) -> Seasonal:
        if (self.period_seconds is None) == (self.period_events is None):
            raise ValueError("set exactly one of period_seconds and period_events")
        period = self.period_seconds or self.period_events or 0.0
        if not self.harmonics < period / 2:
            raise ValueError(
                f"harmonics must be below half the period ({period:g}), got {self.harmonics}"
            )
        return self

    @property
    def name(self) -> str:
        """The parameter name of this period's seasonal effect in records."""
        if self.period_seconds is not None:
            return f"season_{self.period_seconds:g}s"
        return f"season_{self.period_events}events"


Discount = Annotated[float, Field(gt=0, le=1)]


class Discounts(_Frozen):
    """``discount`` of a ``dlm`` rule: the share of information each component keeps per unit
    of elapsed event time (``unit_seconds``; per event when not set)."""

    level: Discount = 0.99
    trend: Discount = 0.995
    seasonal: Discount = 0.995
    variance: Discount = 0.995
    unit_seconds: Positive | None = None


_PARTICLE_ONLY = ("model", "process_noise", "observation_noise", "initial")
_DLM_ONLY = ("seasonal", "discount")
MIN_CREDIBLE_LEVEL = 1e-9


class Rule(_Frozen):
    """One ``[[rule]]``: which metrics it matches and the model they get."""

    metric: Annotated[str, Field(min_length=1)]
    family: FamilyName
    prior: dict[str, Any] = Field(default_factory=dict)
    half_life_seconds: Positive | None = None
    half_life_events: Positive | None = None
    tail: Literal["upper", "lower", "two_sided"] = "two_sided"
    transform: Literal["none", "log", "log1p"] = "none"
    credible_levels: tuple[Probability, ...] = (0.95,)
    predictive_quantiles: tuple[Probability, ...] = (0.5, 0.9, 0.95, 0.99)
    anomaly_threshold: Probability = 0.001
    emit: Literal["every_batch", "interval"] = "every_batch"
    emit_interval_seconds: Positive | None = None
    max_streams: Annotated[int, Field(ge=1)] | None = None
    idle_ttl_seconds: Positive | None = None
    # decisions: anomaly probability, robust updating, drift, multiplicity
    robust: bool = True
    outlier_rate: Annotated[float, Field(gt=0, lt=0.5)] = 0.001
    outlier_scale: Annotated[float, Field(gt=1, le=1e6)] = 10.0
    robust_min_events: Annotated[float, Field(ge=0)] = 10.0
    outlier_run_reset: Annotated[int, Field(ge=0)] = 50
    monitor: bool = True  # Bayes-factor monitoring: outlier or new level (with robust)
    shift_rate: Annotated[float, Field(gt=0, lt=0.5)] = 0.001
    monitor_run: Annotated[int, Field(ge=2, le=1000)] = 3
    monitor_threshold: Annotated[float, Field(gt=0.5, lt=1)] = 0.99
    alert_window_events: Annotated[int, Field(ge=0, le=1_000_000)] = 100
    # forecasts in posterior records (README, "Forecasts"): horizons after the newest event
    forecast_horizons_seconds: tuple[Annotated[float, Field(gt=0, le=MAX_HORIZON)], ...] = ()
    forecast_quantiles: tuple[Probability, ...] | None = None  # None: predictive_quantiles
    slo: Slo | None = None  # violation probability in posterior records
    anomaly_probability_threshold: Probability | None = None
    fdr: Probability | None = None
    drift: Drift | None = None
    # family = "particle" (a state-space model per stream, bootstrap particle filter)
    model: Literal["local_level", "poisson_rate", "binomial_rate"] | None = None
    particles: Annotated[int, Field(ge=16, le=32_766)] = 512  # state row width 2P+2 < 2**16
    observation: Literal["normal", "student_t"] = "normal"
    nu: Positive = 4.0
    process_noise: Positive | None = None
    per: Literal["second", "event"] = "second"
    observation_noise: Positive | None = None
    initial: Initial | None = None
    resampling: Literal["systematic", "stratified", "residual"] = "systematic"
    ess_threshold: Annotated[float, Field(gt=0, le=1)] = 0.5
    seed: Annotated[int, Field(ge=0, lt=2**64)] = 0
    # family = "dlm" (a dynamic linear model per stream, models/dlm.py)
    trend: bool = False
    seasonal: tuple[Seasonal, ...] | None = None
    discount: Discounts | None = None

    @model_validator(mode="after")
    def _check(self) -> Rule:
        if self.family == "particle":
            self._check_particle()
            return self
        given = [name for name in _PARTICLE_ONLY if getattr(self, name) is not None]
        if given:
            raise ValueError(f"{', '.join(given)}: only for family = 'particle'")
        if self.family == "dlm":
            self._check_dlm()
        elif self.trend or any(getattr(self, name) is not None for name in _DLM_ONLY):
            raise ValueError("trend, seasonal, discount: only for family = 'dlm'")
        if self.half_life_seconds is not None and self.half_life_events is not None:
            raise ValueError("set half_life_seconds or half_life_events, not both")
        if self.transform != "none" and self.family not in ("normal_gamma", "dlm"):
            raise ValueError(
                f"transform = {self.transform!r} applies to families 'dlm' and 'normal_gamma' only"
            )
        if self.emit == "interval" and self.emit_interval_seconds is None:
            raise ValueError("emit = 'interval' needs emit_interval_seconds")
        if self.emit == "every_batch" and self.emit_interval_seconds is not None:
            raise ValueError("emit_interval_seconds needs emit = 'interval'")
        if self.anomaly_probability_threshold is not None and self.fdr is not None:
            raise ValueError("set anomaly_probability_threshold or fdr, not both")
        _check_prior(self.family, self.prior)
        return self

    def _check_dlm(self) -> None:
        if self.half_life_seconds is not None or self.half_life_events is not None:
            raise ValueError("family = 'dlm' forgets through discount, not half_life")
        if self.drift is not None and self.drift.reset_on_alarm:
            raise ValueError(
                "drift.reset_on_alarm does not apply to family = 'dlm' (its windows see "
                "forecast errors, not observations)"
            )
        if self.drift is not None and not self.robust:
            raise ValueError(
                "drift on family = 'dlm' needs robust = true (the windows see the standardised "
                "forecast errors only then)"
            )

    def _check_particle(self) -> None:
        if self.model is None or self.process_noise is None or self.initial is None:
            raise ValueError("family = 'particle' needs model, process_noise and initial")
        if self.model == "local_level" and self.observation_noise is None:
            raise ValueError("model = 'local_level' needs observation_noise (a variance)")
        if self.model != "local_level" and self.observation_noise is not None:
            raise ValueError("observation_noise applies to model = 'local_level' only")
        if self.prior:
            raise ValueError("family = 'particle' takes no prior table: use initial")
        if self.half_life_seconds is not None or self.half_life_events is not None:
            raise ValueError("family = 'particle' forgets through process_noise, not half_life")
        if self.transform != "none":
            raise ValueError("transform applies to families 'dlm' and 'normal_gamma' only")
        if self.emit == "interval" and self.emit_interval_seconds is None:
            raise ValueError("emit = 'interval' needs emit_interval_seconds")
        if self.drift is not None and self.drift.reset_on_alarm:
            raise ValueError(
                "drift.reset_on_alarm applies to conjugate families: a particle filter follows "
                "a moving level through its process_noise"
            )
        if self.anomaly_probability_threshold is not None and self.fdr is not None:
            raise ValueError("set anomaly_probability_threshold or fdr, not both")

    @field_validator("credible_levels", "predictive_quantiles", "forecast_horizons_seconds")
    @classmethod
    def _sorted_unique(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        return tuple(sorted(set(v)))

    @field_validator("forecast_quantiles")
    @classmethod
    def _sorted_unique_or_none(cls, v: tuple[float, ...] | None) -> tuple[float, ...] | None:
        return None if v is None else tuple(sorted(set(v)))

    @model_validator(mode="after")
    def _forecastable(self) -> Rule:
        if self.forecast_horizons_seconds and self.family == "dirichlet":
            raise ValueError(
                "forecast_horizons_seconds: family 'dirichlet' has no forecast (categories "
                "have no quantiles)"
            )
        if self.slo is not None:
            _check_slo(self)
        if self.forecast_horizons_seconds and not self.forecast_q:
            raise ValueError("forecast_horizons_seconds needs forecast_quantiles (or "
                             "predictive_quantiles): none are set")  # fmt: skip
        return self

    @property
    def forecast_q(self) -> tuple[float, ...]:
        """The quantiles of each forecast: ``forecast_quantiles``, else the predictive ones."""
        if self.forecast_quantiles is None:
            return self.predictive_quantiles
        return self.forecast_quantiles

    @field_validator("credible_levels")
    @classmethod
    def _not_a_point(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        # below about 1e-16 the interval's ends (1 -+ level)/2 are both 1/2 in floating point
        # (the Normal-Gamma summary then read its t quantiles at an unset index, a segmentation
        # fault, fixed in models/normal_gamma.py); such a level is a point, so still rejected
        if v and v[0] < MIN_CREDIBLE_LEVEL:
            raise ValueError(
                f"a credible level must be at least {MIN_CREDIBLE_LEVEL:g}, got {v[0]!r}"
            )
        return v

    # --- resolved views used by the engine -----------------------------------------------

    @property
    def categories(self) -> tuple[str, ...]:
        """Dirichlet categories in configured order (empty for other families)."""
        return tuple(self.prior["categories"]) if self.family == "dirichlet" else ()

    @property
    def param_names(self) -> tuple[str, ...]:
        """Names of the posterior parameters, as in the prior table."""
        if self.family == "dirichlet":
            return self.categories
        if self.family == "particle":
            return ("latent_mean", "latent_sd")
        if self.family == "dlm":
            trend = ("trend",) if self.trend else ()
            seasons = tuple(entry.name for entry in self.seasonal or ())
            return ("level", *trend, *seasons, "variance", "dof")
        return _PRIOR_FIELDS[self.family]

    @property
    def discounts(self) -> Discounts:
        """A ``dlm`` rule's discounts (the defaults when not given)."""
        return self.discount or Discounts()

    def prior_vector(self) -> list[float]:
        """The prior as the family's state-row parameters (for a particle rule: the empty row
        that a new stream starts from; its particles are drawn on its first event)."""
        if self.family == "particle":
            return [0.0] * (2 * self.particles + 2)
        if self.family == "dlm":
            from bayestream.models.dlm import prior_row

            values = dlm_prior(self)
            d = self.discounts
            periods = [
                (float(e.period_seconds), e.harmonics)
                if e.period_seconds is not None
                else (-float(e.period_events or 0), e.harmonics)
                for e in self.seasonal or ()
            ]
            row = prior_row(
                values,
                self.trend,
                periods,
                (d.level, d.trend, d.seasonal, d.variance),
                d.unit_seconds or 1.0,
                4.0 if self.robust else math.inf,
            )
            return [float(v) for v in row]
        if self.family == "dirichlet":
            alpha = self.prior.get("alpha", 1.0)
            k = len(self.categories)
            return [float(a) for a in alpha] if isinstance(alpha, list) else [float(alpha)] * k
        values = {**_DEFAULT_PRIORS[self.family], **self.prior}
        return [float(values[name]) for name in _PRIOR_FIELDS[self.family]]

    @property
    def half_life(self) -> float:
        """Half-life in its unit (seconds or events); inf when there is no forgetting."""
        h = self.half_life_seconds or self.half_life_events
        return math.inf if h is None else float(h)

    def matches(self, metric: str) -> bool:
        """Does this rule's ``metric`` (an exact name or a glob) match ``metric``?"""
        return fnmatchcase(metric, self.metric)


def _check_slo(rule: Rule) -> None:
    slo = rule.slo
    assert slo is not None
    o = slo.objective
    probability = rule.family in ("beta_binomial", "dirichlet") or rule.model == "binomial_rate"
    if probability and not 0.0 < o < 1.0:
        raise ValueError(f"slo.objective must be a probability in (0, 1), got {o!r}")
    if (rule.family == "gamma_poisson" or rule.model == "poisson_rate") and not o > 0.0:
        raise ValueError(f"slo.objective must be a rate > 0, got {o!r}")
    if rule.transform == "log" and not o > 0.0:
        raise ValueError(f"slo.objective must be > 0 with transform = 'log', got {o!r}")
    if rule.transform == "log1p" and not o > -1.0:
        raise ValueError(f"slo.objective must be > -1 with transform = 'log1p', got {o!r}")
    if slo.quantile is not None and rule.family != "normal_gamma":
        raise ValueError("slo.quantile applies to family 'normal_gamma' only")
    if rule.family == "dirichlet":
        if slo.category not in rule.categories:
            raise ValueError(
                f"slo.category must be one of the rule's categories {list(rule.categories)}, "
                f"got {slo.category!r}"
            )
    elif slo.category is not None:
        raise ValueError("slo.category applies to family 'dirichlet' only")


def dlm_prior(rule: Rule) -> dict[str, float]:
    """A ``dlm`` rule's prior with its defaults filled in."""
    return {name: float(v) for name, v in {**_DEFAULT_PRIORS["dlm"], **rule.prior}.items()}


def _check_prior(family: str, prior: dict[str, Any]) -> None:
    allowed = _PRIOR_FIELDS[family]
    unknown = sorted(set(prior) - set(allowed))
    if unknown:
        raise ValueError(f"prior has unknown field(s) {unknown} for {family}; allowed: {allowed}")
    if family == "dirichlet":
        _check_dirichlet_prior(prior)
        return
    for name, value in {**_DEFAULT_PRIORS[family], **prior}.items():
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ValueError(f"prior.{name} must be a finite number, got {value!r}")
        if name not in ("mu", "level") and value <= 0:
            raise ValueError(f"prior.{name} must be > 0, got {value!r}")


def _check_dirichlet_prior(prior: dict[str, Any]) -> None:
    categories = prior.get("categories")
    if (
        not isinstance(categories, list)
        or len(categories) < 2
        or not all(isinstance(c, str) and c for c in categories)
    ):
        raise ValueError("prior.categories must be a list of at least 2 non-empty strings")
    if len(set(categories)) != len(categories):
        raise ValueError("prior.categories has duplicates")
    alpha = prior.get("alpha", 1.0)
    values = alpha if isinstance(alpha, list) else [alpha]
    if isinstance(alpha, list) and len(alpha) != len(categories):
        raise ValueError("prior.alpha must be one number or one per category")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise ValueError(f"prior.alpha must be > 0, got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"prior.alpha must be finite, got {value!r}")


class Config(_Frozen):
    """The whole file: ``[engine]`` and an ordered list of ``[[rule]]`` (first match wins)."""

    engine: EngineSettings = EngineSettings()
    kafka: KafkaSettings = KafkaSettings()
    rule: Annotated[tuple[Rule, ...], Field(min_length=1)]

    def rule_for(self, metric: str) -> int | None:
        """Index of the first rule matching ``metric``, or None."""
        for i, rule in enumerate(self.rule):
            if rule.matches(metric):
                return i
        return None
