#!/usr/bin/env bash
# vmp3 serve benchmarks. Nothing here asserts on timings: it measures and writes a Markdown table.
#
# Usage: bench/service_bench.sh embedded      one process, embedded backends (files + SQLite)
#        bench/service_bench.sh distributed   RabbitMQ + Redis + Ceph RGW, one process per role
#
#   embedded:    end-to-end (upload -> done -> download) of the 10-minute input vs `vmp3 convert`;
#                server peak RSS while receiving one 1 GiB upload and 8 at once;
#                GET /v1/jobs/{id} under wrk (64 connections): requests/s and latency percentiles.
#   distributed: end-to-end vs `vmp3 convert`; 200 short jobs through 1 vs 2 converter processes;
#                peak RSS of every role during a 1 GiB upload into S3.
# Environment: VMP3_BUILD_DIR (default build), VMP3 (default $VMP3_BUILD_DIR/vmp3), BENCH_CACHE
# (default $VMP3_BUILD_DIR/bench-inputs, shared with convert_bench.sh), BENCH_REPS (default 3),
# BENCH_RESULTS_DIR (default bench/results).
# BENCH_SMOKE=1: the same steps, small: a 3 s input, 16 MiB uploads, 10 queued jobs, wrk for 2 s,
# one repetition, inputs in $VMP3_BUILD_DIR/bench-inputs-smoke and the table in
# $VMP3_BUILD_DIR/bench-results-smoke (never under bench/). It proves the script works.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/sampling.sh
source "$ROOT/bench/sampling.sh"
MODE=${1:-embedded}
SMOKE=${BENCH_SMOKE:-0}
BUILD=$(realpath -m "${VMP3_BUILD_DIR:-$ROOT/build}")
VMP3=${VMP3:-$BUILD/vmp3}
if [[ $SMOKE == 1 ]]; then
  CACHE=${BENCH_CACHE:-$BUILD/bench-inputs-smoke}
  REPS=${BENCH_REPS:-1}
  RESULTS_DIR=${BENCH_RESULTS_DIR:-$BUILD/bench-results-smoke}
  INPUT=$CACHE/h264-aac-180p-3s.mp4
  INPUT_MAKER="BENCH_SMOKE=1 bench/convert_bench.sh"
  SUFFIX=-smoke
  BIG_MIB=16 CLIP_SECONDS=2 DRAIN_JOBS=10 WRK_SECONDS=2
else
  CACHE=${BENCH_CACHE:-$BUILD/bench-inputs}
  REPS=${BENCH_REPS:-3}
  RESULTS_DIR=${BENCH_RESULTS_DIR:-$ROOT/bench/results}
  INPUT=$CACHE/h264-aac-720p-600s.mp4
  INPUT_MAKER="bench/convert_bench.sh"
  SUFFIX=""
  BIG_MIB=1024 CLIP_SECONDS=10 DRAIN_JOBS=200 WRK_SECONDS=10
fi
BIG=$CACHE/random-${BIG_MIB}MiB.bin
CLIP=$CACHE/clip-${CLIP_SECONDS}s.mp4
BIG_LABEL=$([[ $BIG_MIB == 1024 ]] && echo "1 GiB" || echo "$BIG_MIB MiB")
case "$MODE" in embedded | distributed) ;; *)
  echo "usage: ${0##*/} embedded|distributed" >&2
  exit 2
  ;;
esac
if [[ $SMOKE == 1 && $(realpath -m "$RESULTS_DIR")/ == "$ROOT/bench/"* ]]; then
  echo "service_bench: a smoke run does not write under bench/ (BENCH_RESULTS_DIR=$RESULTS_DIR)" >&2
  exit 1
fi
mkdir -p "$CACHE" "$RESULTS_DIR"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vmp3-sbench.XXXXXX")
chmod 755 "$WORK"  # the RabbitMQ server runs as its own user and must reach its directory
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  [[ $MODE == distributed ]] && "$ROOT/scripts/test-servers" stop "$WORK/servers" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
die() { echo "service_bench: $*" >&2; exit 1; }

[[ -x $VMP3 ]] || die "$VMP3 is missing: make build"
# convert_bench.sh makes the input (its one-repetition table goes to the scratch directory).
[[ -f $INPUT ]] || BENCH_REPS=1 BENCH_CACHE=$CACHE BENCH_RESULTS_DIR=$WORK VMP3=$VMP3 \
  "$ROOT/bench/convert_bench.sh" >/dev/null 2>&1 || true
