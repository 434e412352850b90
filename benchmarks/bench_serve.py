"""``bayestream serve``: request latency at a fixed offered rate, and memory per stream.

Prints one JSON document (stdout) and a summary (stderr). Everything runs against a real
broker (``--bootstrap``, or an embedded one started here) and a real ``bayestream serve``
process; requests come from a real HTTP client (aiohttp, keep-alive connections) in this
process.

- ``latency``: ``--streams`` realistic posterior records (normal_gamma shape with credible
  intervals, predictive quantiles and a two-horizon ``forecast``) produced to a topic; serve
  catches up; then requests are offered open-loop at ``--rate`` per second for ``--seconds``
  (80% stream reads, 10% forecasts, 10% listing pages of 100), each to a random stream. Two
  phases: the topic quiet, then the topic receiving ``--update-rate`` new records per second
  (serve applying them while it answers). Latency is from the request's scheduled time (so a
  stall that delays later requests counts against them: no coordinated omission) to the end
  of its response body; p50, p90, p99, p99.9 and max, plus the achieved rate and any errors.
- ``memory``: RSS of a serve process holding ``--small`` streams and of one holding
  ``--memory-streams`` streams (each its own topic, read from Kafka as in production; RSS read
  from /proc after catch-up and a second's rest), per stream:
  ``(RSS_large - RSS_small) / (large - small)``; also the mean record size.

Run: ``PYTHONPATH=src python benchmarks/bench_serve.py [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))

from bayestream.state import stream_key  # noqa: E402

METRICS = ("latency_ms", "error_rate", "requests")


def log(message: str) -> None:
    print(f"bench_serve: {message}", file=sys.stderr, flush=True)


def _f(rng: random.Random, scale: float) -> float:
    return rng.random() * scale  # full-precision doubles, as the engine writes them


def posterior(key: str, metric: str, ts: float, rng: random.Random) -> bytes:
    """A record the size and shape of a normal_gamma posterior with two forecast horizons."""
    mu = _f(rng, 5.0)
    value = {
        "key": key,
        "metric": metric,
        "family": "normal_gamma",
        "params": {"mu": mu, "kappa": _f(rng, 200), "alpha": _f(rng, 100), "beta": _f(rng, 10)},
        "mean": mu,
        "sd": _f(rng, 0.1),
        "credible_intervals": {"0.95": [mu - _f(rng, 0.1), mu + _f(rng, 0.1)]},
        "predictive_quantiles": {q: _f(rng, 200) for q in ("0.5", "0.9", "0.95", "0.99")},
        "n_eff": _f(rng, 500),
        "last_ts": ts,
        "anomaly_probability": _f(rng, 0.01),
        "drift_statistic": None,
        "drift_false_alarm_probability": None,
        "forecast": {
            h: {"at": ts + int(h), "quantiles": {q: _f(rng, 200) for q in ("0.5", "0.95")}}
            for h in ("60", "300")
        },
    }
    return json.dumps(value, separators=(",", ":")).encode()


def names(n: int) -> list[tuple[str, str]]:
    return [(f"svc-{i // len(METRICS):07d}", METRICS[i % len(METRICS)]) for i in range(n)]


def create_topic(bootstrap: str, topic: str, partitions: int = 6) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = NewTopic(topic, partitions, 1, config={"cleanup.policy": "compact"})
    for future in admin.create_topics([new]).values():
        future.result(30)


def fill(bootstrap: str, topic: str, streams: list[tuple[str, str]], seed: int = 0) -> int:
    """Produce one record per stream; the bytes produced."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 20,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 1_000_000,
            "batch.num.messages": 10_000,
        }
    )
    rng = random.Random(seed)
    now = time.time()
    total = 0
    for key, metric in streams:
        value = posterior(key, metric, now - rng.random() * 60, rng)
        total += len(value)
        while True:
            try:
                producer.produce(topic, value, stream_key(key, metric))
                break
            except BufferError:
                producer.poll(0.1)
    assert producer.flush(120) == 0
    return total


