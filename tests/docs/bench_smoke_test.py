#!/usr/bin/env python3
"""bench/README.md's `BENCH_SMOKE=1 make bench`: builds (a no-op when built), runs
bench/convert_bench.sh on tiny inputs once and writes its table under the build directory. The
test checks it finished, that the table has a measured row for every command the benchmark
compares, that nothing under bench/ changed, and that a failing step fails the run (a vmp3 that
fails; a results directory under bench/)."""

import hashlib
import os
import re
import subprocess
import time

import docs_support as ds

# Rows of the table: each input with its commands (bench/convert_bench.sh, "Commands compared").
EXPECTED_ROWS = 8
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


def main():
    ds.require_build_up_to_date()
    bench_dir = os.path.join(ds.SOURCE_DIR, "bench")
    before = tree_digest(bench_dir)
    started = time.time()
    done = subprocess.run(
        ["make", "--no-print-directory", "-C", ds.SOURCE_DIR, "bench", f"BUILD_DIR={ds.BUILD_DIR}"],
        env=ds.user_env(BENCH_SMOKE="1"), capture_output=True, text=True, timeout=BUDGET_S)
    took = time.time() - started
    print(done.stdout + done.stderr)
    ds.log(f"BENCH_SMOKE=1 make bench: exit {done.returncode} in {took:.1f} s")
    ds.check(done.returncode == 0, f"BENCH_SMOKE=1 make bench failed ({done.returncode})")

    m = re.search(r"^written to (.+)$", done.stderr, re.M)
    ds.check(m, "the benchmark did not say where it wrote its table")
    report = os.path.realpath(m.group(1))
    ds.check(report.startswith(os.path.realpath(ds.BUILD_DIR) + os.sep),
             f"a smoke run wrote {report}, outside the build directory {ds.BUILD_DIR}")
    ds.check(os.path.isfile(report) and os.path.getmtime(report) >= started - 1,
             f"{report} was not written by this run")
    with open(report, encoding="utf-8") as f:
        table = f.read()
    ds.check("smoke run" in table, f"{report} does not say it is a smoke run")
    number = r"\s*\d+(\.\d+)?\s*"
    rows = [line for line in table.splitlines()
            if re.match(rf"^\|[^|]+\|[^|]+\|{number}\|{number}\|{number}\|{number}\|", line)]
    ds.check(len(rows) == EXPECTED_ROWS,
             f"{report} has {len(rows)} measured rows, expected {EXPECTED_ROWS}:\n{table}")
    ds.check(tree_digest(bench_dir) == before, "a smoke run changed files under bench/")

    # A step that fails fails the whole run, and a smoke run never writes under bench/.
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


if __name__ == "__main__":
    ds.run_test(main)
