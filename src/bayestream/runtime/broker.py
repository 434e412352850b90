"""A real single-node Apache Kafka broker (KRaft mode) without Docker.

For tests, demos and local runs. The broker's jars are resolved once from Maven Central with
``mvn`` into a cache directory (see :mod:`bayestream.runtime.kafka_jars`); each
:class:`EmbeddedBroker` then formats a fresh log directory in a temporary directory and runs
``kafka.Kafka`` in a ``java`` child process that listens on free loopback ports only.

Needs Java 17+ on ``PATH`` (or ``$JAVA_HOME``), and Maven the first time the jars are fetched.

This module (like :mod:`bayestream.runtime.kafka_jars`) imports only the standard library.

Examples
--------
>>> with EmbeddedBroker() as broker:  # doctest: +SKIP
...     print(broker.bootstrap_servers)
127.0.0.1:40123
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType, TracebackType
from typing import TextIO

from bayestream.runtime.kafka_jars import (
    KAFKA_VERSION,
    BrokerError,
    checked_java,
    default_jar_cache,
    ensure_broker_jars,
    tail,
)

# (the jars' names are re-exported: the broker and its jars are one public surface)
__all__ = [
    "KAFKA_VERSION",
    "BrokerError",
    "EmbeddedBroker",
    "default_jar_cache",
    "ensure_broker_jars",
    "run_broker_forever",
    "serve",
]

_STARTED_MARKER = "Kafka Server started"

_LOG4J2_PROPERTIES = """\
# Log4j 2 configuration of the embedded Kafka broker; written by bayestream.
# INFO to stdout, which the launcher redirects to a file.
status = warn
name = bayestream-kafka-broker

appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.target = SYSTEM_OUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n

rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT

