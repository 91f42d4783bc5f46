#!/usr/bin/env bash
# The project's one test command: sets up .venv with the Python dependencies, checks lint and
# types, and runs the whole suite. The pinned JS packages for the interop tests are installed
# by the test session itself (npm ci in tests/interop/js). Needs python3 (>= 3.11), pip,
# node and npm; extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"

for tool in python3 node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "test.sh: $tool is required (the interop tests run the real JS packages)" >&2
    exit 1
  fi
done

# The NAT lab tests (hyperswarm.natlab) build network namespaces with nftables NAT routers.
if ! command -v nft >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  apt-get install -y -qq nftables >/dev/null 2>&1 ||
    (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq nftables >/dev/null 2>&1) ||
    echo "test.sh: could not install nftables; the NAT lab tests will say why they skip" >&2
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
