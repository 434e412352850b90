"""``bayestream serve`` as a real process against a real broker: it answers what the processor
published, follows updates and tombstones, waits for open transactions before it is ready, and
serves forecasts from records of the forecast shape."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

from bayestream.state import stream_key
from tests.integration.kafka_helpers import (
    committed_count,
    config_for,
    create_topic,
    events,
    produce,
    produce_tracked,
    read_all,
    running,
    unique,
    wait_until,
    write_config,
)

SRC = Path(__file__).resolve().parents[2] / "src"


class Serve:
    """One ``bayestream serve`` subprocess on a free port; its stderr goes to ``log``."""

    def __init__(self, bootstrap: str, config: Path, log: Path, *extra: str) -> None:
        self.log = log
        argv = [sys.executable, "-m", "bayestream.cli.main", "serve", "--kafka", bootstrap]
        argv += ["--config", str(config), "--port", "0", *extra]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(SRC), *filter(None, [env.get("PYTHONPATH")])])
        with log.open("wb") as err:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=env
            )
        self.base = ""

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def started(self, timeout: float = 60.0) -> Serve:
        def listening() -> bool:
            found = re.search(r"on (http://[\d.]+:\d+) ", self.text())
            if found:
                self.base = found.group(1)
            return bool(found)

        wait_until(listening, timeout, "serve to listen", [self])  # type: ignore[list-item]
        return self

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.text().splitlines()[-lines:])

    def get(self, path: str) -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(self.base + path, timeout=10) as response:
                status, body, kind = response.status, response.read(), response.headers
        except urllib.error.HTTPError as exc:
            status, body, kind = exc.code, exc.read(), exc.headers
        if kind.get("Content-Type", "").startswith("application/json"):
            return status, json.loads(body)
        return status, body.decode()

    def stop(self) -> int:
        if self.alive():
            self.proc.terminate()
        return self.proc.wait(30)


def _config(tmp_path: Path, tmp: str) -> Path:
    """The TOML of the processor's settings (topics named after ``tmp``), for ``--config``."""
    path = tmp_path / "config.toml"
    write_config(path, tmp)
    return path


def _path(key: str, metric: str, tail: str = "") -> str:
    quote = lambda s: urllib.parse.quote(s, safe="")  # noqa: E731
    return f"/v1/streams/{quote(key)}/{quote(metric)}{tail}"


def _all_pages(serve: Serve, query: str = "") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    cursor = ""
    while True:
        status, page = serve.get(f"/v1/streams?limit=7{query}{cursor}")
        assert status == 200, page
        out += [(s["key"], s["metric"]) for s in page["streams"]]
        if page["next_cursor"] is None:
            return out
        cursor = "&cursor=" + page["next_cursor"]


def _metric(serve: Serve, name: str) -> float:
    status, text = serve.get("/metrics")
    assert status == 200
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    assert found, name
    return float(found.group(1))