# Per-request and per-state-change chatter.
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
"""

_PR_SET_PDEATHSIG = 1
_ADDRESS_IN_USE = re.compile(r"Address already in use|BindException")


# --------------------------------------------------------------------------------------------
# The broker process
# --------------------------------------------------------------------------------------------


def _file_tail(path: Path, lines: int = 40, max_bytes: int = 64 * 1024) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read()
    except OSError:
        return "(no log)"
    return tail(data.decode("utf-8", errors="replace"), lines)


def _free_ports(count: int) -> list[int]:
    """Return ``count`` distinct TCP ports that are free on 127.0.0.1 right now."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _random_cluster_id() -> str:
    """Return a random Kafka cluster id: a UUID in unpadded base64url (22 characters)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not text.startswith("-"):  # as Kafka's Uuid.randomUuid: never looks like an option
            return text


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _die_with_parent_preexec() -> Callable[[], None] | None:
    """Return a ``preexec_fn`` that makes the child get SIGKILL when its parent dies (Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    parent = os.getpid()
    sigkill = int(signal.SIGKILL)

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, sigkill, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


class EmbeddedBroker:
    """A single-node Kafka broker and controller (KRaft) in a ``java`` child process.

    Listens on two free ports of 127.0.0.1 (clients and controller), keeps its logs and data in
    a temporary directory removed by :meth:`stop`, and is configured for a single node:
    replication factor 1 for internal topics, no initial rebalance delay, so transactions and
    consumer groups work at once.

    Parameters
    ----------
    lib_dir
        Directory of the broker's jars; default :func:`ensure_broker_jars` (fetches them once).
    workdir
        Directory for ``server.properties``, the data and ``broker.log``. Default: a new
        temporary directory, deleted on :meth:`stop`; a given directory is kept.
    heap
        Maximum Java heap (``-Xmx``).
    startup_timeout
        Seconds to wait for the broker to accept connections.
    properties
        Extra or overriding broker properties.
    die_with_parent
        On Linux, make the ``java`` process get SIGKILL when the thread that started it ends
        (``PR_SET_PDEATHSIG``), so a killed Python process leaves no orphan broker. Turn off
        when starting the broker from a short-lived thread.

    Notes
    -----
    The child runs in its own process group, and :meth:`stop` is also registered with
    :mod:`atexit`. Use the instance as a context manager, or call :meth:`start` and
    :meth:`stop`.
    """

    def __init__(
        self,
        *,
        lib_dir: Path | None = None,
        workdir: Path | None = None,
        heap: str = "512m",
        startup_timeout: float = 60.0,
        properties: Mapping[str, str] | None = None,
        die_with_parent: bool = True,
    ) -> None:
        self._lib_dir = lib_dir
        self._given_workdir = workdir
        self._heap = heap
        self._startup_timeout = startup_timeout
        self._extra = dict(properties or {})
        self._die_with_parent = die_with_parent
        self._workdir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: TextIO | None = None
        self._port: int | None = None
        self._controller_port: int | None = None
        self._command: list[str] = []
        self._lock = threading.Lock()

    # -- properties ---------------------------------------------------------------------------

    @property
    def bootstrap_servers(self) -> str:
        """``"127.0.0.1:PORT"`` of the client listener (only while started)."""
        if self._port is None or self._proc is None:
            raise BrokerError("the broker is not started")
        return f"127.0.0.1:{self._port}"

    @property
    def workdir(self) -> Path:
        """Directory with ``server.properties``, the data and the log (only once started)."""
        if self._workdir is None:
            raise BrokerError("the broker is not started")
        return self._workdir

    @property
    def log_path(self) -> Path:
        """File receiving the broker's stdout and stderr."""
        return self.workdir / "broker.log"

    @property
    def pid(self) -> int | None:
        """Process id of the ``java`` process, or ``None`` when not started."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """Whether the ``java`` process is alive."""
        return self._proc is not None and self._proc.poll() is None

    # -- life cycle ---------------------------------------------------------------------------

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> EmbeddedBroker:
        """Format storage, start the broker and wait until it serves clients.

        Returns
        -------
        EmbeddedBroker
            ``self``.

        Raises
        ------
        BrokerError
            If Java or the jars are missing, or the broker exits or does not become ready
            within ``startup_timeout`` (the message ends with the tail of its log).
        """
        with self._lock:
            if self._proc is not None:
                raise BrokerError("the broker is already started")
            java = checked_java()
            lib_dir = self._lib_dir if self._lib_dir is not None else ensure_broker_jars()
            if self._given_workdir is not None:
                self._workdir = self._given_workdir.resolve()
                self._workdir.mkdir(parents=True, exist_ok=True)
            else:
                self._workdir = Path(tempfile.mkdtemp(prefix="bayestream-kafka-"))
            atexit.register(self._stop_at_exit)
            try:
                for attempt in range(1, 4):
                    try:
                        self._launch(java, lib_dir)
                        self._wait_ready()
                        return self
                    except _PortTaken:
                        self._kill()
                        if attempt == 3:
                            raise BrokerError(
                                "could not bind free ports three times:\n"
                                + _file_tail(self.log_path)
                            ) from None
            except BaseException:
                self._kill()
                self._cleanup()
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _properties(self, data_dir: Path) -> dict[str, str]:
        port, cport = self._port, self._controller_port
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{cport}",
            "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(data_dir),
            "num.partitions": "1",
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "log.cleaner.dedupe.buffer.size": "2097152",
            "auto.create.topics.enable": "true",
        }
        props.update(self._extra)
        return props

    def _launch(self, java: str, lib_dir: Path) -> None:
        workdir = self.workdir
        self._port, self._controller_port = _free_ports(2)
        data_dir = workdir / "data"
        shutil.rmtree(data_dir, ignore_errors=True)
        config = workdir / "server.properties"
        config.write_text(
            "".join(f"{k}={v}\n" for k, v in self._properties(data_dir).items()), encoding="utf-8"
        )
        log4j = workdir / "log4j2.properties"
        log4j.write_text(_LOG4J2_PROPERTIES, encoding="utf-8")
        classpath = f"{lib_dir}{os.sep}*"
        common = [f"-Dlog4j2.configurationFile={log4j}", "-Djava.awt.headless=true"]

        # A short-lived tool: the C1 compiler alone starts it in about half the time.
        fmt_command = [java, "-Xmx256m", "-XX:TieredStopAtLevel=1", *common, "-cp", classpath]
        fmt_command += ["kafka.tools.StorageTool", "format"]
        fmt_command += [f"--cluster-id={_random_cluster_id()}", "-c", str(config)]
        fmt = subprocess.run(
            fmt_command,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if fmt.returncode != 0:
            raise BrokerError(
                f"formatting the Kafka storage failed (exit code {fmt.returncode}):\n"
                + tail((fmt.stdout + fmt.stderr).strip(), 40)
            )

        # The serial collector: a one-node broker sharing a small machine with its clients
        # spends less CPU than with G1's concurrent threads (measured on 2 cores, the Kafka
        # benchmark's exactly-once run: broker CPU 2.5 - 4 s -> 1.6 - 2.4 s per 1 M events,
        # and the runtime beside it ~15 % faster); pauses stay short on a heap this size.
        command = [java, f"-Xmx{self._heap}", "-XX:+UseSerialGC", "-XX:+ExitOnOutOfMemoryError"]
        command += common
        command += ["-cp", classpath, "kafka.Kafka", str(config)]
        self._command = command
        self._spawn()

    def _spawn(self) -> None:
        """Start the java process of the broker (configured and formatted already)."""
        workdir = self.workdir
        command = self._command
        if self._log_file is not None:
            self._log_file.close()
        self._log_file = self.log_path.open("w", encoding="utf-8")
        preexec = _die_with_parent_preexec() if self._die_with_parent else None
        self._proc = subprocess.Popen(
            command,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=preexec,
        )

    def restart(
        self, down_seconds: float = 0.0, timeout: float = 20.0, crash: bool = False
    ) -> None:
        """Stop the broker process and start it again on the same ports and data, as clients
        see a broker restart; returns once it serves clients again. ``crash``: kill it with
        SIGKILL (no controlled shutdown, no flushed checkpoints: the broker recovers its logs
        and transaction state on start) instead of stopping it with SIGTERM."""
        with self._lock:
            proc = self._proc
            if proc is None:
                raise BrokerError("the broker is not started")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL if crash else signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._kill()
            self._proc = None
        time.sleep(down_seconds)
        with self._lock:
            self._spawn()
            self._wait_ready()

    def _wait_ready(self) -> None:
        assert self._proc is not None and self._port is not None
        deadline = time.monotonic() + self._startup_timeout
        while True:
            code = self._proc.poll()
            log = self._read_log()
            if code is not None:
                if _ADDRESS_IN_USE.search(log):
                    raise _PortTaken
                raise BrokerError(
                    f"the Kafka broker exited with code {code} while starting; "
                    f"log {self.log_path}:\n{_file_tail(self.log_path)}"
                )
            if _STARTED_MARKER in log and _port_open(self._port):
                return
            if _ADDRESS_IN_USE.search(log):
                raise _PortTaken
            if time.monotonic() > deadline:
                raise BrokerError(
                    f"the Kafka broker did not start within {self._startup_timeout:.0f} s; "
                    f"log {self.log_path}:\n{_file_tail(self.log_path)}"
                )
            time.sleep(0.1)

    def _read_log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after ``timeout`` s) and clean up.

        Removes the temporary directory (not a ``workdir`` given to the constructor). Safe to
        call more than once.

        Parameters
        ----------
        timeout
            Seconds to wait for a clean shutdown before killing the process group.
        """
        with self._lock:
            proc = self._proc
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self._kill()
            self._kill()
            self._cleanup()

    def _kill(self) -> None:
        """SIGKILL the process group if the broker is still running, and reap it."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        self._proc = None

    def _cleanup(self) -> None:
        atexit.unregister(self._stop_at_exit)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._workdir is not None and self._given_workdir is None:
            shutil.rmtree(self._workdir, ignore_errors=True)
        self._workdir = None
        self._port = None
        self._controller_port = None

    def _stop_at_exit(self) -> None:
        self.stop(timeout=5.0)

    def __repr__(self) -> str:
        state = f"running at 127.0.0.1:{self._port}" if self.running else "stopped"
        return f"<EmbeddedBroker kafka {KAFKA_VERSION} {state}>"


_SignalHandler = Callable[[int, FrameType | None], object] | int | signal.Handlers | None


class _PortTaken(Exception):
    """A port picked as free was taken before the broker bound it."""


# --------------------------------------------------------------------------------------------
# `bayestream broker`
# --------------------------------------------------------------------------------------------


def serve(
    stop_event: threading.Event | None = None,
    *,
    workdir: Path | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run an embedded broker until SIGINT/SIGTERM (or ``stop_event``), then stop it.

    Prints one line ``bootstrap.servers=127.0.0.1:PORT`` on ``out`` once the broker is ready,
    and where its log is on ``err``.

    Parameters
    ----------
    stop_event
        Stops the broker when set. Signal handlers for SIGINT and SIGTERM, which set it, are
        installed when called from the main thread.
    workdir
        Keep the broker's files in this directory instead of a temporary one.
    out, err
        Streams for the address and for messages; default ``sys.stdout`` and ``sys.stderr``.

    Returns
    -------
    int
        0 after a clean stop, 1 if the broker failed to start or died.
    """
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    event = stop_event if stop_event is not None else threading.Event()
    previous: dict[signal.Signals, _SignalHandler] = {}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        event.set()

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, on_signal)
    try:
        broker = EmbeddedBroker(workdir=workdir)
        try:
            broker.start()
        except BrokerError as exc:
            print(f"error: {exc}", file=err, flush=True)
            return 1
        try:
            print(f"bootstrap.servers={broker.bootstrap_servers}", file=out, flush=True)
            print(
                f"Kafka {KAFKA_VERSION} broker ready; log: {broker.log_path}; "
                "stop with Ctrl-C or SIGTERM",
                file=err,
                flush=True,
            )
            while not event.wait(0.5):
                if not broker.running:
                    print(
                        f"error: the Kafka broker died; log tail:\n{_file_tail(broker.log_path)}",
                        file=err,
                        flush=True,
                    )
                    return 1
            print("stopping the Kafka broker", file=err, flush=True)
            return 0
        finally:
            broker.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_broker_forever() -> int:
    """Entry point of ``bayestream broker``: serve a broker until interrupted.

    Returns
    -------
    int
        The process exit code (see :func:`serve`).
    """
    return serve()


if __name__ == "__main__":
    raise SystemExit(run_broker_forever())
