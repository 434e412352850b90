"""A restore that disagrees with the committed offsets is not trusted: it is retried until the
changelog's checkpoint and the group's committed offsets agree, and nothing is processed
meanwhile; a disagreement that stays is settled by the state's own checkpoint (real broker;
the disagreement is made by hand, as a short read or a broker that lost transactions makes it).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

from bayestream.config import Config
from bayestream.runtime.checkpoint import CHECKPOINT_KEY, CHECKPOINT_METADATA, encode_checkpoint
from tests.integration.kafka_helpers import (
    committed_offsets,
    config_for,
    create_topic,
    events,
    file_run,
    latest_by_key,
    produce,
    read_all,
    running,
    unique,
    wait_for,
)


class Disagreement:
    """An input topic of 10 events on one partition whose group offset says "5, committed
    with a checkpoint" while the changelog's checkpoint says ``checkpoint``."""

    def __init__(self, bootstrap: str, prefix: str, checkpoint: int) -> None:
        self.bootstrap = bootstrap
        tmp = unique(prefix)
        self.topic = f"{tmp}.in"
        create_topic(bootstrap, self.topic, 1)
        evs = [e for e in events(60, keys=3, seed=3) if e["metric"] == "lat"][:10]
        self.lines = [json.dumps(e).encode() for e in evs]
        produce(bootstrap, self.topic, self.lines, [b"k"] * len(evs))
        self.config: Config = config_for(tmp)
        committer = Consumer({"bootstrap.servers": bootstrap, "group.id": self.group})
        marked = TopicPartition(self.topic, 0, 5, metadata=CHECKPOINT_METADATA)
        committer.commit(offsets=[marked], asynchronous=False)
        committer.close()
        create_topic(bootstrap, self.config.kafka.changelog, 1)
        self.writer = Producer({"bootstrap.servers": bootstrap})
        self.write_checkpoint(checkpoint)

    @property
    def group(self) -> str:
        return self.config.kafka.group_id

    def write_checkpoint(self, offset: int) -> None:
        value = encode_checkpoint({self.topic: offset})
        self.writer.produce(self.config.kafka.changelog, value, CHECKPOINT_KEY, 0)
        self.writer.flush(10)

    def committed(self) -> dict[int, int]:
        return committed_offsets(self.bootstrap, self.group, self.topic)

    def posteriors_equal_a_run_over(self, tmp_path: Path, lines: list[bytes]) -> bool:
        got = latest_by_key(read_all(self.bootstrap, self.config.kafka.posteriors_topic))
        want = file_run(tmp_path, self.config, lines)["posteriors"]

        def estimates(records: Any) -> dict[Any, Any]:
            return {(p["key"], p["metric"]): (p["params"], p["n_eff"]) for p in records}

        return estimates(got.values()) == estimates(want)


def test_a_restore_behind_the_committed_offsets_waits_until_they_agree(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    # what a restore reads when the broker hands it a short changelog
    case = Disagreement(kafka_bootstrap, "checkpoint", checkpoint=3)
    with running(case.config, kafka_bootstrap) as runner:
        time.sleep(4.0)  # restores retried meanwhile (backoff 0.5, 1, 2 s)
        assert not runner.engines  # nothing restored, so nothing applied
        assert case.committed() == {0: 5}
        case.write_checkpoint(5)  # the changelog catches up: the next attempt agrees
        wait_for(lambda: case.committed() == {0: 10}, 60)
    # processing resumed where the state stands (none): as if events 5..9 were all there was
    assert case.posteriors_equal_a_run_over(tmp_path, case.lines[5:])


def test_a_disagreement_that_stays_resumes_from_the_state_s_checkpoint(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """A broker that lost acknowledged transactions (their changelog rows gone, the offsets
    they committed kept) gives the same disagreement on every retry: after STUBBORN_READS reads
    over STUBBORN_SECONDS the input is processed again from where the state stands."""
    case = Disagreement(kafka_bootstrap, "stubborn", checkpoint=3)
    with running(case.config, kafka_bootstrap):
        wait_for(lambda: case.committed() == {0: 10}, 120)
    # the state (empty, as of offset 3) took events 3..9
    assert case.posteriors_equal_a_run_over(tmp_path, case.lines[3:])
