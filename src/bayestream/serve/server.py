"""Serving the handler on an already bound socket until told to stop."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from aiohttp import web

from bayestream.serve.app import Handler


async def serve_until(
    handler: Handler,
    sock: socket.socket,
    should_stop: Callable[[], bool],
    poll_seconds: float = 0.2,
    signals: bool = True,
    alongside: Callable[[], AbstractAsyncContextManager[None]] | None = None,
) -> None:
    """Serve ``handler`` (aiohttp's low-level server) on ``sock`` until SIGTERM/SIGINT (when
    ``signals``) or ``should_stop()`` says so (checked every ``poll_seconds``); then close the
    listener and let requests in flight finish. ``alongside()`` is entered on the loop once the
    site listens and exited before the server is cleaned up (the Kafka feed runs in it)."""
    runner = web.ServerRunner(web.Server(handler), access_log=None, handle_signals=False)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    if signals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    try:
        await web.SockSite(runner, sock).start()
        async with alongside() if alongside is not None else contextlib.nullcontext():
            while not stop.is_set() and not should_stop():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), poll_seconds)
    finally:
        if signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
        await runner.cleanup()


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port); port 0 picks a free one.

    Raises
    ------
    OSError
        The address cannot be bound (port in use, unknown host).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


__all__ = ["bind", "serve_until"]
