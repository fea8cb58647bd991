#!/usr/bin/env python3
"""Print the rt-core vs Tokio results of `cargo bench --bench rt_vs_tokio`
as a Markdown table.

Criterion stores each benchmark under
<target>/criterion/<group dir>/<function>/new/estimates.json, where the group
dir is the group name with '/' replaced by '_' ("mt/spawn_many_local" ->
"mt_spawn_many_local"). Every directory holding both
rt/new/estimates.json and tokio/new/estimates.json is one row; its name is
the group_id recorded in rt/new/benchmark.json (falling back to the
directory path).

The target directory is $CARGO_TARGET_DIR, or `target` in the repository
root (the parent of this script's directory). A relative CARGO_TARGET_DIR
is taken relative to the repository root, as cargo does from there.

Usage: scripts/bench_table.py [--stat median|mean]
"""

import argparse
import json
import math
import os
import sys

RUNTIMES = ("rt", "tokio")


def target_dir(repo_root):
    env = os.environ.get("CARGO_TARGET_DIR")
    if env:
        return env if os.path.isabs(env) else os.path.join(repo_root, env)
    return os.path.join(repo_root, "target")


def estimates_path(group_dir, runtime):
    return os.path.join(group_dir, runtime, "new", "estimates.json")


def group_name(group_dir, criterion_dir):
    """The criterion group_id ("mt/spawn_many_local"), or the dir path."""
    meta = os.path.join(group_dir, RUNTIMES[0], "new", "benchmark.json")
    try:
        with open(meta, encoding="utf-8") as f:
            group_id = json.load(f).get("group_id")
        if isinstance(group_id, str) and group_id:
            return group_id
    except (OSError, ValueError):
        pass
    return os.path.relpath(group_dir, criterion_dir).replace(os.sep, "/")


def point_estimate_ns(path, stat):
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    try:
        value = float(data[stat]["point_estimate"])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: no {stat}.point_estimate ({e})") from None
    return value


def find_groups(criterion_dir):
    groups = []
    for dirpath, dirnames, _ in os.walk(criterion_dir):
        dirnames.sort()
        if all(os.path.isfile(estimates_path(dirpath, r)) for r in RUNTIMES):
            groups.append(dirpath)
            # The rt/ and tokio/ subdirectories hold no further groups.
            dirnames[:] = [d for d in dirnames if d not in RUNTIMES]
    return groups


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--stat",
        choices=("median", "mean"),
        default="median",
        help="which criterion point estimate to report (default: median)",
    )
    args = parser.parse_args()

    repo_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    criterion_dir = os.path.join(target_dir(repo_root), "criterion")
    if not os.path.isdir(criterion_dir):
        sys.exit(
            f"error: no criterion results: {criterion_dir} does not exist.\n"
            "Run `cargo bench --bench rt_vs_tokio` first."
        )

    rows = []
    for group_dir in find_groups(criterion_dir):
        try:
            rt_ns, tokio_ns = (
                point_estimate_ns(estimates_path(group_dir, r), args.stat)
                for r in RUNTIMES
            )
        except (OSError, ValueError) as e:
            sys.exit(f"error: cannot read results: {e}")
        rows.append((group_name(group_dir, criterion_dir), rt_ns, tokio_ns))

    if not rows:
        sys.exit(
            f"error: no rt-vs-tokio results under {criterion_dir}: no directory "
            "contains both rt/new/estimates.json and tokio/new/estimates.json.\n"
            "Run `cargo bench --bench rt_vs_tokio` first."
        )

    rows.sort(key=lambda row: row[0])
    print("| workload | rt (µs) | tokio (µs) | rt/tokio ratio |")
    print("|---|---:|---:|---:|")
    log_sum = 0.0
    for name, rt_ns, tokio_ns in rows:
        ratio = rt_ns / tokio_ns
        log_sum += math.log(ratio)
        print(f"| {name} | {rt_ns / 1e3:.1f} | {tokio_ns / 1e3:.1f} | {ratio:.3f} |")
    geomean = math.exp(log_sum / len(rows))
    print()
    print(
        f"Geometric mean rt/tokio ratio ({args.stat}, {len(rows)} workloads): "
        f"{geomean:.3f}"
    )


if __name__ == "__main__":
    main()
