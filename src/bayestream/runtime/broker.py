"""A real single-node Apache Kafka broker (KRaft mode) without Docker.

For tests, demos and local runs. The broker's jars are resolved once from Maven Central with
``mvn`` into a cache directory; each :class:`EmbeddedBroker` then formats a fresh log directory
in a temporary directory and runs ``kafka.Kafka`` in a ``java`` child process that listens on
free loopback ports only.

Needs Java 17+ on ``PATH`` (or ``$JAVA_HOME``), and Maven the first time the jars are fetched.

This module imports only the standard library.

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
import errno
import functools
import hashlib
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
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import FrameType, TracebackType
from typing import TextIO

__all__ = [
    "KAFKA_VERSION",
    "BrokerError",
    "EmbeddedBroker",
    "default_jar_cache",
    "ensure_broker_jars",
    "run_broker_forever",
    "serve",
]

KAFKA_VERSION = "4.3.1"
"""Version of Apache Kafka (Scala 2.13 build) that the broker runs."""

SCALA_VERSION = "2.13"
LOG4J_VERSION = "2.25.4"
DEPENDENCY_PLUGIN_VERSION = "3.8.1"

_STARTED_MARKER = "Kafka Server started"
_COMPLETE_MARKER = ".bayestream-complete"
_LOCK_FILE = ".bayestream-lock"

_POM_XML = f"""<?xml version="1.0" encoding="UTF-8"?>
<!-- Resolves the runtime classpath of an Apache Kafka broker; written by bayestream. -->
<project xmlns="http://maven.apache.org/POM/4.0.0"
         xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
         xsi:schemaLocation="http://maven.apache.org/POM/4.0.0
                             https://maven.apache.org/xsd/maven-4.0.0.xsd">
  <modelVersion>4.0.0</modelVersion>
  <groupId>io.bayestream</groupId>
  <artifactId>bayestream-kafka-broker</artifactId>
  <version>{KAFKA_VERSION}</version>
  <packaging>pom</packaging>

  <properties>
    <project.build.sourceEncoding>UTF-8</project.build.sourceEncoding>
    <broker.lib>${{project.build.directory}}/lib</broker.lib>
  </properties>

  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_{SCALA_VERSION}</artifactId>
      <version>{KAFKA_VERSION}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-api</artifactId>
      <version>{LOG4J_VERSION}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-core</artifactId>
      <version>{LOG4J_VERSION}</version>
    </dependency>
    <!-- The SLF4J 1.x binding: without it the broker logs nothing. -->
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>{LOG4J_VERSION}</version>
    </dependency>
  </dependencies>

  <build>
    <plugins>
      <plugin>
        <groupId>org.apache.maven.plugins</groupId>
        <artifactId>maven-dependency-plugin</artifactId>
        <version>{DEPENDENCY_PLUGIN_VERSION}</version>
        <configuration>
          <outputDirectory>${{broker.lib}}</outputDirectory>
          <includeScope>runtime</includeScope>
          <overWriteReleases>true</overWriteReleases>
        </configuration>
      </plugin>
    </plugins>
  </build>
</project>
"""

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


class BrokerError(RuntimeError):
    """The embedded Kafka broker could not be provisioned, started or stopped."""


# --------------------------------------------------------------------------------------------
# Tools and jars
# --------------------------------------------------------------------------------------------


def _find_java() -> str:
    """Return the ``java`` executable: ``$JAVA_HOME/bin/java`` if present, else ``PATH``."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("java")
    if found is None:
        raise BrokerError(
            "`java` was not found on PATH (nor in $JAVA_HOME/bin): the embedded Kafka broker "
            "needs a Java 17+ runtime, e.g. `apt-get install openjdk-17-jre-headless` or a "
            "JDK from https://adoptium.net"
        )
    return found


@functools.cache
def _java_major_version(java: str) -> int | None:
    """Return the major version of a ``java`` executable, or ``None`` if it is unclear."""
    try:
        done = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', done.stderr + done.stdout)
    if match is None:
        return None
    major = int(match.group(1))
    if major == 1 and match.group(2) is not None:  # "1.8.0_392" is Java 8
        major = int(match.group(2))
    return major


def _checked_java() -> str:
    """Return a ``java`` executable that can run a Kafka 4 broker, or raise BrokerError."""
    java = _find_java()
    major = _java_major_version(java)
    if major is not None and major < 17:
        raise BrokerError(
            f"{java} is Java {major}; the Kafka {KAFKA_VERSION} broker needs Java 17 or newer "
            "(set JAVA_HOME or put a newer `java` first on PATH)"
        )
    return java


def default_jar_cache() -> Path:
    """Return the default directory of the broker's jars.

    Returns
    -------
    Path
        ``$BAYESTREAM_CACHE/kafka-<version>/lib`` when ``BAYESTREAM_CACHE`` is set, else
        ``$XDG_CACHE_HOME/bayestream/kafka-<version>/lib`` (``XDG_CACHE_HOME`` defaults to
        ``~/.cache``).
    """
    root = os.environ.get("BAYESTREAM_CACHE")
    if root:
        base = Path(root).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "bayestream"
    return base / f"kafka-{KAFKA_VERSION}" / "lib"


