"""Loading decoded changelog rows into a store, across row widths.

A rule's row holds the family's ``k`` parameters, then ``EXTRA`` columns (the last anomaly
probability, the outlier run), then the rule's drift block, if any. A changelog row written
under an earlier version of the rule may be narrower or wider than the store's rows:

- exactly ``k`` wide (rows from before the extra columns): the family parameters are kept,
  the extra columns and drift block come from the prior, the last anomaly probability is NaN;
- ``k + EXTRA`` wide, or, for a fixed-width family, wider than that (a drift block the rule
  has not got, or a different one): the family parameters and the extra columns are kept,
  the drift block comes from the prior;
- as wide as the store's rows: everything is kept.

Other widths (a particle row with another particle count, a Dirichlet row with other
categories) are not this store's rows and are left out.
"""

from __future__ import annotations

import numpy as np

from bayestream.models._protocol import EXTRA
from bayestream.state.rowbatch import RowBatch
from bayestream.state.store import RuleStore


def loadable(batch: RowBatch, store: RuleStore, k: int, fixed_width: bool) -> np.ndarray:
    """Which rows of ``batch`` have a width ``store`` can take (for a family of ``k``
    parameters; ``fixed_width``: its parameter count does not depend on the rule)."""
    width = batch.width
    ok: np.ndarray = (width == store.width) | (width == k) | (width == k + EXTRA)
    if fixed_width:
        ok |= width > k + EXTRA  # any drift block can be dropped
    return ok


def load_rows(
    store: RuleStore, batch: RowBatch, rows: np.ndarray, slots: np.ndarray, k: int
) -> None:
    """Write rows ``rows`` of ``batch`` (of loadable widths) into ``slots`` of ``store``."""
    src = np.full((rows.size, store.width), np.nan)
    have = min(batch.params.shape[1], store.width)
    src[:, :have] = batch.params[rows, :have]
    store.params[slots] = src
    width = batch.width[rows]
    other = width != store.width  # rows of a rule without (or with) drift
    if other.any():  # keep their family parameters and last anomaly probability
        fill = slots[other]
        store.params[fill, k + EXTRA :] = store.prior[k + EXTRA :]
        short = fill[width[other] == k]
        store.params[short, k] = np.nan
    columns = batch.columns[rows]
    store.last_ts[slots] = columns[:, 0]
    store.n_eff[slots] = columns[:, 1]
    store.obs_size[slots] = columns[:, 2]
    store.last_emit_ts[slots] = columns[:, 3]


__all__ = ["load_rows", "loadable"]
