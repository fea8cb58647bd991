#!/usr/bin/env bash
# rtpy benchmark (issue 11 section 6): `make bench-python` runs
#   PYTHON=.venv/bin/python bash benches/python/run.sh [bench.py options]
# The interpreter is $PYTHON (else the first argument, if it is an executable,
# else python3); it must have rtpy installed. Prints one table of ratios.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
py="${PYTHON:-}"
if [ -z "$py" ] && [ $# -gt 0 ] && [ -x "$1" ]; then py="$1"; shift; fi
exec "${py:-python3}" "$here/bench.py" "$@"
