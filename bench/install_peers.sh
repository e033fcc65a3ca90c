#!/usr/bin/env bash
# Install the gateways Sluice is compared with into .bench/ (git-ignored), from
# the package registries. Each is optional: bench/compare.py skips a missing one.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p .bench

if [ ! -x .bench/litellm/bin/litellm ]; then
  echo "installing LiteLLM's proxy (litellm[proxy]==1.108.7, the newest whose extra installs)" >&2
  python3 -m venv .bench/litellm \
    && .bench/litellm/bin/pip install -q "litellm[proxy]==1.108.7" 2>&1 | { grep -v "is ignored" || true; } \
    && [ -x .bench/litellm/bin/litellm ] \
    || echo "LiteLLM could not be installed; it will be skipped" >&2
fi

if [ ! -f .bench/portkey/node_modules/@portkey-ai/gateway/build/start-server.js ]; then
  if command -v npm >/dev/null; then
    echo "installing Portkey's gateway (@portkey-ai/gateway@1.15.2)" >&2
    (mkdir -p .bench/portkey && cd .bench/portkey && npm init -y >/dev/null \
      && npm install --silent @portkey-ai/gateway@1.15.2) \
      || echo "Portkey could not be installed; it will be skipped" >&2
  else
    echo "no npm: Portkey will be skipped" >&2
  fi
fi
