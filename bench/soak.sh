#!/usr/bin/env bash
# Soak test with chaos and strict accounting, on the real RabbitMQ, Redis and Ceph RGW, every role
# its own `vmp3 serve` process behind nginx. Not part of `make test`: an operator runs it.
#
# Usage: bench/soak.sh                 full run: 520 jobs, 20 clients, ~7 min of load (<= 15 min)
#        SOAK_SHORT=1 bench/soak.sh    short run: 60 jobs, ~75 s of load (~3 min in all)
# On a shared machine run it under the build lock, with -o so nothing it starts inherits the lock:
#        flock -o /work/build.lock bench/soak.sh
#
# What it does and checks: see the docstring of bench/soak.py and bench/README.md ("Soak").
# Exit status: 0 every accounting line passed; 1 a line failed; 2 the soak itself could not run;
# 130 interrupted. Either way every process it started is stopped (by PID) and the servers too.
#
# Settings (environment, all optional):
#   VMP3                 the binary (default build/vmp3; build it with `ninja -C build vmp3_cli`)
#   SOAK_DIR             state: inputs (generated once), servers, one run-<date>/ per run with
#                        every process's log (default build/soak)
#   SOAK_RESULTS_DIR     where soak-<date>.md goes (default bench/results; short runs write
#                        soak-short-<date>.md)
#   SOAK_JOBS, SOAK_CLIENTS, SOAK_LOAD_SECONDS, SOAK_KILL_EVERY, SOAK_DRAIN_SECONDS,
#   SOAK_RGW_OUTAGE_SECONDS, SOAK_SEED   the run's shape (defaults: 520, 20, 420, 20, 180, 15, time)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
die() { echo "soak: $*" >&2; exit 2; }

VMP3=${VMP3:-$ROOT/build/vmp3}
[[ -x $VMP3 ]] || die "$VMP3 is missing: cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release && ninja -C build vmp3_cli"
for cmd in python3 ffmpeg ffprobe curl; do
  command -v "$cmd" >/dev/null || die "$cmd is not installed: scripts/install-deps --with-servers"
done
[[ -x /usr/sbin/nginx ]] || command -v nginx >/dev/null || die "nginx is not installed: scripts/install-deps --with-servers"
export VMP3 PYTHONDONTWRITEBYTECODE=1
exec python3 "$ROOT/bench/soak.py"
