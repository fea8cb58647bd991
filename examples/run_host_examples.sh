#!/usr/bin/env bash
# Builds and runs the host-loop examples against an installed librt, the way
# users build them (pkg-config), like the demo-c target of the Makefile:
#
#   examples/c/game_loop.c    C11: a 60 Hz game loop driving a current-thread runtime
#   examples/cpp/main.cpp     C++17: the RAII wrappers of examples/cpp/rt.hpp
#
# Usage: examples/run_host_examples.sh PREFIX
#   PREFIX     where `make install PREFIX=...` put librt (PREFIX/lib/pkgconfig/rt.pc)
# Environment:
#   CC, CXX    compilers (default cc, c++)
#   BUILD_DIR  where the binaries go (default target/c/examples in the repo)
#   VALGRIND=1 also run both under valgrind (memcheck, leaks are errors)
# Exits non-zero if a build or a run fails.
set -euo pipefail

if [ $# -ne 1 ] || [ -z "$1" ]; then
    echo "usage: $0 PREFIX" >&2
    exit 2
fi
PREFIX=$(cd "$1" && pwd)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CC=${CC:-cc}
CXX=${CXX:-c++}
BUILD_DIR=${BUILD_DIR:-$ROOT/target/c/examples}
mkdir -p "$BUILD_DIR"

RT_FLAGS=$(PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig" pkg-config --cflags --libs rt)
RPATH="-Wl,-rpath,$PREFIX/lib"

# shellcheck disable=SC2086 # RT_FLAGS is a list of flags
"$CC" -std=c11 -Wall -Wextra -Werror -O2 "$ROOT/examples/c/game_loop.c" -o "$BUILD_DIR/game_loop" \
    $RT_FLAGS "$RPATH" -lpthread
# shellcheck disable=SC2086
"$CXX" -std=c++17 -Wall -Wextra -Werror -O2 "$ROOT/examples/cpp/main.cpp" -o "$BUILD_DIR/cpp_main" \
    $RT_FLAGS "$RPATH" -lpthread

echo "== examples/c/game_loop"
"$BUILD_DIR/game_loop"
echo "== examples/cpp/main"
"$BUILD_DIR/cpp_main"

if [ "${VALGRIND:-0}" = 1 ]; then
    VG=(valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect
        --suppressions="$ROOT/tests/c/valgrind.supp")
    # Valgrind slows the runtime's own code down ~20-50x: allow more time
    # inside rt_run_budget per frame than natively.
    echo "== examples/c/game_loop under valgrind"
    GAME_LOOP_SLACK_US=${GAME_LOOP_SLACK_US:-20000} "${VG[@]}" "$BUILD_DIR/game_loop"
    echo "== examples/cpp/main under valgrind"
    "${VG[@]}" "$BUILD_DIR/cpp_main"
fi