[[ -f $INPUT ]] || die "$INPUT is missing: run $INPUT_MAKER first"
[[ -f $BIG ]] || head -c $((BIG_MIB << 20)) /dev/urandom >"$BIG"
[[ -f $CLIP ]] || ffmpeg -nostdin -v error -f lavfi -i "sine=f=440:d=$CLIP_SECONDS" \
  -f lavfi -i "testsrc2=s=320x240:d=$CLIP_SECONDS" -c:a aac -c:v libx264 -preset ultrafast -shortest "$CLIP"

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
now() { date +%s.%N; }
peak_rss_mb() { awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# max_rss_during PID CMD...: runs CMD while sampling PID's resident set every 20 ms; prints the
# largest sample in MB. (VmHWM would also count the login's Argon2id, which briefly takes 64 MiB
# by design and is freed at once: this measures what receiving costs.)
max_rss_during() {
  local pid=$1 max
  shift
  "$@" >/dev/null &
  local job=$!
  max=$(max_status_kb VmRSS "$pid" "$job")
  wait "$job"
  awk -v kb="$max" 'BEGIN {printf "%.1f", kb / 1024}'
}
upload_many() {  # N BASE TOKEN FILE: N uploads at once
  local n=$1 pids=()
  shift
  for _ in $(seq 1 "$n"); do
    upload "$@" >/dev/null &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid"; done
}

# start_server NAME ARGS...: starts `vmp3 serve` on a free port; sets PORT and PID.
start_server() {
  local name=$1
  shift
  "$VMP3" serve --listen 127.0.0.1:0 --log-level warn "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  PID=$!
  PIDS+=("$PID")
  for _ in $(seq 1 300); do
    PORT=$(sed -n 's#.*http://127.0.0.1:\([0-9]*\)/.*#\1#p' "$WORK/$name.out")
    [[ -n $PORT ]] && return 0
    sleep 0.1
  done
  die "$name did not start: $(cat "$WORK/$name.err")"
}
stop_server() { kill -TERM "$1"; wait "$1" 2>/dev/null || true; }

token_for() {  # BASE -> prints a token for a fresh user
  local base=$1 user=bench$RANDOM$RANDOM
  curl -fsS -X POST "$base/v1/auth/register" -H 'Content-Type: application/json' \
    -d "{\"username\":\"$user\",\"password\":\"benchmark-password\"}" >/dev/null
  curl -fsS -X POST -u "$user:benchmark-password" "$base/login"
}
upload() {  # BASE TOKEN FILE -> job id (streams the file from disk)
  curl -fsS -X POST -T "$3" -H "Authorization: Bearer $2" -H 'Content-Type: application/octet-stream' \
    "$1/v1/jobs?filename=$(basename "$3")" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'
}
wait_done() {  # BASE TOKEN JOB: follows the job's event stream until it ends (no polling load)
  local line
  line=$(curl -sN --max-time 3600 -H "Authorization: Bearer $2" "$1/v1/jobs/$3/events" |
    grep -m1 -oE '"status":"(done|failed|cancelled)"') || true
  [[ $line == '"status":"done"' ]] || die "job $3 did not finish: ${line:-no final event}"
}
end_to_end() {  # BASE TOKEN -> seconds for upload + conversion + download
  local t0 job
  t0=$(now)
  job=$(upload "$1" "$2" "$INPUT")
  wait_done "$1" "$2" "$job"
  curl -fsS -H "Authorization: Bearer $2" -o "$WORK/e2e.mp3" "$1/v1/jobs/$job/mp3"
  echo "$(now) - $t0" | bc -l
}
convert_seconds() {
  local t0
  t0=$(now)
  "$VMP3" convert "$INPUT" -o "$WORK/convert.mp3" --overwrite >/dev/null 2>&1
  echo "$(now) - $t0" | bc -l
}

# The ffmpeg CLI converting the same file locally, as a user without the service would.
ffmpeg_seconds() {
  local t0
  t0=$(now)
  ffmpeg -nostdin -y -v error -i "$INPUT" -vn -c:a libmp3lame -q:a 2 "$WORK/ffmpeg.mp3"
  echo "$(now) - $t0" | bc -l
}

stamp=$(date -u +%Y-%m-%dT%H:%MZ)
out=$RESULTS_DIR/service-$MODE-$(date -u +%Y%m%d-%H%M)$SUFFIX.md
{
  echo "## Service benchmarks, $MODE ($stamp, $(nproc) cores)"
  echo
  echo "Input: $(basename "$INPUT") ($(du -m "$INPUT" | cut -f1) MB); $REPS repetitions, medians."
  echo
} >"$out"

if [[ $MODE == embedded ]]; then
  start_server e2e --data-dir "$WORK/e2e" --workers 2
  BASE=http://127.0.0.1:$PORT
  TOKEN=$(token_for "$BASE")
  e2e=() conv=() ffm=()
  for _ in $(seq 1 "$REPS"); do
    e2e+=("$(end_to_end "$BASE" "$TOKEN")")
    conv+=("$(convert_seconds)")
    ffm+=("$(ffmpeg_seconds)")
  done
  e2e_med=$(printf '%s\n' "${e2e[@]}" | median)
  conv_med=$(printf '%s\n' "${conv[@]}" | median)
  ffm_med=$(printf '%s\n' "${ffm[@]}" | median)

  # wrk on GET /v1/jobs/{id} with a valid token.
  job=$(upload "$BASE" "$TOKEN" "$CLIP")
  wait_done "$BASE" "$TOKEN" "$job"
  wrk -t2 -c64 -d"${WRK_SECONDS}s" --latency -H "Authorization: Bearer $TOKEN" "$BASE/v1/jobs/$job" >"$WORK/wrk.txt"
  rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.txt")
  p50=$(awk '$1 == "50%" {print $2}' "$WORK/wrk.txt")
  p99=$(awk '$1 == "99%" {print $2}' "$WORK/wrk.txt")
  stop_server "$PID"

  # Memory while receiving: a fresh server each time, one converter thread.
  start_server one --data-dir "$WORK/one" --workers 1 --max-upload-bytes $((2 << 30))
  BASE=http://127.0.0.1:$PORT
  TOKEN=$(token_for "$BASE")
  idle_rss=$(awk -v kb="$(rss_kb "$PID")" 'BEGIN {printf "%.1f", kb / 1024}')
  t0=$(now)
  one_rss=$(max_rss_during "$PID" upload "$BASE" "$TOKEN" "$BIG")
  one_rate=$(echo "$BIG_MIB / ($(now) - $t0)" | bc -l)
  one_hwm=$(peak_rss_mb "$PID")
  stop_server "$PID"
  start_server eight --data-dir "$WORK/eight" --workers 1 --max-upload-bytes $((2 << 30))
  BASE=http://127.0.0.1:$PORT
  TOKEN=$(token_for "$BASE")
  eight_rss=$(max_rss_during "$PID" upload_many 8 "$BASE" "$TOKEN" "$BIG")
  eight_hwm=$(peak_rss_mb "$PID")
  stop_server "$PID"

  {
    echo "| measure | result | target |"
    echo "|---|---|---|"
    printf '| end-to-end upload → done → download | %.2f s (vmp3 convert: %.2f s), ratio **%.2f** | ≤ 1.15 |\n' \
      "$e2e_med" "$conv_med" "$(echo "$e2e_med / $conv_med" | bc -l)"
    printf '| end-to-end upload → done → download vs the ffmpeg CLI converting locally (parallel encoding) | %.2f s vs %.2f s, ratio **%.2f** | < 1 |\n' \
      "$e2e_med" "$ffm_med" "$(echo "$e2e_med / $ffm_med" | bc -l)"
    echo "| server RSS after start and one sign-in | ${idle_rss} MB | |"
    printf '| server peak RSS receiving one %s upload (sampled every 20 ms) | **%s MB** (%.0f MB/s; VmHWM incl. Argon2id sign-in: %s MB) | ≤ 64 MB |\n' "$BIG_LABEL" "$one_rss" "$one_rate" "$one_hwm"
    echo "| server peak RSS receiving 8 × $BIG_LABEL at once | **${eight_rss} MB** (VmHWM: ${eight_hwm} MB) | ≤ 128 MB |"
    echo "| GET /v1/jobs/{id}, wrk 64 connections, $WRK_SECONDS s | **${rps} req/s**, p50 ${p50}, p99 ${p99} | ≥ 15,000 req/s, p99 ≤ 20 ms |"
  } >>"$out"
else
  "$ROOT/scripts/test-servers" start "$WORK/servers" >/dev/null
  eval "$("$ROOT/scripts/test-servers" env "$WORK/servers")"
  backends=(--storage "$VMP3_TEST_S3_URL" --queue "$VMP3_TEST_AMQP_URL?prefix=bench$RANDOM"
            --metadata "$VMP3_TEST_REDIS_URL" --data-dir "$WORK/dist")
  start_server auth --roles auth "${backends[@]}"
  AUTH=http://127.0.0.1:$PORT AUTH_PID=$PID
  verify=(--auth-url "$AUTH")
  start_server api --roles upload,metadata,download "${backends[@]}" "${verify[@]}"
  BASE=http://127.0.0.1:$PORT API_PID=$PID
  TOKEN=$(token_for "$AUTH")
  start_server conv1 --roles converter --workers 2 "${backends[@]}" "${verify[@]}"
  CONV1=$PID
  e2e=() conv=()
  for _ in $(seq 1 "$REPS"); do
    e2e+=("$(end_to_end "$BASE" "$TOKEN")")
    conv+=("$(convert_seconds)")
  done
  e2e_med=$(printf '%s\n' "${e2e[@]}" | median)
  conv_med=$(printf '%s\n' "${conv[@]}" | median)

  stop_server "$CONV1"
  # Throughput: queue DRAIN_JOBS short jobs with no converter running, then time how long 1 (or 2)
  # converter processes take to drain them, so upload speed does not enter the figure.
  drain() {  # N_CONVERTERS -> seconds to finish DRAIN_JOBS queued clips
    local ids=() conv=() t0
    for _ in $(seq 1 "$DRAIN_JOBS"); do ids+=("$(upload "$BASE" "$TOKEN" "$CLIP")"); done
    t0=$(now)
    for i in $(seq 1 "$1"); do
      start_server "drain$1-$i" --roles converter --workers 1 "${backends[@]}" "${verify[@]}"
      conv+=("$PID")
    done
    for id in "${ids[@]}"; do wait_done "$BASE" "$TOKEN" "$id"; done
    echo "$(now) - $t0" | bc -l
    for pid in "${conv[@]}"; do stop_server "$pid"; done
  }
  one=$(drain 1)
  two=$(drain 2)

  start_server conv1 --roles converter --workers 2 "${backends[@]}" "${verify[@]}"
  CONV1=$PID
  api_rss=$(max_rss_during "$API_PID" upload "$BASE" "$TOKEN" "$BIG")
  {
    echo "| measure | result | target |"
    echo "|---|---|---|"
    printf '| end-to-end upload → done → download | %.2f s (vmp3 convert: %.2f s), ratio **%.2f** | ≤ 1.3 |\n' \
      "$e2e_med" "$conv_med" "$(echo "$e2e_med / $conv_med" | bc -l)"
    printf '| %s queued %s s clips drained by 1 converter process (1 thread) | %.1f s, **%.1f jobs/s** | |\n' "$DRAIN_JOBS" "$CLIP_SECONDS" "$one" "$(echo "$DRAIN_JOBS / $one" | bc -l)"
    printf '| %s queued %s s clips drained by 2 converter processes (1 thread each) | %.1f s, **%.1f jobs/s**, speed-up %.2f× | |\n' \
      "$DRAIN_JOBS" "$CLIP_SECONDS" "$two" "$(echo "$DRAIN_JOBS / $two" | bc -l)" "$(echo "$one / $two" | bc -l)"
    echo "| peak RSS of the upload role (with metadata, download) during a $BIG_LABEL upload into S3, sampled every 20 ms | **${api_rss} MB** (VmHWM incl. sign-ins: $(peak_rss_mb "$API_PID") MB) | ≤ 64 MB |"
    echo "| VmHWM of the other roles: auth (Argon2id, 64 MiB by design) / converter (after the end-to-end conversions) | $(peak_rss_mb "$AUTH_PID") / $(peak_rss_mb "$CONV1") MB | |"
  } >>"$out"
fi
cat "$out"
echo "written to $out" >&2
