#!/usr/bin/env bash
# benches/c/run.sh - libuv's benchmarks, once against libuv and once against
# librt: builds every benches/c program, runs them one after the other and
# writes one JSON result per line (see bench.h) to $RT_BENCH_OUT/results.jsonl
# (also echoed on stdout). scripts/bench_libuv.py turns it into a table.
#
# Usage: benches/c/run.sh [--list] [WORKLOAD...]
#   WORKLOAD   run only the workloads whose name starts with it
#              (million_timers loop_count async_pummel queue_work
#              ping_pongs pump); default: all
#   --list     print the planned runs (one JSON object per line), run nothing
#
# Environment:
#   RT_BENCH_QUICK=1        1 s durations, 10x smaller counts (smoke test)
#   RT_BENCH_ROUNDS=N       run the whole list N times, interleaved (default
#                           3; 1 when quick); each result line carries its
#                           "round" and the table takes the median
#   RT_BENCH_DURATION_MS=N  duration of the timed workloads (default 5000)
#   RT_BENCH_OUT=DIR        build and result directory (target/bench-c)
#   RT_BENCH_TIMEOUT=S      per-program limit in seconds (default 300)
#   CC                      C compiler (default gcc)
#
# Needs libuv's development files (Debian: apt-get install libuv1-dev) and
# librt in target/release (built with `make lib` when missing). Exits 1 if a
# program fails its checks, times out, or prints no result.
set -u -o pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SRC=$ROOT/benches/c
OUT=${RT_BENCH_OUT:-$ROOT/target/bench-c}
BIN=$OUT/bin
RESULTS=$OUT/results.jsonl
TIMEOUT=${RT_BENCH_TIMEOUT:-300}
CC=${CC:-gcc}
CFLAGS="-O2 -g -std=gnu11 -Wall -Wextra -Werror"
LIB_DIR=$ROOT/target/release

# The runs: workload impl variant program args...
RUNS=(
    "million_timers libuv - uv_million_timers"
    "million_timers librt current-thread rt_million_timers"
    "loop_count libuv - uv_loop_count"
    "loop_count librt current-thread rt_loop_count"
    "async_pummel_1 libuv - uv_async_pummel 1"
    "async_pummel_1 librt rt_wake rt_async_pummel 1 wake"
    "async_pummel_1 librt rt_queue_post rt_async_pummel 1 queue"
    "async_pummel_2 libuv - uv_async_pummel 2"
    "async_pummel_2 librt rt_wake rt_async_pummel 2 wake"
    "async_pummel_2 librt rt_queue_post rt_async_pummel 2 queue"
    "async_pummel_4 libuv - uv_async_pummel 4"
    "async_pummel_4 librt rt_wake rt_async_pummel 4 wake"
    "async_pummel_4 librt rt_queue_post rt_async_pummel 4 queue"
    "queue_work libuv - uv_queue_work"
    "queue_work librt current-thread rt_queue_work"
    "ping_pongs libuv - uv_ping_pongs"
    "ping_pongs librt current-thread rt_ping_pongs ct"
    "ping_pongs librt multi-thread rt_ping_pongs mt"
    "pump libuv - uv_pump"
    "pump librt current-thread rt_pump ct"
    "pump librt multi-thread rt_pump mt"
)

list_only=0
filters=()
for a in "$@"; do
    case $a in
        --list) list_only=1 ;;
        -h | --help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "run.sh: unknown option $a" >&2; exit 2 ;;
        *) filters+=("$a") ;;
    esac
done

