"""The ``bayestream`` command line: the composition root that reads settings and wires rooms."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bayestream.errors import BayestreamError

if TYPE_CHECKING:
    from bayestream.config import Config, Rule


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bayestream`` console script; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        code = int(args.handler(args))
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except BayestreamError as exc:
        print(f"bayestream: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (``bayestream schema | head``): normal for a pipe, not an error.
        _discard_stdout()
        return 0
    except KeyboardInterrupt:
        return 130


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush of the output left in
    its buffer does not fail again on the closed pipe."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a file descriptor (tests capture stdout in memory)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bayestream")
    except PackageNotFoundError:  # run from a source tree that is not installed
        from bayestream import __version__

        return __version__


def _at_least(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    return parse


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


DEMO_MIN_EVENTS = 100  # bayestream.cli.synthetic.MIN_EVENTS (not imported: it loads numpy)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bayestream",
        description="Online Bayesian inference on telemetry streams.",
    )
    parser.add_argument("--version", action="version", version=f"bayestream {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run", help="run the engine over JSON lines (file or stdin), or on Kafka with --kafka"
    )
    run.add_argument("--config", required=True, type=Path, help="TOML configuration file")
    run.add_argument("--input", help="JSON-lines file, or - for stdin")
    run.add_argument("--output-dir", type=Path, help="folder for the outputs")
    run.add_argument("--kafka", metavar="BOOTSTRAP", help="run on Kafka (bootstrap servers)")
    run.add_argument("--batch-size", type=_at_least(1), default=None, help="messages per batch")
    run.add_argument(
        "--create-input-topics",
        type=_at_least(1),
        metavar="PARTITIONS",
        help="with --kafka: create missing input topics with this many partitions "
        "(as [kafka] input_partitions)",
    )
    run.add_argument(
        "--labels", type=Path, help="JSON lines key, metric, ts, is_anomaly: calibration vs labels"
    )
    run.set_defaults(handler=_run)

    check = commands.add_parser("check-config", help="validate a configuration, print rules")
    check.add_argument("config", type=Path)
    check.set_defaults(handler=_check_config)

    gen = commands.add_parser(
        "generate", help="send the demo's synthetic services to Kafka as a steady stream"
    )
    gen.add_argument("--kafka", required=True, metavar="BOOTSTRAP", help="bootstrap servers")
    gen.add_argument("--topic", default="telemetry", help="input topic (default: telemetry)")
    gen.add_argument("--rate", type=float, default=200.0, help="events/s (0: full speed)")
    gen.add_argument("--events", type=_at_least(0), default=0, help="how many (0: until stopped)")
    gen.add_argument("--partitions", type=_at_least(1), default=6, help="for a missing topic")
    gen.add_argument("--labels-topic", help="also send each event's label to this topic")
    gen.add_argument("--seed", type=int, default=7)
    gen.set_defaults(handler=_generate)

    schema = commands.add_parser(
        "schema", help="print the versioned JSON Schemas of the event and of the output records"
    )
    schema.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help="event, posteriors, anomalies, drift, calibration, dead_letter or evicted "
        "(default: all, as one JSON object by name)",
    )
    schema.set_defaults(handler=_schema)

    score = commands.add_parser(
        "score-csv", help="score a timestamp,value CSV as one stream: a row of scores per row"
    )
    score.add_argument(
        "--config",
        type=Path,
        help="TOML configuration file (default: the general rule, examples/general.toml: a "
        "dlm with daily and weekly seasonality, robust, drift on)",
    )
    score.add_argument("--output", required=True, help="output CSV, or - for stdout")
    score.add_argument(
        "--metric", help="metric name of the series (picks the rule); default: the first rule's"
    )
    score.add_argument("input", help="CSV with a header naming timestamp and value, or - for stdin")
    score.set_defaults(handler=_score_csv)

    demo = commands.add_parser("demo", help="synthetic telemetry through the engine, live")
    demo.add_argument("--output-dir", type=Path, default=Path("bayestream-demo"))
    demo.add_argument(
        "--events",
        type=_at_least(DEMO_MIN_EVENTS),
        default=200_000,
        help=f"how many lines of telemetry (at least {DEMO_MIN_EVENTS}; 9 of them hostile)",
    )
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--plain", action="store_true", help="no live view (for logs and CI)")
    demo.set_defaults(handler=_demo)

    serve = commands.add_parser(
        "serve", help="query service: the latest posteriors over HTTP (docs/serve.md)"
    )
    serve.add_argument("--kafka", required=True, metavar="BOOTSTRAP", help="bootstrap servers")
    serve.add_argument("--config", required=True, type=Path, help="TOML configuration ([kafka])")
    serve.add_argument("--port", type=_at_least(0), default=8080, help="HTTP port (0: any free)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: all)")
    serve.add_argument(
        "--connect-timeout",
        type=_positive_seconds,
        default=10.0,
        metavar="SECONDS",
        help="give up when the broker does not answer at start within this long",
    )
    serve.set_defaults(handler=_serve)

    broker = commands.add_parser("broker", help="start a local Apache Kafka broker (KRaft)")
    broker.set_defaults(handler=_broker)
    return parser


def _run(args: argparse.Namespace) -> int:
    from bayestream.config import load_config
    from bayestream.engine import Engine
    from bayestream.engine.warmup import warm_up
    from bayestream.runtime.files import run_file
    from bayestream.runtime.labels import LabelJoin
    from bayestream.state._memory import keep_large_blocks_mapped

    config = load_config(args.config)
    # state columns grow by copying: mapped, they leave no free heap pages behind (see
    # bayestream.state._memory; about 80 B per stream at a million streams)
    keep_large_blocks_mapped()
    if args.create_input_topics and not args.kafka:
        raise BayestreamError("--create-input-topics applies to --kafka only")
    if args.kafka:
        if args.input or args.output_dir or args.labels:
            raise BayestreamError(
                "--kafka reads and writes topics: no --input/--output-dir/--labels "
                "(labels come from [kafka] labels_topic)"
            )
        from bayestream.runtime.service import bind_metrics, run_kafka

        if args.create_input_topics:
            kafka = config.kafka.model_copy(update={"input_partitions": args.create_input_topics})
            config = config.model_copy(update={"kafka": kafka})

        server = bind_metrics(config.kafka)  # a port in use stops here, before any other work
        try:
            warm_up(config)
        except BaseException:
            if server is not None:
                server.stop()
            raise
        return run_kafka(config, args.kafka, args.batch_size, server)
    if not args.input or not args.output_dir:
        raise BayestreamError("run needs --input and --output-dir (or --kafka BOOTSTRAP)")
    batch_size = args.batch_size or config.engine.batch_size
    _output_dir(args.output_dir, "--output-dir")
    if args.input != "-" and not Path(args.input).is_file():
        raise BayestreamError(f"--input {args.input}: no such file")
    labels = LabelJoin.load(args.labels) if args.labels else None
    warm_up(config)
    try:
        stats = run_file(Engine(config), args.input, args.output_dir, batch_size, labels=labels)
    except OSError as exc:  # the file system's, not the engine's: say which file
        raise BayestreamError(f"{exc.filename or 'I/O'}: {exc.strerror or exc}") from exc
    rate = stats.lines / stats.seconds if stats.seconds > 0 else 0.0
    print(
        f"bayestream: {stats.lines} lines, {stats.applied} applied, "
        f"{stats.dead_letters} dead letters, {stats.anomalies} anomalies, "
        f"{stats.posteriors} posterior records in {stats.seconds:.2f} s "
        f"({rate:,.0f} lines/s) -> {args.output_dir}",
        file=sys.stderr,
    )
    if labels is not None:
        print(
            f"bayestream: {labels.matched} of {labels.received} labels joined to events",
            file=sys.stderr,
        )
    return 0


def _output_dir(path: Path, option: str) -> None:
    """Create the output folder, or say in one line why it cannot be."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BayestreamError(f"{option} {path}: cannot create: {exc.strerror or exc}") from exc


