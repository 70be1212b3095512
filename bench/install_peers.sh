#!/usr/bin/env bash
# Installs the peer LLM gateways that bench/peers.py starts, pinned, into .bench/peers/:
#   litellm  LiteLLM proxy, in its own venv        .bench/peers/litellm
#   portkey  Portkey AI gateway, with npm          .bench/peers/portkey
#   smg      SGLang model gateway, in its own venv .bench/peers/smg
# Idempotent: a marker file per peer and version makes a rerun a no-op. pip and npm use
# their usual caches. Usage: bash bench/install_peers.sh
set -euo pipefail

LITELLM_VERSION=1.108.7
PORTKEY_VERSION=1.15.2
SMG_VERSION=1.13.0
PYTHON=${PYTHON:-python3.11}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PEERS="$ROOT/.bench/peers"
mkdir -p "$PEERS"

# A Python package in its own venv: install_venv NAME REQUIREMENT VERSION
install_venv() {
	local dir="$PEERS/$1" marker="$PEERS/$1/.installed-$3"
	if [[ -f $marker ]]; then
		return
	fi
	echo "installing $2 into .bench/peers/$1"
	rm -rf "$dir"
	"$PYTHON" -m venv "$dir"
	"$dir/bin/python" -m pip install --quiet --upgrade pip
	"$dir/bin/python" -m pip install --quiet "$2"
	touch "$marker"
}

install_portkey() {
	local dir="$PEERS/portkey" marker="$PEERS/portkey/.installed-$PORTKEY_VERSION"
	if [[ -f $marker ]]; then
		return
	fi
	echo "installing @portkey-ai/gateway@$PORTKEY_VERSION into .bench/peers/portkey"
	rm -rf "$dir"
	mkdir -p "$dir"
	# @hono/node-server past 1.13.5 fails every relayed request under this gateway version.
	cat >"$dir/package.json" <<-EOF
		{
		  "name": "llmrouter-bench-portkey",
		  "private": true,
		  "dependencies": {
		    "@portkey-ai/gateway": "$PORTKEY_VERSION"
		  },
		  "overrides": {
		    "@hono/node-server": "1.13.5",
		    "hono": "4.9.7"
		  }
		}
	EOF
	(cd "$dir" && npm install --no-audit --no-fund --loglevel=error)
	touch "$marker"
}

install_venv litellm "litellm[proxy]==$LITELLM_VERSION" "$LITELLM_VERSION"
install_portkey
install_venv smg "smg==$SMG_VERSION" "$SMG_VERSION"
