"""Prometheus metrics of bayestream: the one room that imports ``prometheus_client``.

:class:`Metrics` defines every instrument once on a ``CollectorRegistry``;
:class:`PrometheusSensor` feeds the engine's per-batch reports into it; the runtime calls
:class:`Metrics` directly; :class:`MetricsServer` serves ``/metrics``, ``/healthz`` and
``/readyz``. This room imports nothing else from bayestream.

Metrics (base units: seconds; counters end in ``_total``):

- ``bayestream_events_total{outcome}``: input events processed; ``outcome`` is ``applied``
  (updated a posterior) or ``dead_letter`` (sent to the dead-letter topic).
- ``bayestream_dead_letters_total{reason}``: dead-lettered events by reason code.
- ``bayestream_anomalies_total``: anomaly records emitted.
- ``bayestream_alerts_total``: anomaly records that are alerts (``"alert": true``: more
  surprising than the stream's previous ``alert_window_events`` events; one per incident).
- ``bayestream_batch_duration_seconds``: histogram of engine processing time per non-empty
  batch (buckets 1 ms to 10 s).
- ``bayestream_batch_events``: histogram of input events per non-empty batch.
- ``bayestream_event_to_publish_seconds``: histogram of publish wall-clock time minus event time,
  per published event (end-to-end latency; negative skew counts as 0).
- ``bayestream_consumer_lag_messages{topic,partition}``: messages between the consumer position
  and the end of each assigned partition.
- ``bayestream_freshness_seconds{topic,partition}``: wall-clock time minus the newest event time
  applied from each assigned partition.
- ``bayestream_streams_tracked``: streams currently held in state.
- ``bayestream_evictions_total``: streams evicted (idle TTL or stream cap).
- ``bayestream_drift_alarms_total``: drift records emitted.
- ``bayestream_pit_density{rule,bin}``: rolling PIT histogram of a rule, density per tenth of
  [0, 1] (``bin`` is its lower edge; all 1 when the predictive is calibrated).
- ``bayestream_pit_uniformity_p_value{rule}``: chi-square p-value of that histogram.
- ``bayestream_predictive_coverage_ratio{rule,kind,nominal}``: observed coverage of each
  published predictive quantile (``kind="quantile"``) and central interval (``"interval"``).
- ``bayestream_anomaly_calibration_error{rule,measure}``: with labels, ``ece``, ``mce`` and
  ``brier`` of the anomaly probability.
- ``bayestream_labels{state}``: with a labels topic, labels ``joined`` (to at least one event),
  ``unmatched``, ``waiting`` (for their events), ``dropped`` (unmatched, over
  ``labels_capacity``) and ``invalid`` (not a label).
- ``bayestream_restore_duration_seconds``: histogram of the time to restore state from the
  changelog after a partition assignment.
- ``bayestream_restored_streams_total``: streams restored from the changelog.
- ``bayestream_transactions_total{result}``: Kafka transactions; ``result`` is ``committed`` or
  ``aborted``.
- ``bayestream_ready``: 1 when assigned partitions are restored and the loop is processing, else 0.

Per-partition series are removed when the partition is revoked. Histograms expose ``_bucket``,
``_count`` and ``_sum``; counters also expose ``_created`` unless the environment sets
``PROMETHEUS_DISABLE_CREATED_SERIES=True``.
"""

from __future__ import annotations

from bayestream.metrics.instruments import Metrics
from bayestream.metrics.sensor import PrometheusSensor
from bayestream.metrics.server import MetricsServer

__all__ = ["Metrics", "MetricsServer", "PrometheusSensor"]