selected() {
    local w=$1 f
    [ ${#filters[@]} -eq 0 ] && return 0
    for f in "${filters[@]}"; do
        case $w in "$f"*) return 0 ;; esac
    done
    return 1
}

json_run() { # workload impl variant
    local v=$3
    [ "$v" = - ] && v=
    printf '{"workload":"%s","impl":"%s","variant":"%s"' "$1" "$2" "$v"
}

if [ $list_only = 1 ]; then
    for r in "${RUNS[@]}"; do
        set -- $r
        selected "$1" && { json_run "$1" "$2" "$3"; echo "}"; }
    done
    exit 0
fi

# ---- build ----
mkdir -p "$BIN"
: > "$RESULTS" # no stale results if the build fails
if ! pkg-config --exists libuv; then
    echo "run.sh: libuv not found by pkg-config (Debian: apt-get install -y libuv1-dev)" >&2
    exit 1
fi
if [ ! -f "$LIB_DIR/librt.so" ]; then
    echo "run.sh: $LIB_DIR/librt.so missing: make lib" >&2
    make -C "$ROOT" --no-print-directory lib || exit 1
fi
if ! grep -q 'rt_run(' "$ROOT/include/rt.h"; then
    echo "run.sh: include/rt.h has no rt_run (the host API): update rt" >&2
    exit 1
fi
UV_CFLAGS=$(pkg-config --cflags libuv)
UV_LIBS=$(pkg-config --libs libuv)
for src in "$SRC"/uv_*.c; do
    exe=$BIN/$(basename "${src%.c}")
    # shellcheck disable=SC2086
    $CC $CFLAGS $UV_CFLAGS "$src" -o "$exe" $UV_LIBS -lpthread || exit 1
done
for src in "$SRC"/rt_*.c; do
    exe=$BIN/$(basename "${src%.c}")
    # shellcheck disable=SC2086
    $CC $CFLAGS -I "$ROOT/include" "$src" -o "$exe" \
        -L "$LIB_DIR" -lrt -Wl,-rpath,"$LIB_DIR" -lpthread || exit 1
done
echo "run.sh: built $(ls "$BIN" | wc -l) programs in $BIN (libuv $(pkg-config --modversion libuv))" >&2

# ---- run ----
if [ -n "${RT_BENCH_QUICK:-}" ] && [ "${RT_BENCH_QUICK}" != 0 ]; then
    ROUNDS=${RT_BENCH_ROUNDS:-1}
else
    ROUNDS=${RT_BENCH_ROUNDS:-3}
fi
failed=0
for round in $(seq 1 "$ROUNDS"); do
for r in "${RUNS[@]}"; do
    set -- $r
    workload=$1 impl=$2 variant=$3 prog=$4
    shift 4
    selected "$workload" || continue
    label="$workload/$impl"
    [ "$variant" != - ] && label="$workload/$impl ($variant)"
    echo "run.sh: [round $round/$ROUNDS] $label: $prog $*" >&2
    tmp=$OUT/last.out
    log=$OUT/logs/$workload.$impl.err
    [ "$variant" != - ] && log=$OUT/logs/$workload.$impl.$variant.err
    mkdir -p "$OUT/logs"
    timeout "$TIMEOUT" "$BIN/$prog" "$@" > "$tmp" 2> >(tee "$log" >&2)
    rc=$?
    line=$(grep -m1 '^{' "$tmp" || true)
    if [ $rc -eq 0 ] && [ -n "$line" ]; then
        line="${line%\}},\"round\":$round}"
        echo "$line" >> "$RESULTS"
        echo "$line"
    else
        failed=$((failed + 1))
        if [ $rc -eq 124 ]; then why="timed out after ${TIMEOUT} s"; else why="exit status $rc"; fi
        [ $rc -eq 0 ] && why="no result line"
        echo "run.sh: $label FAILED: $why (stderr in $log)" >&2
        line="$(json_run "$workload" "$impl" "$variant"),\"ok\":false,\"error\":\"$why\",\"round\":$round}"
        echo "$line" >> "$RESULTS"
        echo "$line"
    fi
done
done
echo "run.sh: results in $RESULTS" >&2
if [ $failed -ne 0 ]; then
    echo "run.sh: $failed program(s) failed" >&2
    exit 1
fi
exit 0
