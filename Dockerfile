# bayestream: the stream processor (`bayestream run --kafka`), the telemetry generator and,
# once merged, the query service (`bayestream serve`), in one slim, non-root image.
#
#   docker build -t bayestream:0.1.0 .
#   docker run --rm -v $PWD/my.toml:/etc/bayestream/bayestream.toml:ro \
#       -e BAYESTREAM_KAFKA_SASL_PASSWORD=... bayestream:0.1.0 \
#       run --kafka broker:9092 --config /etc/bayestream/bayestream.toml
#
# Configuration: a TOML file mounted at /etc/bayestream/bayestream.toml (the shipped one is
# deploy/config/bayestream.toml), and any librdkafka property from BAYESTREAM_KAFKA_<PROPERTY>
# environment variables (dots as underscores: BAYESTREAM_KAFKA_SASL_PASSWORD sets
# sasl.password). The bootstrap servers are the `--kafka` argument.

ARG PYTHON_IMAGE=python:3.12.8-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m venv /opt/bayestream \
    && /opt/bayestream/bin/pip install --no-cache-dir .

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="bayestream" \
      org.opencontainers.image.description="Online Bayesian inference on telemetry streams, on Apache Kafka" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 bayestream \
    && useradd --system --uid 10001 --gid bayestream --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin bayestream
COPY --from=build /opt/bayestream /opt/bayestream
COPY deploy/config/bayestream.toml /etc/bayestream/bayestream.toml
# NUMBA_CACHE_DIR: the kernels compiled below are loaded from here at start, so neither the
# start nor the first event waits for compilation (the cache is keyed on the installed
# sources, which this layer fixes). numba needs the folder WRITABLE even to load from it (it
# probes it with a temporary file, and otherwise falls back to compiling elsewhere, or fails
# to import for a user without a home): it belongs to the run-time user. With a read-only
# root file system, copy it to a writable volume first (deploy/kubernetes/deployment.yaml).
ENV PATH=/opt/bayestream/bin:$PATH \
    NUMBA_CACHE_DIR=/opt/bayestream/numba-cache \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# Compile every family's kernels at build time (the warm-up that `run` does at start), then
# check that a second warm-up finds everything cached.
RUN bayestream check-config /etc/bayestream/bayestream.toml > /dev/null \
    && python -c "from bayestream.config import load_config; from bayestream.engine.warmup import warm_up; warm_up(load_config('/etc/bayestream/bayestream.toml'))" \
    && python -c "from bayestream.models._jit import cache_is_empty; assert not cache_is_empty(), 'numba cache empty'" \
    && chown -R 10001:10001 /opt/bayestream/numba-cache
USER 10001:10001
WORKDIR /tmp
# 9464: /metrics, /healthz, /readyz of `run` ([kafka] metrics_port); 8080: `serve`
EXPOSE 9464 8080
# Liveness of the processing loop. Slim images have no curl: the standard library asks.
# BAYESTREAM_HEALTH_URL points it elsewhere (e.g. the query service's /healthz on 8080).
ENV BAYESTREAM_HEALTH_URL=http://127.0.0.1:9464/healthz
HEALTHCHECK --interval=15s --timeout=5s --start-period=90s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['BAYESTREAM_HEALTH_URL'], timeout=4)"]
# Exec form: bayestream is PID 1 and gets SIGTERM itself (it then finishes the batch, commits
# and exits 0). With PID 1 and the pod name as host name, the default transactional.id
# "<group_id>-<host>-<pid>" is stable across container restarts (see docs/operations.md).
ENTRYPOINT ["bayestream"]
CMD ["run", "--kafka", "kafka:9092", "--config", "/etc/bayestream/bayestream.toml"]