class ServeProcess:
    def __init__(self, bootstrap: str, topic: str, workdir: Path) -> None:
        config = workdir / f"{topic}.toml"
        config.write_text(
            f'[kafka]\nposteriors_topic = "{topic}"\n\n'
            '[[rule]]\nmetric = "*"\nfamily = "normal_gamma"\n'
        )
        self.log = workdir / f"{topic}.log"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(SRC), *filter(None, [env.get("PYTHONPATH")])])
        argv = [sys.executable, "-m", "bayestream.cli.main", "serve", "--kafka", bootstrap]
        argv += ["--config", str(config), "--port", "0"]
        with self.log.open("wb") as err:
            self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, env=env)
        self.started = time.monotonic()
        deadline = time.monotonic() + 60
        while True:
            found = re.search(r"on (http://[\d.]+:\d+) ", self.log.read_text())
            if found:
                self.base = found.group(1)
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"serve did not start:\n{self.log.read_text()}")
            time.sleep(0.05)

    def wait_ready(self, timeout: float = 600) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.base + "/readyz", timeout=5) as r:
                    if r.status == 200:
                        return time.monotonic() - self.started
            except urllib.error.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("serve not ready")

    def cpu_seconds(self) -> float:
        """User + system CPU time of the serve process so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss(self) -> int:
        text = Path(f"/proc/{self.proc.pid}/status").read_text()
        found = re.search(r"VmRSS:\s+(\d+) kB", text)
        assert found
        return int(found.group(1)) * 1024

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {}

    def at(p: float) -> float:
        return ordered[min(int(p * len(ordered)), len(ordered) - 1)] * 1000

    return {
        "p50_ms": at(0.50),
        "p90_ms": at(0.90),
        "p99_ms": at(0.99),
        "p999_ms": at(0.999),
        "max_ms": ordered[-1] * 1000,
        "mean_ms": statistics.fmean(ordered) * 1000,
    }


class RawClient:
    """A minimal HTTP/1.1 client: a pool of keep-alive connections, GET only, responses with
    Content-Length. About a tenth of aiohttp's client CPU per request, so that on a loaded
    2-core machine the client's own stalls weigh less in the figures."""

    def __init__(self, base: str) -> None:
        host, port = base.removeprefix("http://").rsplit(":", 1)
        self.host, self.port = host, int(port)
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def get(self, path: str) -> tuple[int, bytes]:
        if self.idle:
            reader, writer = self.idle.pop()
        else:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        found = re.search(rb"(?i)content-length: *(\d+)", head)
        body = await reader.readexactly(int(found.group(1))) if found else b""
        self.idle.append((reader, writer))
        return status, body

    async def close(self) -> None:
        for _, writer in self.idle:
            writer.close()