def _check_config(args: argparse.Namespace) -> int:
    from bayestream.config import load_config

    config = load_config(args.config)
    resolved = {
        "engine": config.engine.model_dump(),
        "rule": [_resolved_rule(rule) for rule in config.rule],
    }
    print(json.dumps(resolved, indent=2))
    print(f"{args.config}: OK, {len(config.rule)} rule(s)", file=sys.stderr)
    return 0


def _resolved_rule(rule: Rule) -> dict[str, Any]:
    """A rule with its defaults filled in; a conjugate rule's prior by parameter name (a
    particle rule has none: its prior is ``initial``)."""
    out = rule.model_dump()
    if rule.family == "dlm":  # its parameters are figures of the state, not the prior's
        from bayestream.config.model import dlm_prior

        out["prior"] = dlm_prior(rule)
    elif rule.family != "particle":
        out["prior"] = dict(zip(rule.param_names, rule.prior_vector(), strict=True))
    return out


def _generate(args: argparse.Namespace) -> int:
    from bayestream.cli.generate import run_generate

    if not args.rate >= 0:
        raise BayestreamError(f"--rate must be >= 0, got {args.rate}")
    return run_generate(
        args.kafka,
        args.topic,
        args.rate,
        args.events,
        args.seed,
        args.partitions,
        args.labels_topic,
    )


