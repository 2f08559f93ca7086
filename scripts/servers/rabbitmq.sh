#!/usr/bin/env bash
# Starts or stops a private RabbitMQ node on 127.0.0.1 whose state (Mnesia, logs, cookie, PIDs) lives in
# DIR. It has its own epmd on its own port, so it never meets a system epmd or another instance.
# Usage: scripts/servers/rabbitmq.sh start|stop|status|pid DIR PORT [DIST_PORT [EPMD_PORT]]
#        scripts/servers/rabbitmq.sh ctl DIR PORT DIST_PORT EPMD_PORT -- RABBITMQCTL_ARGS...
#   PORT       AMQP port. DIST_PORT (Erlang distribution) defaults to PORT+20000, EPMD_PORT to PORT+21000.
#   start      starts epmd and rabbitmq-server in their own sessions, waits until the node has booted
#              (rabbitmqctl wait), prints amqp://guest:guest@127.0.0.1:PORT/%2f. Already running for
#              DIR: prints the URL and succeeds. (guest may log in from loopback by default.)
#   stop       rabbitmqctl stop, then what is left of the process group start launched, then the epmd
#              start launched, all by the PIDs recorded in DIR. Succeeds when nothing runs.
#   status     exit 0 if the node of DIR has booted.
#   pid        prints the PID of the node's Erlang VM (beam), e.g. for tests that SIGSTOP it; fails
#              when it does not run.
#   ctl        runs rabbitmqctl against the node of DIR (e.g. set_vm_memory_high_watermark 0).
# Run as root, the node runs as the `rabbitmq` user and DIR is chowned to it; as another user, it runs
# as that user. Env: VMP3_SERVER_TIMEOUT (seconds, default 90).
set -euo pipefail
# shellcheck source=scripts/servers/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
close_inherited_fds

