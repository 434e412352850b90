"""Loading decoded changelog rows into a store, across row widths and row versions.

A rule's row holds the family's ``k`` parameters, then ``EXTRA`` columns (the last anomaly
probability, the outlier run, the monitor's run, the alert window: see
:mod:`bayestream.models._protocol`), then the rule's drift block, if any. A changelog row written
under an earlier version of the rule, or of bayestream, may be laid out otherwise:

- exactly ``k`` wide (rows from before the extra columns): the family parameters are kept,
  the rest comes from the prior, the last anomaly probability is NaN;
- a version-1 row (2 extra columns): the family parameters, the last anomaly probability and
  the outlier run are kept, the monitor and alert columns come from the prior, and its drift
  block is kept when it is as wide as the rule's (else from the prior);
- ``k + EXTRA`` wide, or, for a fixed-width family, wider than that (a drift block the rule
  has not got, or a different one): the family parameters and the extra columns are kept,
  the drift block comes from the prior;
- as wide as the store's rows: everything is kept.

Other widths (a particle row with another particle count, a Dirichlet row with other
categories) are not this store's rows and are left out.
"""

from __future__ import annotations

import numpy as np

from bayestream.models._protocol import EXTRA, EXTRA_V1
from bayestream.state.rowbatch import RowBatch
from bayestream.state.store import RuleStore


def loadable(batch: RowBatch, store: RuleStore, k: int, fixed_width: bool) -> np.ndarray:
    """Which rows of ``batch`` have a width ``store`` can take (for a family of ``k``
    parameters; ``fixed_width``: its parameter count does not depend on the rule)."""
    width = batch.width
    extra = np.where(batch.version == 1, EXTRA_V1, EXTRA)
    old = batch.version == 1
    ok: np.ndarray = (width == k) | (width == k + extra) | (~old & (width == store.width))
    ok |= old & (width == store.width - EXTRA + EXTRA_V1)
    if fixed_width:
        ok |= width > k + extra  # any drift block can be dropped
    return ok


def load_rows(
    store: RuleStore, batch: RowBatch, rows: np.ndarray, slots: np.ndarray, k: int
) -> None:
    """Write rows ``rows`` of ``batch`` (of loadable widths) into ``slots`` of ``store``."""
    width = batch.width[rows]
    version = batch.version[rows]
    same = (version != 1) & (width == store.width)
    src = np.empty((rows.size, store.width))
    src[:] = store.prior
    if same.any():  # (then the batch's params are at least as wide as the store's)
        src[same] = batch.params[rows[same], : store.width]
    drift = store.width - k - EXTRA  # the rule's drift block
    for v, w in {(int(a), int(b)) for a, b in zip(version[~same], width[~same], strict=True)}:
        group = ~same & (version == v) & (width == w)
        params = batch.params[rows[group]]
        extra = EXTRA_V1 if v == 1 else EXTRA
        keep = k if w == k else k + extra  # the family parameters and the extra columns
        part = src[group]
        part[:, :keep] = params[:, :keep]
        if w == k:
            part[:, k] = np.nan  # no last anomaly probability
        if v == 1 and w == k + EXTRA_V1 + drift and drift > 0:
            part[:, k + EXTRA :] = params[:, k + EXTRA_V1 : w]  # the same drift block
        src[group] = part
    store.params[slots] = src
    columns = batch.columns[rows]
    store.last_ts[slots] = columns[:, 0]
    store.n_eff[slots] = columns[:, 1]
    store.obs_size[slots] = columns[:, 2]
    store.last_emit_ts[slots] = columns[:, 3]


__all__ = ["load_rows", "loadable"]