def _schema(args: argparse.Namespace) -> int:
    from bayestream.schema.contract import NAMES, json_schema

    unknown = [name for name in args.names if name not in NAMES]
    if unknown:
        raise BayestreamError(f"no schema named {', '.join(unknown)} (one of {', '.join(NAMES)})")
    if len(args.names) == 1:
        print(json.dumps(json_schema(args.names[0]), indent=2))
    else:
        print(json.dumps({name: json_schema(name) for name in args.names or NAMES}, indent=2))
    return 0


def general_config() -> Config:
    """The configuration of ``examples/general.toml``: one rule for any univariate telemetry."""
    import tomllib
    from importlib import resources

    from bayestream.config import parse_config

    text = resources.files("bayestream.examples").joinpath("general.toml").read_text("utf-8")
    return parse_config(tomllib.loads(text), "general.toml")


def _score_csv(args: argparse.Namespace) -> int:
    from bayestream.config import load_config
    from bayestream.engine import Engine
    from bayestream.runtime.scorecsv import score_csv

    if args.config is None:  # the general rule matches any metric: name the series "value"
        config, metric = general_config(), args.metric or "value"
    else:
        config, metric = load_config(args.config), args.metric
    stats = score_csv(Engine(config), args.input, args.output, metric)
    if stats.bad_by_reason:
        counts = ", ".join(f"{reason} {n}" for reason, n in sorted(stats.bad_by_reason.items()))
        print(f"bayestream: score-csv: bad rows by reason: {counts}", file=sys.stderr)
    print(
        f"bayestream: score-csv: {stats.rows} rows, {stats.scored} scored, {stats.bad} bad, "
        f"{stats.drift_alarms} drift alarms in {stats.seconds:.2f} s -> {args.output}",
        file=sys.stderr,
    )
    return 0


def _demo(args: argparse.Namespace) -> int:
    from bayestream.cli.demo import run_demo

    _output_dir(args.output_dir, "--output-dir")
    return run_demo(args.output_dir, args.events, args.seed, live=not args.plain)


def _serve(args: argparse.Namespace) -> int:
    from bayestream.config import load_config
    from bayestream.runtime.serving import run_serve

    settings = load_config(args.config).kafka
    return run_serve(
        settings, args.kafka, host=args.host, port=args.port, connect_timeout=args.connect_timeout
    )


def _broker(args: argparse.Namespace) -> int:
    from bayestream.runtime.broker import run_broker_forever

    return run_broker_forever()


if __name__ == "__main__":
    sys.exit(main())
