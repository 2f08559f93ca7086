#!/usr/bin/env bash
# Starts or stops a private Redis on 127.0.0.1 whose state (AOF, config, log, PID) lives in DIR.
# Usage: scripts/servers/redis.sh start|stop|status DIR PORT
#   start   daemonizes redis-server (AOF on, fsync every second), waits until PING answers and prints
#           redis://127.0.0.1:PORT/0. Already running for DIR: prints the URL and succeeds.
#   stop    SIGTERM by the PID recorded in DIR (Redis flushes the AOF, then exits); waits for the exit.
#   status  exit 0 if the Redis of DIR runs and answers PING.
# Env: VMP3_SERVER_TIMEOUT (seconds, default 90).
set -euo pipefail
# shellcheck source=scripts/servers/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
close_inherited_fds

(($# == 3)) || die "usage: ${0##*/} start|stop|status DIR PORT"
action=$1 port=$3
check_port "$port"
dir=$(abs_dir "$2")
pidfile=$dir/redis.pid

answers() { [[ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" == PONG ]]; }
running() { pid_of "$pidfile" >/dev/null && answers; }

case "$action" in
  start)
    require_cmd redis-server redis-cli
    if ! running; then
      if pid=$(pid_of "$pidfile") && pid_matches "$pid" redis-server; then
        die "redis-server (pid $pid) of $dir runs but does not answer on port $port; stop it first"
      fi
      tcp_open "$port" && die "port $port on 127.0.0.1 is already taken"
      cat >"$dir/redis.conf" <<EOF
bind 127.0.0.1
protected-mode yes
port $port
dir $dir
daemonize yes
pidfile $pidfile
logfile $dir/redis.log
appendonly yes
appendfsync everysec
EOF
      redis-server "$dir/redis.conf" </dev/null >/dev/null 2>&1 || die "redis-server failed; see $dir/redis.log"
      if ! wait_for "$VMP3_SERVER_TIMEOUT" "redis on port $port" running; then
        stop_pidfile "$pidfile" redis-server 10
        die "see $dir/redis.log"
      fi
    fi
    echo "redis://127.0.0.1:$port/0"
    ;;
  stop) stop_pidfile "$pidfile" redis-server 30 ;;
  status) running ;;
  *) die "unknown action '$action' (start|stop|status)" ;;
esac
