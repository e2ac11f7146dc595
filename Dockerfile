# syntax=docker/dockerfile:1
# rcr-stream worker image: `docker build -t rcr-stream:0.1.0 .` at the repository root.
# Runs `rcr worker` by default; any other rcr command replaces CMD, e.g.
#   docker run --rm rcr-stream:0.1.0 simulate
# Configuration is environment only (RCR_*, see docs/OPERATIONS.md); state lives in
# RCR_STATE_DIR=/var/lib/rcr/data: mount a volume there.
ARG PYTHON_IMAGE=python:3.11-slim

# --- build: install the package and its locked dependencies into a virtualenv ---------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
# A compiler for dependencies without a wheel on this platform (x86_64 has wheels for all;
# arm64 may build some from source). Stays in this stage only.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# The build context is only what .dockerignore lets through: the package and its pins.
COPY . .
# constraints.txt pins every dependency, so the image gets exactly the tested versions.
RUN pip install -c constraints.txt . \
 && rcr --help >/dev/null
# The engine's per-event modules compiled with mypyc where they were installed
# (stream/native.py); mypy is needed for that only, so it leaves again.
RUN pip install -c constraints.txt mypy \
 && cd "$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
 && python stream/native.py >/dev/null \
 && rm -rf build \
 && pip uninstall -y mypy \
 && python -c 'import stream.native as n; assert n.is_compiled(), "engine not compiled"'

# --- runtime: the virtualenv, a non-root user, nothing else --------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="rcr-stream" \
      org.opencontainers.image.description="Live Repeat Contact Rate and Contact Rate from a stream of support contacts" \
      org.opencontainers.image.version="${VERSION}"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    RCR_STATE_DIR=/var/lib/rcr/data
RUN groupadd --system --gid 10001 rcr \
 && useradd --system --uid 10001 --gid rcr --home-dir /var/lib/rcr --shell /usr/sbin/nologin rcr \
 && mkdir -p /var/lib/rcr/data \
 && chown -R rcr:rcr /var/lib/rcr
COPY --from=build /opt/venv /opt/venv
USER 10001:10001
WORKDIR /var/lib/rcr
EXPOSE 6066
# Liveness of the worker's web server; readiness (/readyz) is the orchestrator's business.
# No curl in the slim image: the standard library does the request, non-2xx exits 1.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://localhost:%s/healthz' % os.environ.get('RCR_WEB_PORT', '6066'), timeout=4)"]
# Faust handles SIGTERM itself: it commits offsets and flushes before exiting; give it time
# (compose stop_grace_period, Kubernetes terminationGracePeriodSeconds).
STOPSIGNAL SIGTERM
ENTRYPOINT ["rcr"]
CMD ["worker"]