async def offer(
    base: str,
    streams: list[tuple[str, str]],
    rate: float,
    seconds: float,
    seed: int,
    client: str = "aiohttp",
) -> dict[str, Any]:
    """Open-loop load: request i is due at start + i / rate, whatever the earlier ones do."""
    rng = random.Random(seed)
    latencies: list[float] = []
    from_send: list[float] = []  # from the moment the request was written: the client's own
    # lateness excluded (a view, not the figure: lateness of a loaded client is real delay)
    by_kind: dict[str, list[float]] = {"stream": [], "forecast": [], "list": []}
    statuses: dict[int, int] = {}
    errors: list[str] = []
    connector = aiohttp.TCPConnector(limit=256, force_close=False)
    raw = RawClient(base)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(url: str, kind: str, due: float) -> None:
            sent = time.perf_counter()
            try:
                if client == "raw":
                    status, _ = await raw.get(url[len(base) :])
                else:
                    async with session.get(url) as response:
                        await response.read()
                        status = response.status
            except (aiohttp.ClientError, OSError, asyncio.IncompleteReadError) as exc:
                errors.append(repr(exc))
                return
            statuses[status] = statuses.get(status, 0) + 1
            done = time.perf_counter()
            from_send.append(done - sent)
            elapsed = done - due
            latencies.append(elapsed)
            by_kind[kind].append(elapsed)

        # warm the connections and the server's code paths
        await asyncio.gather(
            *(one(base + "/healthz", "stream", time.perf_counter()) for _ in range(50))
        )
        latencies.clear()
        from_send.clear()
        by_kind = {k: [] for k in by_kind}
        statuses.clear()
        tasks: list[asyncio.Task[None]] = []
        total = int(rate * seconds)
        start = time.perf_counter()
        sent = 0
        while sent < total:
            now = time.perf_counter()
            due_count = min(int((now - start) * rate) + 1, total)
            while sent < due_count:
                key, metric = streams[rng.randrange(len(streams))]
                roll = rng.random()
                path = f"/v1/streams/{key}/{metric}"
                if roll < 0.8:
                    kind = "stream"
                elif roll < 0.9:
                    kind, path = "forecast", path + "/forecast?horizon=300&q=0.95"
                else:
                    kind, path = "list", f"/v1/streams?prefix={key[:-2]}&limit=100"
                tasks.append(asyncio.create_task(one(base + path, kind, start + sent / rate)))
                sent += 1
            await asyncio.sleep(max(start + sent / rate - time.perf_counter(), 0))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    await raw.close()
    return {
        "client": client,
        "offered_per_s": rate,
        "achieved_per_s": len(latencies) / elapsed,
        "requests": len(latencies),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "errors": len(errors),
        "first_errors": errors[:3],
        **percentiles(latencies),
        "by_kind": {k: percentiles(v) for k, v in by_kind.items()},
        "from_send": percentiles(from_send),
    }


