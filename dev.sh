#!/usr/bin/env bash
# The two quick-start commands (see README.md):
#   ./dev.sh run    create .venv, install, start the dashboard (streamlit run dashboard.py)
#   ./dev.sh test   create .venv, install test tools (+ Debian chromium and redis-server), lint (ruff check,
#                   ruff format --check, mypy engine), run the whole suite: one pytest-xdist worker per core, at most
#                   4 (PYTEST_WORKERS=N to choose, 0 for one process), each test file in one worker
#   ./dev.sh test --fast   the fast loop: ruff, then unit and recorded-sample tests only (no job workers, dashboard
#                   servers, browser or GPU: the tests marked slow/browser/gpu, see tests/conftest.py), no apt, no mypy
#   ./dev.sh lint   the lint steps alone
# Where `nvidia-smi` answers, the GPU extras are installed too: requirements-gpu.txt (torch-tensorrt + tensorrt),
# or the TensorRT-RTX flavour with TRT_FLAVOUR=rtx (torch-tensorrt-rtx).
set -euo pipefail
cd "$(dirname "$0")"
VENV=.venv
PY=$VENV/bin/python

need_python() {
  python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
    || { echo "Python 3.11 or newer is needed (found $(python3 --version 2>&1))." >&2; exit 1; }
}

pip_install() {   # pip_install <stamp-name> <pip args...>: reinstalls only when the requirement files change
  local stamp="$VENV/.installed-$1"; shift
  local sum; sum=$(cat requirements*.txt | sha256sum | cut -c1-16)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$sum" ]; then
    "$PY" -m pip install -q --disable-pip-version-check "$@"
    echo "$sum" > "$stamp"
  fi
}

setup() {   # setup <requirements file>
  need_python
  [ -x "$PY" ] || python3 -m venv "$VENV"
  pip_install "$(basename "$1" .txt)" -r "$1"
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    if [ "${TRT_FLAVOUR:-tensorrt}" = "rtx" ]; then
      pip_install gpu-rtx torch-tensorrt-rtx nvidia-modelopt==0.47.0
    else
      pip_install gpu -r requirements-gpu.txt
    fi
  fi
}

apt_install() {   # Debian packages the browser and Redis tests use
  local missing=()
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q "${missing[@]}" >/dev/null
}

lint() {   # the style guide's habits, before the tests: ruff lint, ruff format, mypy on engine/ (pyproject.toml)
  echo "ruff check, ruff format --check, mypy engine"
  "$PY" -m ruff check --quiet .
  "$PY" -m ruff format --check --quiet .
  "$PY" -m mypy engine
}

case "${1:-}" in
  run)
    setup requirements.txt
    shift
    # listening on the network without a team password: start nothing (Streamlit's health and metrics endpoints
    # cannot be switched off and would answer the network even though every page refuses)
    "$PY" -m engine serve-check "$@"
    exec "$VENV/bin/streamlit" run dashboard.py "$@"
    ;;
  lint)
    setup requirements-dev.txt
    lint
    ;;
  test)
    setup requirements-dev.txt
    shift
    if [ "${1:-}" = "--fast" ]; then
      "$PY" -m ruff check --quiet .
    else
      apt_install
      lint
      set -- --durations=15 "$@"
    fi
    # most of the suite waits on real processes (workers, streamlit servers, chromium): files run side by side;
    # --dist loadfile keeps a file's module-scoped fixtures (one server, one browser, one store) to one worker
    cores=$(nproc 2>/dev/null || echo 2)
    exec "$PY" -m pytest -q -n "${PYTEST_WORKERS:-$((cores < 4 ? cores : 4))}" --dist loadfile "$@"
    ;;
  *)
    echo "usage: ./dev.sh run | ./dev.sh test | ./dev.sh lint" >&2
    exit 2
    ;;
esac
