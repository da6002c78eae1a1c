#!/usr/bin/env bash
# Build the peer-library venv used by benchmarks/peers/run_peers.py.
#
# The peers (Evidently, alibi-detect, River, NannyML) pin numpy 1.x, so they live in their own
# venv at benchmarks/.venv-peers, apart from Driftline's .venv. Idempotent: an existing venv is
# reused, and pip runs again only when peers/requirements.txt changed.
# Override the interpreter with PEER_PYTHON=/path/to/python3.12 (nannyml needs Python <3.13).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv-peers"
reqs="$here/peers/requirements.txt"
stamp="$venv/.requirements.sha256"

find_python() {
    if [[ -n "${PEER_PYTHON:-}" ]]; then echo "$PEER_PYTHON"; return; fi
    local candidate
    for candidate in python3.12 /root/.pyenv/versions/3.12*/bin/python3.12 python3.11; do
        if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import venv' 2>/dev/null; then
            command -v "$candidate"; return
        fi
    done
    echo "setup_peers.sh: no python3.12 or python3.11 found (set PEER_PYTHON)" >&2
    exit 1
}

if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import sys' 2>/dev/null; then
    python="$(find_python)"
    echo "creating $venv with $python" >&2
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
fi

want="$(sha256sum "$reqs" | cut -d' ' -f1)"
if [[ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]]; then
    "$venv/bin/python" -m pip install --quiet -r "$reqs"
    echo "$want" >"$stamp"
fi
echo "peer venv ready: $venv ($("$venv/bin/python" --version))" >&2
