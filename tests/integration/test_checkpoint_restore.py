"""A restore that disagrees with the committed offsets is not trusted: it is retried until the
changelog's checkpoint and the group's committed offsets agree, and nothing is processed
meanwhile (real broker; the disagreement is made by hand, as a short read would make it)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition

from bayestream.runtime.checkpoint import CHECKPOINT_METADATA, encode_checkpoint
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


def test_a_restore_behind_the_committed_offsets_waits_until_they_agree(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    bootstrap = kafka_bootstrap
    tmp = unique("checkpoint")
    topic = f"{tmp}.in"
    create_topic(bootstrap, topic, 1)
    evs = [e for e in events(60, keys=3, seed=3) if e["metric"] == "lat"][:10]
    lines = [json.dumps(e).encode() for e in evs]
    produce(bootstrap, topic, lines, [b"k"] * len(evs))
    config = config_for(tmp)
    group, changelog = config.kafka.group_id, config.kafka.changelog

    # the group's offset says "5, committed with a checkpoint"; the changelog's checkpoint
    # says 3: what a restore reads when the broker hands it a short changelog
    committer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    committer.commit(
        offsets=[TopicPartition(topic, 0, 5, metadata=CHECKPOINT_METADATA)], asynchronous=False
    )
    committer.close()
    create_topic(bootstrap, changelog, 1)
    writer = Producer({"bootstrap.servers": bootstrap})
    writer.produce(changelog, encode_checkpoint({topic: 3}), b"bayestream.checkpoint", 0)
    writer.flush(10)

    with running(config, bootstrap) as runner:
        time.sleep(4.0)  # restores retried meanwhile (backoff 0.5, 1, 2 s)
        assert not runner.engines  # nothing restored, so nothing applied
        assert committed_offsets(bootstrap, group, topic) == {0: 5}
        # the changelog catches up with the offsets: the next attempt agrees and goes on
        writer.produce(changelog, encode_checkpoint({topic: 5}), b"bayestream.checkpoint", 0)
        writer.flush(10)
        wait_for(lambda: committed_offsets(bootstrap, group, topic) == {0: 10}, 60)

    # processing resumed where the state stands (none): as if events 5..9 were all there was
    got = latest_by_key(read_all(bootstrap, config.kafka.posteriors_topic))
    want = file_run(tmp_path, config, lines[5:])["posteriors"]
    assert {(p["key"], p["metric"]): (p["params"], p["n_eff"]) for p in got.values()} == {
        (p["key"], p["metric"]): (p["params"], p["n_eff"]) for p in want
    }


def test_a_disagreement_that_stays_resumes_from_the_state_s_checkpoint(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """A broker that lost acknowledged transactions (their changelog rows gone, the offsets
    they committed kept) gives the same disagreement on every retry: after STUBBORN_READS reads
    over STUBBORN_SECONDS the input is processed again from where the state stands."""
    bootstrap = kafka_bootstrap
    tmp = unique("stubborn")
    topic = f"{tmp}.in"
    create_topic(bootstrap, topic, 1)
    evs = [e for e in events(60, keys=3, seed=4) if e["metric"] == "lat"][:10]
    lines = [json.dumps(e).encode() for e in evs]
    produce(bootstrap, topic, lines, [b"k"] * len(evs))
    config = config_for(tmp)
    group, changelog = config.kafka.group_id, config.kafka.changelog
    committer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    committer.commit(
        offsets=[TopicPartition(topic, 0, 5, metadata=CHECKPOINT_METADATA)], asynchronous=False
    )
    committer.close()
    create_topic(bootstrap, changelog, 1)
    writer = Producer({"bootstrap.servers": bootstrap})
    writer.produce(changelog, encode_checkpoint({topic: 3}), b"bayestream.checkpoint", 0)
    writer.flush(10)

    with running(config, bootstrap):
        wait_for(lambda: committed_offsets(bootstrap, group, topic) == {0: 10}, 120)

    # the state (empty, as of offset 3) took events 3..9
    got = latest_by_key(read_all(bootstrap, config.kafka.posteriors_topic))
    want = file_run(tmp_path, config, lines[3:])["posteriors"]
    assert {(p["key"], p["metric"]): (p["params"], p["n_eff"]) for p in got.values()} == {
        (p["key"], p["metric"]): (p["params"], p["n_eff"]) for p in want
    }
