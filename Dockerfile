# syntax=docker/dockerfile:1
# llmrouter: the gRPC service with the embedded model, as a non-root container.
#   docker build -t llmrouter .
#   docker run --rm -p 50051:50051 llmrouter

FROM python:3.11-slim-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY Makefile constraints.txt pyproject.toml README.md ./
COPY clients/python clients/python
COPY server server
# llama.cpp is compiled for a generic x86-64 so the image runs on any node.
ENV CMAKE_ARGS="-DGGML_NATIVE=OFF"
RUN --mount=type=cache,target=/root/.cache/pip make install-runtime PYTHON=python3.11

FROM python:3.11-slim-bookworm
# llama.cpp's CPU backend uses OpenMP.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --home-dir /app llmrouter
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    LLMROUTER_SERVER__HOST=0.0.0.0 \
    LLMROUTER_SERVER__PORT=50051
USER 10001
EXPOSE 50051
# The same grpc.health.v1 check Kubernetes' gRPC probe makes.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["llmrouter", "health", "--address", "127.0.0.1:50051"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["llmrouter"]
CMD ["serve"]
