# shellcheck shell=bash
# Sourced by the benchmark scripts: memory sampling of a running process.

# max_status_kb FIELD PID JOB: the largest value of FIELD (VmRSS, RssAnon, ...) in
# /proc/PID/status, sampled every 20 ms while process JOB lives, in kB (0 if never read).
# PID and JOB are the same process to measure a command itself; a server's PID and a client
# job to measure what serving the client costs the server.
max_status_kb() {
  local field=$1 pid=$2 job=$3 max=0 kb
  while kill -0 "$job" 2>/dev/null; do
    kb=$(awk -v f="$field:" '$1 == f { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
    if [[ -n $kb ]] && ((kb > max)); then max=$kb; fi
    sleep 0.02
  done
  echo "$max"
}