def test_serve_answers_what_the_processor_published(kafka_bootstrap: str, tmp_path: Path) -> None:
    tmp = unique("serve")
    create_topic(kafka_bootstrap, f"{tmp}.in", 2)
    evs = events(900, keys=20)
    evs[0]["key"] = "team/a b"  # a key with "/" and a space: percent-encoded in the path
    produce(
        kafka_bootstrap,
        f"{tmp}.in",
        [json.dumps(e).encode() for e in evs],
        [e["key"].encode() for e in evs],
    )
    config = config_for(tmp)
    with running(config, kafka_bootstrap):
        wait_until(
            lambda: committed_count(kafka_bootstrap, f"{tmp}.group", f"{tmp}.in") == 900,
            60,
            "the processor",
        )
    messages = read_all(kafka_bootstrap, f"{tmp}.posteriors")
    latest = {m.key(): m for m in messages}  # (no tombstones from the processor here)
    assert len(latest) > 20

    serve = Serve(kafka_bootstrap, _config(tmp_path, tmp), tmp_path / "s.log")
    try:
        serve.started()
        wait_until(lambda: serve.get("/readyz")[0] == 200, 60, "ready", [serve])  # type: ignore[list-item]
        assert serve.get("/healthz")[0] == 200
        before = time.time()
        for m in latest.values():
            record = json.loads(m.value())
            status, body = serve.get(_path(record["key"], record["metric"]))
            assert status == 200, body
            assert body.pop("kafka") == {"partition": m.partition(), "offset": m.offset()}
            staleness = body.pop("staleness_seconds")
            assert before - record["last_ts"] <= staleness <= time.time() - record["last_ts"]
            assert body == record
        assert serve.get("/v1/streams/team%2Fa%20b/lat")[1]["key"] == "team/a b"
        names = sorted(tuple(json.loads(k).values()) for k in latest)
        assert _all_pages(serve) == names
        assert _all_pages(serve, "&metric=err&prefix=host-1") == [
            n for n in names if n[1] == "err" and n[0].startswith("host-1")
        ]
        assert serve.get(_path("host-0", "nope"))[0] == 404
        assert _metric(serve, "bayestream_serve_streams") == len(latest)
        assert _metric(serve, "bayestream_serve_ready") == 1
        assert _metric(serve, "bayestream_serve_lag_messages") == 0

        # the processor goes on: serve follows without a restart
        more = events(300, keys=20, seed=1)
        for e in more:
            e["ts"] += 10_000
        more.append({"key": "fresh", "metric": "lat", "ts": 20_000, "value": 10.0})
        produce(
            kafka_bootstrap,
            f"{tmp}.in",
            [json.dumps(e).encode() for e in more],
            [e["key"].encode() for e in more],
        )
        with running(config, kafka_bootstrap):
            wait_until(
                lambda: committed_count(kafka_bootstrap, f"{tmp}.group", f"{tmp}.in") == 1201,
                60,
                "the processor",
            )
        latest = {m.key(): m for m in read_all(kafka_bootstrap, f"{tmp}.posteriors")}

        def caught_up() -> bool:
            return all(
                serve.get(_path(*json.loads(k).values()))[1].get("kafka", {}).get("offset")
                == m.offset()
                for k, m in latest.items()
            )

        wait_until(caught_up, 30, "serve to follow the processor", [serve])  # type: ignore[list-item]
        assert serve.get(_path("fresh", "lat"))[1]["last_ts"] == 20_000

        # a tombstone deletes the stream
        producer = Producer({"bootstrap.servers": kafka_bootstrap})
        producer.produce(f"{tmp}.posteriors", None, stream_key("fresh", "lat"))
        assert producer.flush(30) == 0
        wait_until(
            lambda: serve.get(_path("fresh", "lat"))[0] == 404,
            30,
            "the tombstone",
            [serve],  # type: ignore[list-item]
        )
        assert ("fresh", "lat") not in _all_pages(serve)
        assert _metric(serve, "bayestream_serve_streams") == len(latest) - 1
        assert _metric(serve, 'bayestream_serve_records_total{outcome="deleted"}') == 1
    finally:
        code = serve.stop()
    assert code == 0, serve.tail()


def _posterior(key: str, metric: str, last_ts: float, **extra: Any) -> bytes:
    value = {
        "key": key,
        "metric": metric,
        "family": "normal_gamma",
        "params": {"mu": 1.0, "kappa": 2.0, "alpha": 3.0, "beta": 4.0},
        "mean": 1.0,
        "sd": 0.1,
        "n_eff": 20.0,
        "last_ts": last_ts,
        **extra,
    }
    return json.dumps(value).encode()


