#!/usr/bin/env python3
"""bench/README.md's benchmarks in smoke mode (BENCH_SMOKE=1: tiny inputs, one repetition, the table
under the build directory). Usage: bench_smoke_test.py convert | service-embedded |
service-distributed

  convert              `BENCH_SMOKE=1 make bench`: builds (a no-op when built) and runs
                       bench/convert_bench.sh; the table must have a measured row for every command
                       the benchmark compares. Also: a failing step fails the run (a vmp3 that
                       fails; a results directory under bench/ is refused).
  service-embedded     `BENCH_SMOKE=1 bench/service_bench.sh embedded`
  service-distributed  `BENCH_SMOKE=1 bench/service_bench.sh distributed` (starts its own
                       RabbitMQ, Redis and Ceph RGW in a scratch directory and stops them)

Each must exit 0, say where it wrote its table, write it under the build directory, and leave
everything under bench/ as it was."""

import hashlib
import os
import re
import subprocess
import sys
import time

import docs_support as ds

# Rows of each table: convert_bench.sh, each input with its commands ("Commands compared" in
# bench/README.md); service_bench.sh, its measures per mode.
CONVERT_ROWS = 16
SERVICE_ROWS = {"embedded": 6, "distributed": 5}
BUDGET_S = 240  # the first run generates the inputs (seconds); later runs reuse them


def tree_digest(path):
    """A digest of every file under `path` (names and contents)."""
    digest = hashlib.sha256()
    for root, dirs, files in sorted(os.walk(path)):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            digest.update(full.encode())
            with open(full, "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()


def run_and_find_report(command, env, expected_rows, bench_dir):
    """Runs a smoke benchmark; returns its table after checking where and what it wrote."""
    before = tree_digest(bench_dir)
    marks = ds.MarkedProcesses()
    started = time.time()
    try:
        done = subprocess.run(command, env=marks.env(env), capture_output=True, text=True,
                              timeout=BUDGET_S)
    finally:
        left = marks.snapshot()
        if left:
            marks.kill_all()
    ds.check(not left, "processes left behind: " +
             "; ".join(f"{pid} {cmd}" for pid, (_, cmd) in left.items()))
    took = time.time() - started
    print(done.stdout + done.stderr)
    ds.log(f"{' '.join(command)}: exit {done.returncode} in {took:.1f} s")
    ds.check(done.returncode == 0, f"{' '.join(command)} failed ({done.returncode})")

    m = re.search(r"^written to (.+)$", done.stderr, re.M)
    ds.check(m, "the benchmark did not say where it wrote its table")
    report = os.path.realpath(m.group(1))
    ds.check(report.startswith(os.path.realpath(ds.BUILD_DIR) + os.sep),
             f"a smoke run wrote {report}, outside the build directory {ds.BUILD_DIR}")
    ds.check(os.path.isfile(report) and os.path.getmtime(report) >= started - 1,
             f"{report} was not written by this run")
    with open(report, encoding="utf-8") as f:
        table = f.read()
    rows = [line for line in table.splitlines()
            if line.startswith("| ") and not line.startswith("| measure")
            and re.search(r"\d", line)]
    ds.check(len(rows) == expected_rows,
             f"{report} has {len(rows)} measured rows, expected {expected_rows}:\n{table}")
    for row in rows:
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        # Every cell measured (the service tables' last column, the target, may be empty).
        ds.check(all(c and c.lower() not in ("nan", "-nan", "n/a", "inf") for c in cells[:-1])
                 and cells[-1].lower() not in ("nan", "-nan", "n/a", "inf"),
                 f"{report} has an empty or unmeasured cell in: {row}")
    ds.check(tree_digest(bench_dir) == before, "a smoke run changed files under bench/")
    return table


def convert(bench_dir):
    table = run_and_find_report(
        ["make", "--no-print-directory", "-C", ds.SOURCE_DIR, "bench", f"BUILD_DIR={ds.BUILD_DIR}"],
        ds.user_env(BENCH_SMOKE="1"), CONVERT_ROWS, bench_dir)
    ds.check("smoke run" in table, "the table does not say it is a smoke run")

    # A step that fails fails the whole run, and a smoke run never writes under bench/.
    before = tree_digest(bench_dir)
    script = os.path.join(bench_dir, "convert_bench.sh")
    env = ds.user_env(BENCH_SMOKE="1", VMP3_BUILD_DIR=ds.BUILD_DIR)
    failing = subprocess.run([script], env=dict(env, VMP3="/bin/false"), capture_output=True,
                             text=True, timeout=BUDGET_S)
    ds.check(failing.returncode != 0 and "command failed" in failing.stderr,
             f"a failing vmp3 did not fail the run (exit {failing.returncode}):\n"
             f"{failing.stderr[-2000:]}")
    refused = subprocess.run([script], env=dict(env, BENCH_RESULTS_DIR=bench_dir + "/results"),
                             capture_output=True, text=True, timeout=BUDGET_S)
    ds.check(refused.returncode != 0 and "does not write under bench/" in refused.stderr,
             f"a smoke run into bench/results was not refused (exit {refused.returncode}):\n"
             f"{refused.stderr[-2000:]}")
    ds.check(tree_digest(bench_dir) == before, "a failed smoke run changed files under bench/")


def service(bench_dir, mode):
    run_and_find_report([os.path.join(bench_dir, "service_bench.sh"), mode],
                        ds.user_env(BENCH_SMOKE="1", VMP3_BUILD_DIR=ds.BUILD_DIR),
                        SERVICE_ROWS[mode], bench_dir)


def main():
    which = sys.argv[1] if len(sys.argv) > 1 else ""
    ds.check(which in ("convert", "service-embedded", "service-distributed"),
             "usage: bench_smoke_test.py convert|service-embedded|service-distributed")
    ds.require_build_up_to_date()
    bench_dir = os.path.join(ds.SOURCE_DIR, "bench")
    if which == "convert":
        convert(bench_dir)
    else:
        service(bench_dir, which.split("-", 1)[1])


if __name__ == "__main__":
    ds.run_test(main)
