"""Which topics the Kafka runtime creates at start, against a fake admin client (no broker)."""

from __future__ import annotations

from concurrent.futures import Future
from types import SimpleNamespace
from typing import Any

import pytest

from bayestream.config import KafkaSettings
from bayestream.runtime import topics
from bayestream.runtime.topics import KafkaRuntimeError, prepare_topics


class FakeAdmin:
    """Knows ``existing`` topics (name -> partitions); records what it is asked to create."""

    def __init__(self, existing: dict[str, int]) -> None:
        self.existing = dict(existing)
        self.created: dict[str, tuple[int, dict[str, str]]] = {}

    def list_topics(self, timeout: float = 0) -> Any:
        def topic(n: int) -> Any:
            parts = {p: SimpleNamespace(leader=1, error=None) for p in range(n)}
            return SimpleNamespace(error=None, partitions=parts)

        return SimpleNamespace(topics={name: topic(n) for name, n in self.existing.items()})

    def create_topics(self, new: list[Any]) -> dict[str, Future[None]]:
        out = {}
        for t in new:
            self.created[t.topic] = (t.num_partitions, dict(t.config))
            self.existing[t.topic] = t.num_partitions
            out[t.topic] = Future()
            out[t.topic].set_result(None)
        return out


@pytest.fixture
def admin(monkeypatch: pytest.MonkeyPatch) -> FakeAdmin:
    fake = FakeAdmin({})
    monkeypatch.setattr(topics, "AdminClient", lambda common: fake)
    return fake


def test_a_missing_input_topic_is_an_error_that_says_what_to_do(admin: FakeAdmin) -> None:
    with pytest.raises(KafkaRuntimeError, match=r"'telemetry' does not exist.*--create-input"):
        prepare_topics({}, KafkaSettings())
    assert admin.created == {}


def test_input_partitions_creates_the_input_and_a_co_partitioned_changelog(
    admin: FakeAdmin,
) -> None:
    settings = KafkaSettings(input_partitions=3, output_partitions=2)
    assert prepare_topics({}, settings) == 3
    assert admin.created["telemetry"] == (3, {})
    assert admin.created["bayestream.changelog"] == (3, {"cleanup.policy": "compact"})
    assert admin.created["bayestream.posteriors"] == (2, {"cleanup.policy": "compact"})


def test_an_existing_input_keeps_its_partitions(admin: FakeAdmin) -> None:
    admin.existing["telemetry"] = 4
    assert prepare_topics({}, KafkaSettings(input_partitions=3)) == 4
    assert "telemetry" not in admin.created
    assert admin.created["bayestream.changelog"][0] == 4


def test_create_topics_false_names_only_the_missing_outputs(admin: FakeAdmin) -> None:
    settings = KafkaSettings(input_partitions=2, create_topics=False)
    with pytest.raises(KafkaRuntimeError, match="create_topics = false") as error:
        prepare_topics({}, settings)
    assert "bayestream.posteriors" in str(error.value)
    assert "telemetry" not in str(error.value)  # input_partitions is its own opt-in
    assert admin.created == {}
