"""How many kernel threads a Kafka runtime process takes by default: its share of the host.

``[engine] threads`` unset means "the cores this process may use" for the file runner. A Kafka
runtime is one member of a consumer group, and several members may run on one host (scaling
out on a machine with spare cores, or by mistake on one without): each taking every core would
run members x cores busy threads on the cores, and a batch's kernel threads wait for each other
at every join. So a member takes ``cores // members on its host`` threads (at least 1),
counted from the group's description after every rebalance. Members on other hosts (other
pods, other machines) do not count: the broker reports each member's client address, and
members that share this member's address share its host.
"""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

log = logging.getLogger("bayestream.kafka")

DESCRIBE_TIMEOUT = 10.0


def members_on_this_host(common: dict[str, Any], group_id: str, member_id: str | None) -> int:
    """How many members of ``group_id`` share this member's host (1 when the group cannot be
    described, or this member is not in it yet)."""
    if not member_id:
        return 1
    try:
        admin = AdminClient(common)
        future = admin.describe_consumer_groups([group_id], request_timeout=DESCRIBE_TIMEOUT)
        members = future[group_id].result(DESCRIBE_TIMEOUT).members
    except (KafkaException, TimeoutError) as exc:
        log.warning("describing group %s failed (%s): counting 1 member here", group_id, exc)
        return 1
    hosts = {m.member_id: m.host for m in members}
    mine = hosts.get(member_id)
    if mine is None:
        return 1
    return sum(1 for host in hosts.values() if host == mine)


def share_of_cores(cores: int, members: int) -> int:
    """Kernel threads for one of ``members`` processes sharing ``cores``: at least 1."""
    return max(1, cores // max(1, members))


__all__ = ["members_on_this_host", "share_of_cores"]
