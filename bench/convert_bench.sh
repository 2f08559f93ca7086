#!/usr/bin/env bash
# vmp3 convert vs the ffmpeg CLI, side by side on the same generated inputs.
#
# Usage: bench/convert_bench.sh                  full run: ~10 min of input generation the first
#                                                time, then 5 repetitions of every command
#        BENCH_SMOKE=1 bench/convert_bench.sh    smoke run: 3-5 s inputs of 320x180 or less, one
#                                                repetition, the table written under the build
#                                                directory; proves the script works in seconds
#
# Environment:
#   VMP3_BUILD_DIR     the build directory (default build; `make bench` passes its BUILD_DIR)
#   VMP3               the vmp3 binary (default: $VMP3_BUILD_DIR/vmp3)
#   FFMPEG             the ffmpeg binary (default: ffmpeg on PATH)
#   BENCH_REPS         repetitions of each command (default 5; 1 in smoke mode)
#   BENCH_CACHE        where generated inputs are kept and reused (default
#                      $VMP3_BUILD_DIR/bench-inputs, $VMP3_BUILD_DIR/bench-inputs-smoke in smoke mode)
#   BENCH_RESULTS_DIR  where the Markdown table is written (default bench/results;
#                      $VMP3_BUILD_DIR/bench-results-smoke in smoke mode, which refuses any
#                      directory under bench/ so smoke numbers never land in the repository)
#
# Each command runs under GNU time (wall, user, sys, peak RSS); the table shows medians and the
# ratio to ffmpeg's re-encode of the same input. Repetitions are interleaved (vmp3, ffmpeg, vmp3,
# ...) so drift in machine load spreads over both tools. Nothing here asserts on timings, but any
# failing step (input generation, a command, a missing output) fails the run with a non-zero exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/sampling.sh
source "$ROOT/bench/sampling.sh"
SMOKE=${BENCH_SMOKE:-0}
BUILD=$(realpath -m "${VMP3_BUILD_DIR:-$ROOT/build}")
VMP3=${VMP3:-$BUILD/vmp3}
FFMPEG=${FFMPEG:-ffmpeg}
TIME=/usr/bin/time

# Input lengths (s) and frame sizes: a 10-minute and a 60-minute input, or tiny ones for smoke.
if [[ $SMOKE == 1 ]]; then
  REPS=${BENCH_REPS:-1}
  CACHE=${BENCH_CACHE:-$BUILD/bench-inputs-smoke}
  RESULTS_DIR=${BENCH_RESULTS_DIR:-$BUILD/bench-results-smoke}
  SHORT=3 LONG=5
  BIG_SIZE=320x180 BIG_NAME=180p SMALL_SIZE=160x90 SMALL_NAME=90p
else
  REPS=${BENCH_REPS:-5}
  CACHE=${BENCH_CACHE:-$BUILD/bench-inputs}
  RESULTS_DIR=${BENCH_RESULTS_DIR:-$ROOT/bench/results}
  SHORT=600 LONG=3600
  BIG_SIZE=1280x720 BIG_NAME=720p SMALL_SIZE=640x360 SMALL_NAME=360p
fi

CORES=$(nproc)

die() { echo "convert_bench: $*" >&2; exit 1; }
[[ -x $VMP3 ]] || die "$VMP3 not found or not executable (build it: make build)"
command -v "$FFMPEG" >/dev/null || die "ffmpeg not found (set FFMPEG)"
if ! [[ -x $TIME ]] || ! $TIME -f '%e' true 2>/dev/null; then
  die "GNU time is needed at $TIME (apt-get install time)"
fi
[[ $REPS =~ ^[1-9][0-9]*$ ]] || die "BENCH_REPS must be a positive integer"
if [[ $SMOKE == 1 && $(realpath -m "$RESULTS_DIR")/ == "$ROOT/bench/"* ]]; then
  die "a smoke run does not write under bench/ (BENCH_RESULTS_DIR=$RESULTS_DIR)"
fi

mkdir -p "$CACHE" "$RESULTS_DIR"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vmp3-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
LOG=$WORK/commands.log

# ---- Inputs ------------------------------------------------------------------------------------

# Two tones per channel, slowly modulated, plus noise: enough structure that the encoder has
# real work to do (silence or a pure tone would flatter any MP3 encoder).
AUDIO_EXPR='0.25*sin(2*PI*440*t)*(0.6+0.4*sin(2*PI*0.5*t))+0.15*sin(2*PI*1250*t)+0.08*(2*random(0)-1)'
AUDIO_EXPR+='|0.25*sin(2*PI*554*t)+0.15*sin(2*PI*1660*t)*(0.6+0.4*sin(2*PI*0.3*t))+0.08*(2*random(1)-1)'