def updater(
    bootstrap: str, topic: str, streams: list[tuple[str, str]], rate: float, stop: Any
) -> None:
    """New records for random streams at ``rate`` per second until ``stop`` (run in a process
    of its own, like a processor: it takes no GIL from the client)."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    rng = random.Random(99)
    start = time.perf_counter()
    sent = 0
    while not stop.is_set():
        due = int((time.perf_counter() - start) * rate)
        while sent < due:
            key, metric = streams[rng.randrange(len(streams))]
            producer.produce(
                topic, posterior(key, metric, time.time(), rng), stream_key(key, metric)
            )
            sent += 1
        producer.poll(0)
        time.sleep(0.005)
    producer.flush(30)


def latency(args: argparse.Namespace, bootstrap: str, workdir: Path) -> dict[str, Any]:
    topic = f"bench-serve-{os.getpid()}-latency"
    streams = names(args.streams)
    create_topic(bootstrap, topic)
    t = time.monotonic()
    size = fill(bootstrap, topic, streams)
    log(
        f"{len(streams)} records ({size / len(streams):.0f} B each) in {time.monotonic() - t:.1f} s"
    )
    serve = ServeProcess(bootstrap, topic, workdir)
    if args.nice is not None:  # the service and its client ahead of the machine's other work
        os.setpriority(os.PRIO_PROCESS, serve.proc.pid, args.nice)
        os.setpriority(os.PRIO_PROCESS, 0, args.nice)
    try:
        ready = serve.wait_ready()
        log(f"serve ready after {ready:.1f} s")
        out: dict[str, Any] = {"streams": len(streams), "record_bytes": size / len(streams)}
        for client in args.clients:
            cpu = serve.cpu_seconds()
            quiet = asyncio.run(offer(serve.base, streams, args.rate, args.seconds, 1, client))
            quiet["serve_cpu_us_per_request"] = (
                (serve.cpu_seconds() - cpu) / quiet["requests"] * 1e6
            )
            quiet["load_average"] = os.getloadavg()
            out[f"quiet_topic_{client}"] = quiet
            log(f"quiet topic, {client} client: {_summary(quiet)}")
        stop = multiprocessing.Event()
        thread = multiprocessing.Process(
            target=updater, args=(bootstrap, topic, streams, args.update_rate, stop), daemon=True
        )
        thread.start()
        try:
            time.sleep(1.0)
            for client in args.clients:
                cpu = serve.cpu_seconds()
                updating = asyncio.run(
                    offer(serve.base, streams, args.rate, args.seconds, 2, client)
                )
                updating["serve_cpu_us_per_request_and_update"] = (
                    (serve.cpu_seconds() - cpu) / updating["requests"] * 1e6
                )
                updating["update_records_per_s"] = args.update_rate
                updating["load_average"] = os.getloadavg()
                out[f"updating_topic_{client}"] = updating
                log(f"updating at {args.update_rate:.0f}/s, {client} client: {_summary(updating)}")
        finally:
            stop.set()
            thread.join(30)
        out["serve_rss_bytes"] = serve.rss()
        return out
    finally:
        serve.stop()


def _summary(r: dict[str, Any]) -> str:
    return (
        f"{r['achieved_per_s']:.0f} req/s, p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, "
        f"p99.9 {r['p999_ms']:.2f} ms, max {r['max_ms']:.1f} ms (from send: p50 "
        f"{r['from_send']['p50_ms']:.2f}, p99 {r['from_send']['p99_ms']:.2f} ms), statuses "
        f"{r['statuses']}, errors {r['errors']}, load {os.getloadavg()[0]:.1f}"
    )


def memory(args: argparse.Namespace, bootstrap: str, workdir: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"method": "serve processes reading real topics; RSS from /proc"}
    rss: dict[int, int] = {}
    for n in (args.small, args.memory_streams):
        topic = f"bench-serve-{os.getpid()}-memory-{n}"
        create_topic(bootstrap, topic)
        t = time.monotonic()
        size = fill(bootstrap, topic, names(n), seed=n)
        log(f"memory: {n} records ({size / n:.0f} B each) in {time.monotonic() - t:.1f} s")
        serve = ServeProcess(bootstrap, topic, workdir)
        try:
            ready = serve.wait_ready()
            time.sleep(1.0)
            rss[n] = serve.rss()
            out[f"rss_bytes_{n}"] = rss[n]
            out[f"catch_up_seconds_{n}"] = ready
            out[f"record_bytes_{n}"] = size / n
            log(f"memory: {n} streams: RSS {rss[n] / 2**20:.1f} MiB, ready after {ready:.1f} s")
        finally:
            serve.stop()
    large, small = args.memory_streams, args.small
    out["bytes_per_stream"] = (rss[large] - rss[small]) / (large - small)
    out["streams"] = large
    log(f"memory: {out['bytes_per_stream']:.0f} B per stream at {large} streams")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", help="a broker (default: start an embedded one)")
    parser.add_argument("--streams", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--update-rate", type=float, default=1000.0)
    parser.add_argument("--memory-streams", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument(
        "--clients",
        nargs="+",
        choices=["aiohttp", "raw"],
        default=["aiohttp", "raw"],
        help="HTTP clients to measure with, in turn",
    )
    parser.add_argument(
        "--nice",
        type=int,
        help="run serve and the client at this nice value (e.g. -10, as root): on a machine "
        "shared with other work, measures the service as if it had its CPU to itself",
    )
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--quick", action="store_true", help="small and short (CI smoke run)")
    args = parser.parse_args()
    if args.quick:
        args.streams, args.seconds, args.memory_streams, args.small = 5_000, 3.0, 20_000, 1_000
    broker = None
    bootstrap = args.bootstrap
    if bootstrap is None:
        from bayestream.runtime.broker import EmbeddedBroker

        broker = EmbeddedBroker(heap="1g").start()
        bootstrap = broker.bootstrap_servers
    result: dict[str, Any] = {
        "benchmark": "serve",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "nice": args.nice,
    }
    try:
        with tempfile.TemporaryDirectory() as tmp:
            if not args.skip_latency:
                result["latency"] = latency(args, bootstrap, Path(tmp))
            if not args.skip_memory:
                result["memory"] = memory(args, bootstrap, Path(tmp))
    finally:
        if broker is not None:
            broker.stop()
    result["load_average_at_end"] = os.getloadavg()
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
