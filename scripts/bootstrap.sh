#!/usr/bin/env bash
# Create .venv with CPython 3.10 and install neurocomp[all] into it.
# Idempotent: when .venv is up to date with pyproject.toml it returns at once.
# lava-nc 0.10.0 runs only on CPython 3.10, so the full environment needs a 3.10.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
STAMP="$VENV/.neurocomp-installed"
want=$(sha256sum pyproject.toml | cut -d' ' -f1)

is310() { "$@" -c 'import sys, venv; sys.exit(0 if sys.version_info[:2] == (3, 10) else 1)' >/dev/null 2>&1; }

if [ -x "$VENV/bin/python" ] && is310 "$VENV/bin/python" && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  exit 0
fi

find_python310() {
  # 1. an explicit choice; 2. python3.10 on PATH (a pyenv shim may exist but fail, so test it);
  # 3. pyenv's installed versions; 4. python3 itself if it is 3.10.
  if [ -n "${PYTHON310:-}" ] && is310 "$PYTHON310"; then echo "$PYTHON310"; return 0; fi
  if command -v python3.10 >/dev/null 2>&1 && is310 python3.10; then command -v python3.10; return 0; fi
  local roots=() root py
  if command -v pyenv >/dev/null 2>&1; then roots+=("$(pyenv root)"); fi
  roots+=("${PYENV_ROOT:-$HOME/.pyenv}")
  for root in "${roots[@]}"; do
    for py in "$root"/versions/3.10.*/bin/python3.10; do
      if [ -x "$py" ] && is310 "$py"; then echo "$py"; return 0; fi
    done
  done
  if command -v python3 >/dev/null 2>&1 && is310 python3; then command -v python3; return 0; fi
  return 1
}

if ! PY=$(find_python310); then
  cat >&2 <<'MSG'
error: neurocomp's environment needs CPython 3.10 (lava-nc 0.10.0 supports only 3.10),
and none was found on PATH or among pyenv's versions. Get one, then run make again:
  pyenv install 3.10.13                      # found automatically afterwards
  uv python install 3.10                     # then: PYTHON310=$(uv python find 3.10) make test
  apt-get install python3.10 python3.10-venv # where your distribution packages it
or point PYTHON310 at an existing interpreter: PYTHON310=/path/to/python3.10 make test
MSG
  exit 1
fi

if [ -d "$VENV" ] && ! is310 "$VENV/bin/python"; then
  echo "bootstrap: $VENV is not a Python 3.10 environment; recreating it" >&2
  rm -rf "$VENV"
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "bootstrap: creating $VENV with $PY ($("$PY" --version 2>&1))"
  "$PY" -m venv "$VENV"
fi
echo "bootstrap: installing neurocomp[all] into $VENV (lava-nc, brian2, pytest, ruff; about a minute)"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[all]"
"$VENV/bin/python" -c 'import neurocomp, lava, brian2' # fail here, not in the middle of a test run
echo "$want" > "$STAMP"
echo "bootstrap: $VENV is ready"