def _marker_text() -> str:
    digest = hashlib.sha256(_POM_XML.encode("utf-8")).hexdigest()[:16]
    return f"kafka={KAFKA_VERSION} pom={digest}\n"


def _jars_complete(lib_dir: Path) -> bool:
    """Whether a finished copy of this version's jars is in ``lib_dir``."""
    marker = lib_dir / _COMPLETE_MARKER
    try:
        lines = marker.read_text(encoding="utf-8").splitlines()
    except OSError:
        return False
    if not lines or lines[0] + "\n" != _marker_text():
        return False
    jars = [line for line in lines[1:] if line]
    return bool(jars) and all((lib_dir / jar).is_file() for jar in jars)


@contextlib.contextmanager
def _file_lock(path: Path, timeout: float) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (between processes), waiting up to ``timeout``."""
    import fcntl  # POSIX only; imported here so that importing the module stays portable

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() > deadline:
                    raise BrokerError(
                        f"timed out after {timeout:.0f} s waiting for the lock {path} "
                        "(another process is downloading the Kafka jars?)"
                    ) from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def ensure_broker_jars(cache_dir: Path | None = None, *, timeout: float = 900.0) -> Path:
    """Make sure the Kafka broker's runtime jars are in a local directory.

    The first call runs ``mvn dependency:copy-dependencies`` on an embedded pom (Apache Kafka
    plus the Log4j 2 SLF4J binding); later calls return at once. A marker file written after a
    successful copy tells finished copies from interrupted ones, which are redone, and a file
    lock keeps concurrent processes (e.g. pytest-xdist workers) from racing.

    Parameters
    ----------
    cache_dir
        Directory that receives the jars; default :func:`default_jar_cache`.
    timeout
        Seconds allowed for Maven, and for waiting on another process's download.

    Returns
    -------
    Path
        The directory holding the jars (use ``<dir>/*`` as the Java classpath).

    Raises
    ------
    BrokerError
        If the jars are missing and ``mvn`` is not installed or fails.
    """
    lib_dir = (cache_dir if cache_dir is not None else default_jar_cache()).expanduser()
    lib_dir = lib_dir.resolve()
    if _jars_complete(lib_dir):
        return lib_dir
    lib_dir.mkdir(parents=True, exist_ok=True)
    with _file_lock(lib_dir / _LOCK_FILE, timeout):
        if _jars_complete(lib_dir):  # another process finished while we waited
            return lib_dir
        mvn = shutil.which("mvn")
        if mvn is None:
            raise BrokerError(
                f"the Kafka broker jars are not in {lib_dir} and `mvn` was not found on PATH: "
                "install Apache Maven (e.g. `apt-get install maven`) so they can be fetched "
                "from Maven Central once, or set BAYESTREAM_CACHE to a directory that already "
                f"holds kafka-{KAFKA_VERSION}/lib"
            )
        (lib_dir / _COMPLETE_MARKER).unlink(missing_ok=True)
        for stale in lib_dir.glob("*.jar"):
            stale.unlink()
        with tempfile.TemporaryDirectory(prefix="bayestream-mvn-") as build:
            pom = Path(build) / "pom.xml"
            pom.write_text(_POM_XML, encoding="utf-8")
            command = [
                mvn,
                "-q",
                "-B",
                "-f",
                str(pom),
                "dependency:copy-dependencies",
                f"-Dbroker.lib={lib_dir}",
            ]
            try:
                done = subprocess.run(
                    command,
                    cwd=build,
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    text=True,
                    timeout=timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                raise BrokerError(
                    f"Maven did not finish fetching the Kafka jars within {timeout:.0f} s"
                ) from exc
        if done.returncode != 0:
            output = (done.stdout + done.stderr).strip()
            raise BrokerError(
                f"`{' '.join(command)}` failed with exit code {done.returncode} "
                f"(is Maven Central reachable?):\n{_tail(output, 40)}"
            )
        jars = sorted(p.name for p in lib_dir.glob("*.jar"))
        if f"kafka_{SCALA_VERSION}-{KAFKA_VERSION}.jar" not in jars:
            raise BrokerError(f"Maven finished but {lib_dir} holds no Kafka {KAFKA_VERSION} jar")
        marker = lib_dir / _COMPLETE_MARKER
        tmp = marker.with_suffix(".tmp")
        tmp.write_text(_marker_text() + "\n".join(jars) + "\n", encoding="utf-8")
        os.replace(tmp, marker)
    return lib_dir


# --------------------------------------------------------------------------------------------
# The broker process
# --------------------------------------------------------------------------------------------


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _file_tail(path: Path, lines: int = 40, max_bytes: int = 64 * 1024) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read()
    except OSError:
        return "(no log)"
    return _tail(data.decode("utf-8", errors="replace"), lines)


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
            java = _checked_java()
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
                + _tail((fmt.stdout + fmt.stderr).strip(), 40)
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

    def restart(self, down_seconds: float = 0.0, timeout: float = 20.0) -> None:
        """Stop the broker process and start it again on the same ports and data, as clients
        see a broker restart; returns once it serves clients again."""
        with self._lock:
            proc = self._proc
            if proc is None:
                raise BrokerError("the broker is not started")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
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