def test_ready_only_after_open_transactions_and_aborted_records_never_show(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    tmp = unique("serve-ready")
    topic = f"{tmp}.posteriors"
    create_topic(kafka_bootstrap, topic, 2)
    produce_tracked(
        kafka_bootstrap,
        topic,
        [_posterior(f"k{i}", "lat", 100.0 + i) for i in range(10)],
        [stream_key(f"k{i}", "lat") for i in range(10)],
    )
    txn = Producer({"bootstrap.servers": kafka_bootstrap, "transactional.id": unique("txn")})
    txn.init_transactions(30)
    txn.begin_transaction()
    txn.produce(topic, _posterior("late", "lat", 500.0), stream_key("late", "lat"))
    txn.produce(topic, _posterior("k0", "lat", 999.0), stream_key("k0", "lat"))
    txn.flush(30)  # written, not committed: beyond the last stable offset

    serve = Serve(kafka_bootstrap, _config(tmp_path, tmp), tmp_path / "s.log")
    try:
        serve.started()
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:  # held back by the open transaction
            assert serve.get("/readyz")[0] == 503
            time.sleep(0.2)
        assert serve.get(_path("late", "lat"))[0] == 404  # not committed: not visible
        assert _metric(serve, "bayestream_serve_ready") == 0
        txn.commit_transaction(30)
        wait_until(lambda: serve.get("/readyz")[0] == 200, 30, "ready", [serve])  # type: ignore[list-item]
        assert serve.get(_path("late", "lat"))[1]["last_ts"] == 500.0
        assert serve.get(_path("k0", "lat"))[1]["last_ts"] == 999.0

        txn.begin_transaction()
        txn.produce(topic, _posterior("k1", "lat", 7777.0), stream_key("k1", "lat"))
        txn.produce(topic, _posterior("ghost", "lat", 1.0), stream_key("ghost", "lat"))
        txn.flush(30)
        txn.abort_transaction(30)
        produce_tracked(
            kafka_bootstrap, topic, [_posterior("after", "lat", 1.0)], [stream_key("after", "lat")]
        )
        wait_until(
            lambda: serve.get(_path("after", "lat"))[0] == 200, 30, "a later record", [serve]
        )  # type: ignore[list-item]
        assert serve.get(_path("ghost", "lat"))[0] == 404
        assert serve.get(_path("k1", "lat"))[1]["last_ts"] == 101.0
    finally:
        code = serve.stop()
    assert code == 0, serve.tail()


FORECAST = {
    "60": {"at": 1060.0, "quantiles": {"0.5": 40.0, "0.95": 90.0}},
    "300": {"at": 1300.0, "quantiles": {"0.5": 42.0, "0.95": 97.5}},
}


def test_forecast_from_records_on_a_topic(kafka_bootstrap: str, tmp_path: Path) -> None:
    tmp = unique("serve-forecast")
    topic = f"{tmp}.posteriors"
    create_topic(kafka_bootstrap, topic, 2)
    produce_tracked(
        kafka_bootstrap,
        topic,
        [
            _posterior("svc-a", "requests", 1000.0, forecast=FORECAST),
            _posterior("svc-b", "requests", 1000.0),  # a rule without forecast horizons
            b"not a posterior",  # counted and skipped
        ],
        [stream_key("svc-a", "requests"), stream_key("svc-b", "requests"), b"junk"],
    )
    serve = Serve(kafka_bootstrap, _config(tmp_path, tmp), tmp_path / "s.log")
    try:
        serve.started()
        wait_until(lambda: serve.get("/readyz")[0] == 200, 30, "ready", [serve])  # type: ignore[list-item]
        status, body = serve.get(_path("svc-a", "requests", "/forecast?horizon=300&q=0.95"))
        assert status == 200
        assert body["value"] == 97.5 and body["at"] == 1300.0
        assert body["staleness_seconds"] > time.time() - 1000.0 - 60
        status, body = serve.get(_path("svc-a", "requests", "/forecast?horizon=600&q=0.95"))
        assert (status, body) == (
            400,
            {"error": "horizon 600 not published", "horizons": [60, 300], "quantiles": [0.5, 0.95]},
        )
        status, body = serve.get(_path("svc-b", "requests", "/forecast?horizon=300&q=0.95"))
        assert status == 400 and body["horizons"] == []
        assert serve.get(_path("svc-c", "requests", "/forecast?horizon=300&q=0.95"))[0] == 404
        assert _metric(serve, 'bayestream_serve_records_total{outcome="invalid"}') == 1
    finally:
        code = serve.stop()
    assert code == 0, serve.tail()


def _one_line_error(argv: list[str], timeout: float = 60.0) -> str:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), *filter(None, [env.get("PYTHONPATH")])])
    done = subprocess.run(
        [sys.executable, "-m", "bayestream.cli.main", "serve", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    return lines[0]


def test_start_errors_are_one_line(kafka_bootstrap: str, tmp_path: Path) -> None:
    path = str(_config(tmp_path, unique("serve-missing")))
    line = _one_line_error(["--kafka", kafka_bootstrap, "--config", path, "--port", "0"])
    assert "does not exist" in line and "posteriors" in line
    start = time.monotonic()
    line = _one_line_error(
        ["--kafka", "127.0.0.1:1", "--config", path, "--port", "0", "--connect-timeout", "2"]
    )
    assert "127.0.0.1:1" in line and time.monotonic() - start < 30


def test_a_forecast_survives_a_restart_of_both_processes(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """End to end (issue 23): a processor with forecasts on latency publishes; serve answers
    the forecast an autoscaler asks for; both processes are killed (-9) and started again; the
    processor goes on from its changelog, and the new serve answers the newest forecast, the
    one in the newest record of the stream on the posteriors topic."""
    from tests.integration.kafka_helpers import Runtime

    tmp = unique("forecast")
    create_topic(kafka_bootstrap, f"{tmp}.in", 2)
    config = _config(tmp_path, tmp)
    text = config.read_text()
    text = text.replace(
        'metric = "lat"\n', 'metric = "lat"\nforecast_horizons_seconds = [60, 300]\n'
    )
    config.write_text(text)
    first = events(600, keys=6)
    produce(kafka_bootstrap, f"{tmp}.in", [json.dumps(e).encode() for e in first],
            [e["key"].encode() for e in first])  # fmt: skip

    def latest_forecast(key: str) -> dict[str, Any]:
        records = [json.loads(m.value()) for m in read_all(kafka_bootstrap, f"{tmp}.posteriors")]
        mine = [r for r in records if r["key"] == key and r["metric"] == "lat"]
        return dict(mine[-1]["forecast"]["300"], last_ts=mine[-1]["last_ts"])

    def answered(serve: Serve, key: str) -> tuple[int, Any]:
        return serve.get(_path(key, "lat", "/forecast?horizon=300&q=0.95"))

    for round_, batch in enumerate([first, events(300, keys=6, seed=2)]):
        if round_:
            for e in batch:
                e["ts"] += 5_000
            produce(kafka_bootstrap, f"{tmp}.in", [json.dumps(e).encode() for e in batch],
                    [e["key"].encode() for e in batch])  # fmt: skip
        total = 600 + 300 * round_
        runtime = Runtime(kafka_bootstrap, config, tmp_path / f"run{round_}.log")
        serve: Serve | None = None
        try:
            wait_until(
                lambda total=total: (
                    committed_count(kafka_bootstrap, f"{tmp}.group", f"{tmp}.in") == total
                ),
                120,
                "the processor",
                [runtime],  # type: ignore[list-item]
            )
            # (serve refuses to start before the processor has made its topics)
            serve = Serve(kafka_bootstrap, config, tmp_path / f"serve{round_}.log").started()
            want = latest_forecast("host-1")

            def served(want: dict[str, Any] = want, serve: Serve = serve) -> bool:
                status, body = answered(serve, "host-1")
                return status == 200 and body["value"] == want["quantiles"]["0.95"]

            wait_until(served, 60, "serve to answer the newest forecast", [serve])  # type: ignore[list-item]
            status, body = answered(serve, "host-1")
            assert body["at"] == want["at"] == want["last_ts"] + 300
            assert body["value"] > 0 and "staleness_seconds" in body
            status, refused = serve.get(_path("host-1", "lat", "/forecast?horizon=600&q=0.95"))
            assert status == 400 and refused["horizons"] == [60, 300]
        finally:
            runtime.kill()  # kill -9 both, then start both again
            if serve is not None:
                serve.proc.kill()
                serve.proc.wait(30)
    assert want["last_ts"] >= 5_000  # the second round's events reached the forecast
