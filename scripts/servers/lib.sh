# shellcheck shell=bash
# Shared helpers for scripts/servers/*.sh. Sourced, not run.
# Every server these scripts start binds 127.0.0.1 only, keeps all its state under the directory the
# caller gives, and is stopped by the PID it recorded there, never by name.

# Seconds a `start` may wait for a server to answer (override per call with VMP3_SERVER_TIMEOUT).
: "${VMP3_SERVER_TIMEOUT:=90}"

die() {
  echo "${0##*/}: $*" >&2
  exit 1
}

# require_cmd CMD...: fails with the install hint when a server binary is missing.
require_cmd() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || die "$c is not installed; run: scripts/install-deps --with-servers"
  done
}

# check_port PORT: a number in 1..65535.
check_port() {
  if ! [[ "$1" =~ ^[0-9]+$ ]] || (($1 < 1 || $1 > 65535)); then
    die "bad port '$1' (want 1..65535)"
  fi
}

# abs_dir DIR: creates DIR and prints its absolute path (state paths end up in config files).
abs_dir() {
  mkdir -p "$1" && (cd "$1" && pwd -P)
}

# pid_of PIDFILE: prints the PID recorded in PIDFILE if that process is alive.
pid_of() {
  local pid
  [[ -s "$1" ]] || return 1
  read -r pid <"$1" || [[ -n "$pid" ]] || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# pid_matches PID NAME: the process's executable name (comm) is NAME, so a PID reused by an
# unrelated process after a crash is never signalled.
pid_matches() {
  local comm
  comm=$(cat "/proc/$1/comm" 2>/dev/null) || return 1
  [[ "$comm" == "$2"* ]]
}

# wait_gone PID SECONDS: waits for PID to exit; fails if it is still there after SECONDS.
wait_gone() {
  local pid=$1 deadline=$((SECONDS + $2))
  while kill -0 "$pid" 2>/dev/null; do
    # A zombie has exited; only its parent (not us) can reap it.
    [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" == Z ]] && return 0
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

# stop_pidfile PIDFILE NAME [GRACE]: SIGTERM the process recorded in PIDFILE if its comm is NAME,
# SIGKILL after GRACE seconds (default 20), then remove PIDFILE. Succeeds when nothing runs.
stop_pidfile() {
  local pidfile=$1 name=$2 grace=${3:-20} pid
  if pid=$(pid_of "$pidfile") && pid_matches "$pid" "$name"; then
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_gone "$pid" "$grace"; then
      echo "${0##*/}: $name (pid $pid) ignored SIGTERM for ${grace}s; sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
      wait_gone "$pid" 5 || die "$name (pid $pid) does not exit"
    fi
  fi
  rm -f "$pidfile"
}

# wait_for SECONDS WHAT CMD...: runs CMD every 0.2 s until it succeeds; fails after SECONDS.
wait_for() {
  local limit=$1 what=$2 deadline
  shift 2
  deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || {
      echo "${0##*/}: $what did not become ready within ${limit}s" >&2
      return 1
    }
    sleep 0.2
  done
}

# tcp_open PORT: something accepts TCP connections on 127.0.0.1:PORT.
tcp_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# random_token LENGTH ALPHABET: LENGTH random characters from ALPHABET (a tr set), from /dev/urandom.
random_token() {
  local out=""
  while ((${#out} < $1)); do
    out+=$(head -c 256 /dev/urandom | LC_ALL=C tr -dc "$2")
  done
  echo "${out:0:$1}"
}

# close_inherited_fds: closes every descriptor above 2 this script inherited. The servers it
# starts live on after it, and a server holding a descriptor its caller opened keeps what it
# refers to alive: under `flock /work/build.lock CMD` (fd 3 holds the lock) a restarted server
# would hold the machine-wide build lock for its whole life. Call it first thing.
close_inherited_fds() {
  local fd
  for fd in /proc/$$/fd/*; do
    fd=${fd##*/}
    # 255: bash reads the running script through it.
    [[ $fd =~ ^[0-9]+$ ]] && ((fd > 2 && fd != 255)) || continue
    eval "exec $fd>&-" 2>/dev/null || true
  done
}

# docker_client: the docker client to use: $VMP3_DOCKER if set, else Debian's /usr/bin/docker
# (it has BuildKit; some machines put a client without buildx first on PATH), else `docker`.
docker_client() {
  if [[ -n ${VMP3_DOCKER:-} ]]; then
    echo "$VMP3_DOCKER"
  elif [[ -x /usr/bin/docker ]]; then
    echo /usr/bin/docker
  else
    command -v docker || die "docker is not installed; run: scripts/install-deps --with-deploy"
  fi
}
