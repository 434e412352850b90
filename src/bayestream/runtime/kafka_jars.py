"""Apache Kafka's jars for the embedded broker, fetched once from Maven Central with ``mvn``.

A generated pom depends on ``org.apache.kafka:kafka_2.13`` and the Log4j 2 SLF4J binding;
``maven-dependency-plugin``'s ``copy-dependencies`` puts the runtime jars into a cache
directory (``~/.cache/bayestream`` by default), which a marker file declares complete and a lock
file guards against two processes fetching at once. Also where ``java`` is found and checked.

This module imports only the standard library.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "KAFKA_VERSION",
    "BrokerError",
    "checked_java",
    "default_jar_cache",
    "ensure_broker_jars",
    "tail",
]

KAFKA_VERSION = "4.3.1"
"""Version of Apache Kafka (Scala 2.13 build) that the broker runs."""

SCALA_VERSION = "2.13"
LOG4J_VERSION = "2.25.4"
DEPENDENCY_PLUGIN_VERSION = "3.8.1"

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


class BrokerError(RuntimeError):
    """The embedded Kafka broker could not be provisioned, started or stopped."""


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


def checked_java() -> str:
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
                f"(is Maven Central reachable?):\n{tail(output, 40)}"
            )
        jars = sorted(p.name for p in lib_dir.glob("*.jar"))
        if f"kafka_{SCALA_VERSION}-{KAFKA_VERSION}.jar" not in jars:
            raise BrokerError(f"Maven finished but {lib_dir} holds no Kafka {KAFKA_VERSION} jar")
        marker = lib_dir / _COMPLETE_MARKER
        tmp = marker.with_suffix(".tmp")
        tmp.write_text(_marker_text() + "\n".join(jars) + "\n", encoding="utf-8")
        os.replace(tmp, marker)
    return lib_dir


def tail(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])
