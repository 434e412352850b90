"""An anomaly record names the policy that selected it and that policy's cut-off, and meets it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bayestream.schema.records import ENCODER
from tests.conftest import batch, event, make_engine


@pytest.mark.parametrize(
    ("selection", "selected_by", "threshold"),
    [
        ({}, "tail_probability", 0.001),
        ({"anomaly_probability_threshold": 0.5}, "anomaly_probability", 0.5),
        ({"fdr": 0.05}, "fdr", 0.05),
    ],
    ids=["tail", "anomaly_probability", "fdr"],
)
def test_records_name_their_selection_policy_and_meet_it(
    selection: dict,  # type: ignore[type-arg]
    selected_by: str,
    threshold: float,
) -> None:
    rng = np.random.default_rng(20261205)
    x = rng.normal(0.0, 1.0, 2000)
    x[rng.choice(np.arange(50, 2000), 30, replace=False)] = 30.0  # far outliers
    rule = {"metric": "m", "family": "normal_gamma", "anomaly_threshold": 0.001, **selection}
    out = make_engine([rule]).process(
        batch([event("k", "m", 1000.0 + i, float(v)) for i, v in enumerate(x)])
    )
    assert len(out.anomalies) >= 30
    for record in out.anomalies:
        document = json.loads(ENCODER.encode(record))
        assert document["selected_by"] == selected_by
        assert document["threshold"] == threshold
        if selected_by == "anomaly_probability":
            assert record.anomaly_probability >= threshold
        elif selected_by == "fdr":  # Benjamini-Hochberg rejects only p-values at or below q
            assert record.tail_probability <= threshold
        else:
            assert record.tail_probability < threshold
