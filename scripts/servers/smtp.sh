#!/usr/bin/env bash
# Starts or stops a private SMTP server on 127.0.0.1 (aiosmtpd, scripts/servers/smtp_server.py)
# whose state lives in DIR: the messages it accepts (DIR/maildir, a Maildir: new/cur/tmp), its
# certificates and its log.
# Usage: scripts/servers/smtp.sh start|stop|status DIR PORT [plain]
#   start   starts the server in the background, waits until it accepts connections and prints
#           smtp://127.0.0.1:PORT. Already running for DIR: prints the URL and succeeds.
#           By default it requires STARTTLS and a login: at the first start it creates with the
#           openssl CLI a CA (DIR/ca.pem, the file clients trust), a server certificate for
#           127.0.0.1 and localhost signed by it (DIR/server.pem, DIR/server.key), and a random
#           password for the user `vmp3` (DIR/auth.env: SMTP_USER=, SMTP_PASSWORD=).
#           With `plain` it offers neither STARTTLS nor AUTH (for tests of clients that must
#           refuse such a server).
#   stop    SIGTERM by the PID recorded in DIR; waits for the exit.
#   status  exit 0 if the server of DIR runs and accepts connections.
# See smtp_server.py for what it records in each message and the recipients it refuses.
# Env: VMP3_SERVER_TIMEOUT (seconds, default 90).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/servers/lib.sh
source "$here/lib.sh"
close_inherited_fds

(($# == 3 || $# == 4)) || die "usage: ${0##*/} start|stop|status DIR PORT [plain]"
action=$1 port=$3 mode=${4:-tls}
[[ $mode == tls || $mode == plain ]] || die "unknown mode '$mode' (want plain or nothing)"
check_port "$port"
dir=$(abs_dir "$2")
pidfile=$dir/smtp.pid

# A Python that has aiosmtpd: Debian's python3-aiosmtpd lives in /usr/bin/python3's packages,
# which another python3 first on PATH (pyenv, a virtualenv) does not see.
smtp_python() {
  local candidate
  for candidate in /usr/bin/python3 python3; do
    if "$candidate" -c 'import aiosmtpd' >/dev/null 2>&1; then
      command -v "$candidate"
      return 0
    fi
  done
  die "aiosmtpd is not installed; run: scripts/install-deps --with-servers"
}

# The CA, the server certificate (127.0.0.1 and localhost; both valid ten years) and the login,
# made once per DIR so clients may keep trusting DIR/ca.pem across restarts.
make_credentials() {
  require_cmd openssl
  if [[ ! -s $dir/ca.pem || ! -s $dir/server.pem || ! -s $dir/server.key ]]; then
    (
      umask 077
      openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
        -subj "/CN=vmp3 test SMTP CA" -keyout "$dir/ca.key" -out "$dir/ca.pem.tmp" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
      openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
        -keyout "$dir/server.key" -out "$dir/server.csr"
      printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=CA:FALSE" \
        "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >"$dir/server.ext"
      openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem.tmp" -CAkey "$dir/ca.key" \
        -CAcreateserial -days 3650 -extfile "$dir/server.ext" -out "$dir/server.pem"
      rm -f "$dir/server.csr" "$dir/server.ext" "$dir/ca.pem.srl"
    ) >"$dir/openssl.log" 2>&1 || die "openssl failed; see $dir/openssl.log"
    chmod 0644 "$dir/ca.pem.tmp"
    mv "$dir/ca.pem.tmp" "$dir/ca.pem"
  fi
  if [[ ! -s $dir/auth.env ]]; then
    (
      umask 077
      printf 'SMTP_USER=vmp3\nSMTP_PASSWORD=%s\n' "$(random_token 24 'A-Za-z0-9')" >"$dir/auth.env.tmp"
      mv "$dir/auth.env.tmp" "$dir/auth.env"
    )
  fi
  # The server reads "user:password" (smtp_server.py --auth-file).
  local user password
  user=$(sed -n 's/^SMTP_USER=//p' "$dir/auth.env")
  password=$(sed -n 's/^SMTP_PASSWORD=//p' "$dir/auth.env")
  (umask 077 && printf '%s:%s\n' "$user" "$password" >"$dir/auth")
}

running() { pid_of "$pidfile" >/dev/null && tcp_open "$port"; }

case "$action" in
  start)
    python=$(smtp_python)
    if ! running; then
      if pid=$(pid_of "$pidfile") && pid_matches "$pid" python3; then
        die "the SMTP server (pid $pid) of $dir runs but does not accept connections on port $port; stop it first"
      fi
      rm -f "$pidfile"
      tcp_open "$port" && die "port $port on 127.0.0.1 is already taken"
      mkdir -p "$dir/maildir/tmp" "$dir/maildir/new" "$dir/maildir/cur"
      args=(--port "$port" --maildir "$dir/maildir" --pid-file "$pidfile")
      if [[ $mode == tls ]]; then
        make_credentials
        args+=(--tls-cert "$dir/server.pem" --tls-key "$dir/server.key" --auth-file "$dir/auth")
      fi
      # Its own session, no terminal, nothing of ours open: it outlives this script.
      setsid "$python" "$here/smtp_server.py" "${args[@]}" </dev/null >>"$dir/smtp.log" 2>&1 &
      if ! wait_for "$VMP3_SERVER_TIMEOUT" "the SMTP server on port $port" running; then
        stop_pidfile "$pidfile" python3 10
        die "see $dir/smtp.log"
      fi
    fi
    echo "smtp://127.0.0.1:$port"
    ;;
  stop) stop_pidfile "$pidfile" python3 20 ;;
  status) running ;;
  *) die "unknown action '$action' (start|stop|status)" ;;
esac
