#!/usr/bin/env bash
# Install the clients we did not write, as pinned by package-lock.json beside this script: Node 22 (the npm package
# `node`), the MCP conformance suite and the MCP Inspector. tests/test_real_clients.py runs them; .ci/run calls this.
#
#   bash tests/conformance/install.sh [DIR]     DIR defaults to ${XDG_CACHE_HOME:-~/.cache}/openrouter-mcp/node-tools
#
# Prints DIR, the value for OPENROUTER_MCP_NODE_TOOLS. Needs npm (any Node >= 20 runs it); a second run with the same
# lock file reuses what the first installed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dest="${1:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/openrouter-mcp/node-tools}"
mkdir -p "$dest"
# The stamp is written only after a complete install, so an interrupted one is redone.
if ! cmp -s "$here/package-lock.json" "$dest/installed.lock.json"; then
    rm -f "$dest/installed.lock.json"
    cp "$here/package.json" "$here/package-lock.json" "$dest/"
    # Progress and warnings to stderr: stdout carries DIR alone.
    (cd "$dest" && npm ci --no-audit --no-fund --omit-lockfile-registry-resolved --loglevel=error >&2)
    cp "$here/package-lock.json" "$dest/installed.lock.json"
fi
echo "$dest"