# generate NAME SECONDS SIZE VIDEO_ARGS AUDIO_ARGS: makes $CACHE/NAME unless it is already there.
generate() {
  local name=$1 seconds=$2 size=$3 vargs=$4 aargs=$5
  local out=$CACHE/$name
  if [[ -s $out ]]; then
    echo "reusing $out" >&2
    return
  fi
  echo "generating $out (${seconds}s, $size) ..." >&2
  local tmp=$CACHE/.$name.partial.$$.${name##*.}  # per process: two runs may fill one cache
  # shellcheck disable=SC2086  # vargs/aargs are word lists on purpose
  if ! "$FFMPEG" -nostdin -y -hide_banner -loglevel error \
    -f lavfi -i "testsrc2=size=$size:rate=25" \
    -f lavfi -i "aevalsrc=exprs=$AUDIO_EXPR:sample_rate=48000:channel_layout=stereo" \
    -t "$seconds" -map 0:v -map 1:a $vargs $aargs "$tmp"; then
    rm -f "$tmp"
    die "could not generate $out"
  fi
  mv "$tmp" "$out"
}

MP4_SHORT=h264-aac-$BIG_NAME-${SHORT}s.mp4
MP4_LONG=h264-aac-$SMALL_NAME-${LONG}s.mp4
AVI_SHORT=mpeg4-mp3-$BIG_NAME-${SHORT}s.avi
H264="-c:v libx264 -preset ultrafast -pix_fmt yuv420p"
generate "$MP4_SHORT" "$SHORT" "$BIG_SIZE" "$H264" "-c:a aac -b:a 128k"
generate "$MP4_LONG" "$LONG" "$SMALL_SIZE" "$H264" "-c:a aac -b:a 128k"
generate "$AVI_SHORT" "$SHORT" "$BIG_SIZE" "-c:v mpeg4 -q:v 5" "-c:a libmp3lame -b:a 192k"

# ---- Measuring ---------------------------------------------------------------------------------

# run ID COMMAND...: runs once under GNU time and appends wall, cpu (user+sys) and peak RSS (KB)
# to $WORK/ID.{wall,cpu,rss}. A failing command fails the whole run: a number from a command
# that did not do its work would be a lie.
run() {
  local id=$1
  shift
  echo "+ $*" >>"$LOG"
  if ! $TIME -f '%e %U %S %M' -o "$WORK/$id.time" "$@" >>"$LOG" 2>&1; then
    tail -n 20 "$LOG" >&2
    die "command failed: $*"
  fi
  local wall user sys rss
  read -r wall user sys rss <"$WORK/$id.time"
  echo "$wall" >>"$WORK/$id.wall"
  awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f\n", u + s }' >>"$WORK/$id.cpu"
  echo "$rss" >>"$WORK/$id.rss"
}

# peak_private_mb COMMAND...: runs once, sampling the process's private (anonymous) resident
# memory every 20 ms; prints its peak in MB. Peak RSS above also counts the shared libraries'
# pages (~32 MB of FFmpeg and its codecs), which every process using them shares.
peak_private_mb() {
  "$@" >>"$LOG" 2>&1 &
  local job=$! peak
  peak=$(max_status_kb RssAnon "$job" "$job")
  wait "$job" || die "command failed: $*"
  mb "$peak"
}

median() {  # median of the numbers in file $1
  sort -g "$1" | awk '{ v[NR] = $1 }
    END { if (NR == 0) { print "nan"; exit }
          if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

best() { sort -g "$1" | head -n 1; }  # the fastest of the runs in file $1
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }  # KB -> MB (RSS)
file_mb() { awk -v b="$(stat -c %s "$1")" 'BEGIN { printf (b < 1e7 ? "%.2f" : "%.0f"), b / 1e6 }'; }

# The cases of one input, in table order: ID|LABEL|COMMAND (the command is eval'ed with $IN and
# $OUT set; OUT is per case so outputs can be compared afterwards).
declare -a ROWS=()
declare -A WALL=()     # median wall time by case ID
declare -A PRIVATE=()  # peak private memory (MB) by case ID

bench_input() {
  local file=$1 title=$2
  shift 2
  # shellcheck disable=SC2034  # IN and OUT are used by the eval'ed commands
  local cases=("$@") IN=$CACHE/$file
  echo "benchmarking $file ($REPS repetition(s)) ..." >&2
  for ((rep = 1; rep <= REPS; rep++)); do
    for c in "${cases[@]}"; do
      local id=${c%%|*} rest=${c#*|}
      local label=${rest%%|*} cmd=${rest#*|}
      # shellcheck disable=SC2034
      local OUT=$WORK/$id.mp3
      rm -f "$OUT"
      eval "run $id $cmd"
      [[ -s $OUT ]] || die "$label: exited 0 but wrote no $OUT"
    done
  done
  # The reference for ratios: ffmpeg re-encoding this input.
  local ref_id
  for c in "${cases[@]}"; do [[ ${c%%|*} == *_ffmpeg_lame ]] && ref_id=${c%%|*}; done
  local ref_wall ref_cpu ref_rss
  ref_wall=$(median "$WORK/$ref_id.wall")
  ref_cpu=$(median "$WORK/$ref_id.cpu")
  ref_rss=$(median "$WORK/$ref_id.rss")
  for c in "${cases[@]}"; do
    local id=${c%%|*} rest=${c#*|}
    local label=${rest%%|*}
    local wall cpu rss
    wall=$(median "$WORK/$id.wall")
    cpu=$(median "$WORK/$id.cpu")
    rss=$(median "$WORK/$id.rss")
    WALL[$id]=$wall
    ROWS+=("| $title | $label | $wall | $(best "$WORK/$id.wall") | $cpu | $(mb "$rss") | $(file_mb "$WORK/$id.mp3") | $(ratio "$wall" "$ref_wall") | $(ratio "$(best "$WORK/$id.wall")" "$(best "$WORK/$ref_id.wall")") | $(ratio "$cpu" "$ref_cpu") | $(ratio "$rss" "$ref_rss") |")
  done
}

# shellcheck disable=SC2016  # expanded later, by eval in bench_input
FF_LAME='"$FFMPEG" -nostdin -y -i "$IN" -vn -c:a libmp3lame -q:a 2 "$OUT"'
# shellcheck disable=SC2016
VMP3_CONVERT='"$VMP3" convert "$IN" -o "$OUT" --overwrite --json'
# The machine's own limit: one single-threaded ffmpeg per core, all at once (the row's wall time is
# for all of them; a virtual machine's cores often give less than N times one core's throughput).
# shellcheck disable=SC2016
FF_EVERY_CORE='bash -c '"'"'for i in $(seq 2 "$1"); do "$2" -nostdin -y -i "$3" -vn -c:a libmp3lame -q:a 2 "$4.$i.mp3" & done; "$2" -nostdin -y -i "$3" -vn -c:a libmp3lame -q:a 2 "$4"; wait'"'"' - "$CORES" "$FFMPEG" "$IN" "$OUT"'

describe() {  # "720p H.264/AAC MP4, 10 min, 480 MB"
  echo "$1, $(awk -v s="$2" 'BEGIN { if (s >= 60) printf "%d min", s / 60; else printf "%d s", s }'), $(file_mb "$CACHE/$3") MB"
}

# vmp3 convert's default uses every core (a long input is encoded in parallel segments); the
# 10-minute input also runs the scaling curve, --threads 1 (single pass) to 4, the single pass and
# 2 threads confined to one core (the CPU parallel encoding adds, without the slow-down two busy
# cores of this machine cause each other), and one ffmpeg per core at once (the machine's bound).
bench_input "$MP4_SHORT" "$(describe "$BIG_NAME H.264/AAC MP4" "$SHORT" "$MP4_SHORT")" \
  "mp4s_vmp3|vmp3 convert (V2; default: $CORES threads)|$VMP3_CONVERT" \
  "mp4s_vmp3_t1|vmp3 convert --threads 1 (V2, single pass)|$VMP3_CONVERT --threads 1" \
  "mp4s_vmp3_t2|vmp3 convert --threads 2|$VMP3_CONVERT --threads 2" \
  "mp4s_vmp3_t3|vmp3 convert --threads 3|$VMP3_CONVERT --threads 3" \
  "mp4s_vmp3_t4|vmp3 convert --threads 4|$VMP3_CONVERT --threads 4" \
  "mp4s_vmp3_pin1|vmp3 convert --threads 1, on one core (taskset -c 0)|taskset -c 0 $VMP3_CONVERT --threads 1" \
  "mp4s_vmp3_pin2|vmp3 convert --threads 2, on one core (taskset -c 0)|taskset -c 0 $VMP3_CONVERT --threads 2" \
  "mp4s_ffmpeg_every_core|$CORES × ffmpeg libmp3lame -q:a 2 at once (wall for all)|$FF_EVERY_CORE" \
  "mp4s_ffmpeg_lame|ffmpeg libmp3lame -q:a 2|$FF_LAME"
bench_input "$MP4_LONG" "$(describe "$SMALL_NAME H.264/AAC MP4" "$LONG" "$MP4_LONG")" \
  "mp4l_vmp3|vmp3 convert (V2; default: $CORES threads)|$VMP3_CONVERT" \
  "mp4l_vmp3_t1|vmp3 convert --threads 1 (V2, single pass)|$VMP3_CONVERT --threads 1" \
  "mp4l_ffmpeg_lame|ffmpeg libmp3lame -q:a 2|$FF_LAME"
bench_input "$AVI_SHORT" "$(describe "$BIG_NAME MPEG-4/MP3 AVI" "$SHORT" "$AVI_SHORT")" \
  "avi_vmp3_copy|vmp3 convert (copy)|$VMP3_CONVERT" \
  "avi_vmp3_reencode|vmp3 convert --reencode (V2)|$VMP3_CONVERT --reencode" \
  "avi_ffmpeg_lame|ffmpeg libmp3lame -q:a 2|$FF_LAME" \
  "avi_ffmpeg_copy|ffmpeg -c:a copy|\"\$FFMPEG\" -nostdin -y -i \"\$IN\" -vn -c:a copy \"\$OUT\""

# Parallel output against the single pass, decoded by ffmpeg: the same PCM (an MD5 of it).
pcm_md5() { "$FFMPEG" -nostdin -v error -i "$1" -f s32le - | md5sum | cut -d' ' -f1; }
same_pcm() {  # same_pcm A B -> "identical" or "DIFFERENT"
  if [[ $(pcm_md5 "$WORK/$1.mp3") == "$(pcm_md5 "$WORK/$2.mp3")" ]]; then echo identical; else echo DIFFERENT; fi
}
length() { awk -v s="$1" 'BEGIN { if (s >= 60) printf "%d min", s / 60; else printf "%d s", s }'; }
CPU_SUM=()
CPU_SUM+=("- $(length "$SHORT"): --threads 2 vs 3 vs 4 vs single pass, decoded PCM: $(same_pcm mp4s_vmp3_t2 mp4s_vmp3_t1), $(same_pcm mp4s_vmp3_t3 mp4s_vmp3_t1), $(same_pcm mp4s_vmp3_t4 mp4s_vmp3_t1).")
CPU_SUM+=("- $(length "$LONG"): default vs single pass, decoded PCM: $(same_pcm mp4l_vmp3 mp4l_vmp3_t1).")
percent() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%+.1f %%", (a / b - 1) * 100; else print "n/a" }'; }
# The frames LAME encoded for a case's output (its --json line in the log) over the stream's:
# the work the segments' pre- and post-roll and chases add, counted, not timed; and the seams
# where the encoders were not seen to agree (docs/architecture.md, "The chase").
lame_work() {
  python3 - "$LOG" "$WORK/$1.mp3" <<'PY'
import json, sys
log, out = sys.argv[1], sys.argv[2]
found = None
for line in open(log, encoding="utf-8", errors="replace"):
    if line.startswith("{") and f'"output":"{out}"' in line:
        found = json.loads(line)
if not found or not found.get("frames"):
    print("n/a")
else:
    print(f"{found['encoded_frames']} frames encoded for {found['frames']} "
          f"({(found['encoded_frames'] / found['frames'] - 1) * 100:+.1f} %, "
          f"{found['segments']} segments, {found.get('inexact_seams', 0)} seams not proven exact)")
PY
}
for pair in "mp4s:$(length "$SHORT")" "mp4l:$(length "$LONG")"; do
  id=${pair%%:*} what=${pair#*:}
  t1_cpu=$(median "$WORK/${id}_vmp3_t1.cpu")
  par_cpu=$(median "$WORK/${id}_vmp3.cpu")
  CPU_SUM+=("- $what: the default ($CORES threads) takes $(ratio "${WALL[${id}_vmp3]}" "${WALL[${id}_ffmpeg_lame]}")x ffmpeg's wall time and $(ratio "${WALL[${id}_vmp3]}" "${WALL[${id}_vmp3_t1]}")x the single pass's; CPU overhead vs the single pass: $(percent "$par_cpu" "$t1_cpu"); LAME's work: $(lame_work "${id}_vmp3").")
done
every_core=$(awk -v w="${WALL[mp4s_ffmpeg_every_core]}" -v n="$CORES" 'BEGIN { printf "%.2f", w / n }')
CPU_SUM+=("- $(length "$SHORT"), this machine's bound: $CORES ffmpeg encodes at once take ${WALL[mp4s_ffmpeg_every_core]} s, $every_core s a file = $(ratio "$every_core" "${WALL[mp4s_ffmpeg_lame]}")x one alone (perfect cores: $(awk -v n="$CORES" 'BEGIN { printf "%.2f", 1 / n }')x); the default's $(ratio "${WALL[mp4s_vmp3]}" "${WALL[mp4s_ffmpeg_lame]}")x is $(ratio "${WALL[mp4s_vmp3]}" "$every_core")x that bound.")
for id in mp4s_vmp3_t1 mp4s_vmp3 mp4l_vmp3_t1 mp4l_vmp3; do
  case $id in mp4s_*) IN=$CACHE/$MP4_SHORT ;; *) IN=$CACHE/$MP4_LONG ;; esac
  case $id in *_t1) extra=(--threads 1) ;; *) extra=() ;; esac
  PRIVATE[$id]=$(peak_private_mb "$VMP3" convert "$IN" -o "$WORK/private.mp3" --overwrite "${extra[@]}")
done
CPU_SUM+=("- Peak private (anonymous) memory, sampled every 20 ms: $(length "$SHORT") single pass ${PRIVATE[mp4s_vmp3_t1]} MB, default ${PRIVATE[mp4s_vmp3]} MB; $(length "$LONG") ${PRIVATE[mp4l_vmp3_t1]} MB and ${PRIVATE[mp4l_vmp3]} MB (peak RSS also counts ~32 MB of shared library pages).")
CPU_SUM+=("- $(length "$SHORT") on one core (taskset): --threads 2 vs the single pass, CPU $(percent "$(median "$WORK/mp4s_vmp3_pin2.cpu")" "$(median "$WORK/mp4s_vmp3_pin1.cpu")"); on both cores: $(percent "$(median "$WORK/mp4s_vmp3_t2.cpu")" "$(median "$WORK/mp4s_vmp3_t1.cpu")").")

# ---- Report ------------------------------------------------------------------------------------

cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem_gb=$(awk '/^MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)
copy_speedup=$(ratio "${WALL[avi_vmp3_reencode]}" "${WALL[avi_vmp3_copy]}")
copy_vs_ffmpeg=$(ratio "${WALL[avi_vmp3_copy]}" "${WALL[avi_ffmpeg_copy]}")
stamp=$(date +%Y-%m-%d)
suffix=""
[[ $SMOKE == 1 ]] && suffix="-smoke"
report=$RESULTS_DIR/convert-$stamp$suffix.md

{
  echo "## Conversion: vmp3 vs ffmpeg CLI ($stamp${suffix:+, smoke run})"
  echo
  echo "- Machine: $cpu_model, $(nproc) CPUs, $mem_gb GB RAM, $(uname -sr)"
  echo "- $("$VMP3" --version); $("$FFMPEG" -version | head -n 1 | cut -d' ' -f1-3)"
  echo "- Median of $REPS run(s) each (and the best, as this machine's speed drifts by up to a"
  echo "  third between runs), measured with GNU time; CPU = user + sys; ratios are"
  echo "  against \`ffmpeg -nostdin -y -i IN -vn -c:a libmp3lame -q:a 2 OUT\` on the same input"
  echo "  (below 1.00 means vmp3 is faster / uses less)."
  echo
  echo "| Input | Command | Wall s | Best wall s | CPU s | Peak RSS MB | Output MB | Wall ratio | Best wall ratio | CPU ratio | RSS ratio |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  printf '%s\n' "${ROWS[@]}"
  echo
  printf '%s\n' "${CPU_SUM[@]}"
  echo "- Copy vs re-encode (vmp3, AVI): copying is ${copy_speedup}x faster (wall)."
  echo "- vmp3 copy vs ffmpeg \`-c:a copy\` (AVI): wall ratio $copy_vs_ffmpeg."
} >"$report"

cat "$report"
echo >&2
echo "written to $report" >&2
