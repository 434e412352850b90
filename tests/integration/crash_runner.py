"""``bayestream run --kafka`` with a kill at a point of the commit protocol, for the crash tests.

``python -m tests.integration.crash_runner POINT:N BOOTSTRAP CONFIG`` runs the Kafka runtime as
the command line does (metrics endpoint, signals) with hooks that SIGKILL the process the N-th
time the runner reaches POINT (``mid_batch``, ``before_commit``, ``after_commit``, ``restore``:
see :meth:`bayestream.runtime.hooks.Hooks.reached`). The injection lives here, in the tests,
not in the product.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from typing import Any

from bayestream.config import load_config
from bayestream.runtime.hooks import Hooks
from bayestream.runtime.service import run_kafka


class CrashAt:
    """Hooks that pass every report on and kill the process at the N-th ``point``."""

    def __init__(self, inner: Hooks, point: str, count: int) -> None:
        self.inner, self.point, self.count = inner, point, count

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def reached(self, point: str) -> None:
        self.inner.reached(point)
        if point != self.point:
            return
        self.count -= 1
        if self.count <= 0:
            logging.getLogger("bayestream.kafka").warning("killing the process at %s", point)
            os.kill(os.getpid(), signal.SIGKILL)


def main(argv: list[str]) -> int:
    plan, bootstrap, config = argv
    point, _, count = plan.partition(":")
    return run_kafka(
        load_config(config),
        bootstrap,
        hooks_around=lambda hooks: CrashAt(hooks, point, int(count or 1)),
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
