#!/usr/bin/env bash
# Checks what `make install PREFIX=$1` put there (run by `make test`):
#   - librt.so.VERSION is stripped, names its debug file (.gnu_debuglink),
#     and gdb finds that file: source lines resolve for an rt_* function;
#   - the debug file holds the DWARF the library lost;
#   - pkg-config and the CMake package are there; find_package(rt VERSION)
#     accepts compatible versions and refuses the others.
set -euo pipefail
prefix=$1
version=$2
major=${version%%.*}
lib=$prefix/lib/librt.so.$version
dbg=$prefix/lib/.debug/librt.so.$version.debug
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "check_install: FAIL: $*" >&2; exit 1; }

[ -f "$lib" ] || fail "$lib missing"
[ -f "$dbg" ] || fail "$dbg missing"
[ "$(readlink "$prefix/lib/librt.so.$major")" = "librt.so.$version" ] || fail "librt.so.$major link"
[ "$(readlink "$prefix/lib/librt.so")" = "librt.so.$major" ] || fail "librt.so link"

sections() { readelf -SW "$1" | awk '{for (i = 1; i <= NF; i++) if ($i ~ /^\./) { print $i; break }}'; }
sections "$lib" | grep -qx '.debug_info' && fail "$lib still has .debug_info"
sections "$lib" | grep -qx '.symtab' && fail "$lib still has a .symtab"
sections "$lib" | grep -qx '.gnu_debuglink' || fail "$lib has no .gnu_debuglink"
sections "$dbg" | grep -qx '.debug_line' || fail "$dbg has no .debug_line"
readelf -p .gnu_debuglink "$lib" | grep -q "librt.so.$version.debug" || fail "debuglink names another file"
# The exported API is intact.
nm -D --defined-only "$lib" | grep -q ' T rt_spawn$' || fail "rt_spawn not exported"

# gdb resolves a function of the stripped library to its source line only
# through the debug file.
out=$(gdb -nx -batch -ex 'info line rt_spawn' "$lib" 2>&1)
echo "$out" | grep -q 'Line [0-9]* of ".*rt-ffi/src/.*\.rs"' || fail "gdb found no line info: $out"

size=$(stat -c %s "$lib")
dsize=$(stat -c %s "$dbg")
echo "check_install: librt.so.$version: $((size / 1024)) KiB stripped, debug info $((dsize / 1024)) KiB in lib/.debug; gdb resolves rt_spawn to its source"

# pkg-config
PKG_CONFIG_PATH=$prefix/lib/pkgconfig pkg-config --modversion rt | grep -qx "$version" || fail "rt.pc version"

# The CMake package's version rule: same major, not newer than installed.
try() {
  rm -rf "$work/b"
  cmake -S "$(dirname "$0")/find_version" -B "$work/b" -DCMAKE_PREFIX_PATH="$prefix" -DRT_WANT="$1" >"$work/log" 2>&1
}
try "" || { cat "$work/log"; fail "find_package(rt)"; }
try "$version" || { cat "$work/log"; fail "find_package(rt $version)"; }
try "$major" || { cat "$work/log"; fail "find_package(rt $major)"; }
try "$((major + 1)).0" && fail "find_package(rt $((major + 1)).0) accepted $version"
try "$version.1" && fail "find_package(rt $version.1) accepted $version"
echo "check_install: find_package(rt) accepts '' / $version / $major, refuses $((major + 1)).0 and $version.1"
