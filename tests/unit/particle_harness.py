"""Harness shared by the particle-filter tests (a helper, not a test module): columnar state
for a few streams and one-call drivers of ``update`` / ``summarize`` the way the engine calls
them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bayestream.models import particle as pf
from bayestream.models._protocol import (
    EXTRA,
    N_OUT,
    N_SETTINGS,
    OUT_TAIL,
    S_EXTRA,
    S_OUTLIER_RATE,
    S_OUTLIER_SCALE,
    S_ROBUST,
)


@dataclass
class Config:
    p: int = 256
    model: int = pf.MODEL_LOCAL_LEVEL
    obs: int = pf.OBS_NORMAL
    nu: float = 5.0
    q: float = 0.1
    per_event: bool = True
    r: float = 1.0
    init_mean: float = 0.0
    init_sd: float = 1.0
    resampling: int = pf.RESAMPLE_SYSTEMATIC
    ess_threshold: float = 0.5
    side: int = 0
    max_lateness: float = np.inf
    robust: bool = False


@dataclass
class Rows:
    cfg: Config
    n: int
    seed: int = 0
    params: np.ndarray = field(init=False)
    last_out: np.ndarray = field(init=False)
    last_ts: np.ndarray = field(init=False)
    n_eff: np.ndarray = field(init=False)
    obs_size: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        # the kernels' rows: particles, weights, generator, then the last anomaly probability
        self.params = np.zeros((self.n, pf.row_width(self.cfg.p) + EXTRA))
        self.last_ts = np.full(self.n, np.nan)
        self.n_eff = np.zeros(self.n)
        self.obs_size = np.full(self.n, np.nan)
        keys = np.uint64(self.seed) ^ (np.arange(self.n, dtype=np.uint64) * np.uint64(0x9E37))
        pf.seed_rows(self.params, self.cfg.p, np.arange(self.n, dtype=np.int64), keys)

    def copy(self) -> Rows:
        out = Rows(self.cfg, self.n, self.seed)
        for name in ("params", "last_ts", "n_eff", "obs_size"):
            getattr(out, name)[...] = getattr(self, name)
        return out

    def x(self) -> np.ndarray:
        return self.params[:, : self.cfg.p]

    def w(self) -> np.ndarray:
        lw = self.params[:, self.cfg.p : 2 * self.cfg.p]
        return np.exp(lw - lw.max(axis=1, keepdims=True)) / np.exp(
            lw - lw.max(axis=1, keepdims=True)
        ).sum(axis=1, keepdims=True)

    def update(
        self,
        slots: Any,
        ts: Any,
        x: Any,
        size: Any = None,
        expire: Any = None,
        parallel: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        slots = np.asarray(slots, dtype=np.int64)
        m = slots.shape[0]
        ts = np.asarray(ts, dtype=float)
        x = np.asarray(x, dtype=float)
        size = np.ones(m) if size is None else np.asarray(size, dtype=float)
        expire = np.full(m, -np.inf) if expire is None else np.asarray(expire, dtype=float)
        out = np.full((m, N_OUT), np.nan)
        status = np.empty(m, dtype=np.int8)
        c = self.cfg
        settings = np.zeros(N_SETTINGS)
        settings[S_ROBUST] = 1.0 if c.robust else 0.0
        settings[S_OUTLIER_RATE] = 0.001
        settings[S_OUTLIER_SCALE] = 10.0
        settings[S_EXTRA] = pf.row_width(c.p)
        fn = pf.update_parallel if parallel else pf.update
        fn(
            self.params, self.last_ts, self.n_eff, self.obs_size, c.p, c.model, c.obs, c.nu,
            c.q, c.per_event, c.r, c.init_mean, c.init_sd, c.resampling, c.ess_threshold,
            c.side, c.max_lateness, slots, ts, x, size, expire, settings, out, status,
        )  # fmt: skip
        self.last_out = out
        return out[:, OUT_TAIL].copy(), status

    def summarize(
        self, levels: Any = (0.5, 0.9), quantiles: Any = (0.05, 0.5, 0.95)
    ) -> dict[str, np.ndarray]:
        levels = np.asarray(levels, dtype=float)
        quantiles = np.asarray(quantiles, dtype=float)
        m, nl, nq = self.n, levels.size, quantiles.size
        out = {
            "mean": np.empty(m),
            "sd": np.empty(m),
            "lo": np.empty((m, nl)),
            "hi": np.empty((m, nl)),
            "q": np.empty((m, nq)),
            "latent_mean": np.empty(m),
            "latent_sd": np.empty(m),
            "ess": np.empty(m),
        }
        c = self.cfg
        pf.summarize(
            self.params, self.obs_size, c.p, c.model, c.obs, c.nu, c.r,
            np.arange(m, dtype=np.int64), levels, quantiles, out["mean"], out["sd"],
            out["lo"], out["hi"], out["q"], out["latent_mean"], out["latent_sd"], out["ess"],
        )  # fmt: skip
        return out