ctl_args=()
if [[ ${1:-} == ctl ]]; then
  (($# >= 6)) && [[ $6 == -- ]] || die "usage: ${0##*/} ctl DIR PORT DIST_PORT EPMD_PORT -- ARGS..."
  ctl_args=("${@:7}")
  set -- "${@:1:5}"
fi
(($# >= 3 && $# <= 5)) || die "usage: ${0##*/} start|stop|status|pid DIR PORT [DIST_PORT [EPMD_PORT]]"
action=$1 port=$3 dist_port=${4:-$(($3 + 20000))} epmd_port=${5:-$(($3 + 21000))}
check_port "$port"
check_port "$dist_port"
check_port "$epmd_port"
dir=$(abs_dir "$2")
bin=/usr/lib/rabbitmq/bin
# Unique per DIR: a node name is also how rabbitmqctl finds the node.
node="vmp3-$(printf '%s' "$dir" | cksum | cut -d' ' -f1)@localhost"
url="amqp://guest:guest@127.0.0.1:$port/%2f"

# Everything RabbitMQ reads from the environment, so nothing comes from /etc/rabbitmq or /var/lib/rabbitmq.
envs=(
  "HOME=$dir"
  "RABBITMQ_NODENAME=$node"
  "RABBITMQ_NODE_IP_ADDRESS=127.0.0.1"
  "RABBITMQ_NODE_PORT=$port"
  "RABBITMQ_DIST_PORT=$dist_port"
  "ERL_EPMD_ADDRESS=127.0.0.1"
  "ERL_EPMD_PORT=$epmd_port"
  "RABBITMQ_MNESIA_BASE=$dir/mnesia"
  "RABBITMQ_LOG_BASE=$dir/log"
  "RABBITMQ_PID_FILE=$dir/rabbitmq.pid"
  "RABBITMQ_ENABLED_PLUGINS_FILE=$dir/enabled_plugins"
  "RABBITMQ_CONFIG_FILE=$dir/rabbitmq"
  "RABBITMQ_ADVANCED_CONFIG_FILE=$dir/advanced.config"
  "RABBITMQ_CONF_ENV_FILE=$dir/rabbitmq-env.conf"
  # Without this the distribution listener binds every interface. (Tried: +sbwt none and its
  # dirty-scheduler variants, to stop idle schedulers spinning. A broker with them stalled once,
  # though the likelier cause was ~1,700 quorum queues left by earlier runs, which make test no
  # longer keeps; left out until a benchmark shows they matter.)
  "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}"
  "RABBITMQ_CTL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}"
)

as_owner() {
  if (($(id -u) == 0)); then
    (cd "$dir" && runuser -u rabbitmq -- env "${envs[@]}" "$@")
  else
    (cd "$dir" && env "${envs[@]}" "$@")
  fi
}
# group_gone PGID: no live (non-zombie) process is left in process group PGID.
group_gone() { ! ps -eo pgid=,stat= | awk -v g="$1" '$1 == g && $2 !~ /^Z/ {found = 1} END {exit !found}'; }
ctl() { as_owner "$bin/rabbitmqctl" -n "$node" "$@"; }
booted() {
  pid_of "$dir/rabbitmq.pid" >/dev/null &&
    ctl await_startup --timeout 5 >/dev/null 2>&1 && tcp_open "$port"
}

start() {
  require_cmd epmd erl
  [[ -x $bin/rabbitmq-server ]] || die "rabbitmq-server is not installed; run: scripts/install-deps --with-servers"
  if [[ -f $dir/ports ]] && [[ "$(cat "$dir/ports")" != "$port $dist_port $epmd_port" ]]; then
    die "$dir belongs to a node on ports $(cat "$dir/ports") (AMQP, dist, epmd); stop it or use another DIR"
  fi
  if booted; then
    echo "$url"
    return
  fi
  if pid=$(pid_of "$dir/rabbitmq.pid") && pid_matches "$pid" beam; then
    die "RabbitMQ (pid $pid) of $dir runs but has not booted; stop it first"
  fi
  local p
  for p in "$port" "$dist_port"; do
    tcp_open "$p" && die "port $p on 127.0.0.1 is already taken"
  done
  mkdir -p "$dir/mnesia" "$dir/log"
  echo "$port $dist_port $epmd_port" >"$dir/ports"
  echo '[].' >"$dir/enabled_plugins"
  : >"$dir/rabbitmq-env.conf"
  cat >"$dir/rabbitmq.conf" <<EOF
listeners.tcp.default = 127.0.0.1:$port
log.file.level = info
log.console = false
EOF
  if (($(id -u) == 0)); then
    chown -R rabbitmq:rabbitmq "$dir"
    runuser -u rabbitmq -- test -w "$dir" ||
      die "user rabbitmq cannot write $dir (a parent directory is closed to it); pick a DIR under /tmp"
  fi

  # Our own epmd, started directly (not through runuser) so that $! is its PID.
  if ! pid=$(pid_of "$dir/epmd.pid") || ! pid_matches "$pid" epmd; then
    tcp_open "$epmd_port" && die "port $epmd_port on 127.0.0.1 is already taken"
    setsid epmd -address 127.0.0.1 -port "$epmd_port" </dev/null >"$dir/log/epmd.log" 2>&1 &
    echo $! >"$dir/epmd.pid"
    wait_for 10 "epmd on port $epmd_port" tcp_open "$epmd_port" || die "see $dir/log/epmd.log"
  fi

  rm -f "$dir/rabbitmq.pid"
  # setsid: the node must outlive the caller's session (e.g. a ctest fixture) and not share its signals.
  # The launcher leads a new process group holding the whole node, so a node that never wrote its PID
  # file can still be stopped (stop() kills that group).
  setsid "$0" __launch "$dir" "$port" "$dist_port" "$epmd_port" </dev/null >"$dir/log/startup.log" 2>&1 &
  local launcher=$!
  echo "$launcher" >"$dir/launcher.pid"
  if ! ctl wait "$dir/rabbitmq.pid" --timeout "$VMP3_SERVER_TIMEOUT" >"$dir/log/wait.log" 2>&1 ||
    ! tcp_open "$port"; then
    kill -0 "$launcher" 2>/dev/null || echo "${0##*/}: rabbitmq-server exited:" >&2
    tail -n 20 "$dir/log/startup.log" "$dir/log/wait.log" >&2 || true
    stop
    die "RabbitMQ did not start; logs in $dir/log"
  fi
  echo "$url"
}

stop() {
  local pid
  if pid=$(pid_of "$dir/rabbitmq.pid") && pid_matches "$pid" beam; then
    # rabbitmqctl stop with the PID file waits until the process has exited; a node that
    # stopped answering would make it wait forever, so it gets a minute, then signals.
    if ! as_owner timeout 60 "$bin/rabbitmqctl" -n "$node" stop "$dir/rabbitmq.pid" \
      >"$dir/log/stop.log" 2>&1; then
      echo "${0##*/}: rabbitmqctl stop failed; stopping pid $pid with signals" >&2
    fi
    stop_pidfile "$dir/rabbitmq.pid" beam 30
  fi
  rm -f "$dir/rabbitmq.pid"
  # Whatever is left of the launcher's process group (a node killed while booting, before its PID file).
  if pid=$(pid_of "$dir/launcher.pid") && [[ "$(ps -o pgid= -p "$pid" | tr -d ' ')" == "$pid" ]]; then
    kill -TERM -- "-$pid" 2>/dev/null || true
    if ! wait_for 20 "process group $pid to exit" group_gone "$pid"; then
      kill -KILL -- "-$pid" 2>/dev/null || true
      wait_for 5 "process group $pid to exit" group_gone "$pid" || true
    fi
  fi
  rm -f "$dir/launcher.pid"
  # Last: with its epmd gone, a still-booting node would start a system-wide one of its own.
  stop_pidfile "$dir/epmd.pid" epmd 10
}

case "$action" in
  start) start ;;
  stop) stop ;;
  status) booted ;;
  pid)
    pid=$(pid_of "$dir/rabbitmq.pid") && pid_matches "$pid" beam || die "RabbitMQ of $dir does not run"
    echo "$pid"
    ;;
  ctl) ctl "${ctl_args[@]}" ;;
  # Internal: the body of the background process start() launches.
  __launch)
    # RabbitMQ counts its file handles (sockets, classic queue files) against the soft limit, and
    # at 1024 (a common default) a few hundred classic queues exhaust it: its file_handle_cache
    # then withholds handles, logins and queue declarations wait forever, and the node looks hung.
    # The test suites declare a few queues per test, so lift the soft limit to the hard one
    # (RabbitMQ's production guide asks for 65536 or more; see docs/deploy.md). Inside the runuser:
    # its PAM session resets the soft limit.
    # shellcheck disable=SC2016
    as_owner bash -c 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0"' "$bin/rabbitmq-server"
    ;;
  *) die "unknown action '$action' (start|stop|status|pid|ctl)" ;;
esac
