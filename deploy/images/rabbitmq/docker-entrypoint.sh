#!/bin/bash
# Entrypoint of the RabbitMQ stand-in (see the Dockerfile). RabbitMQ itself reads
# RABBITMQ_DEFAULT_USER / RABBITMQ_DEFAULT_PASS (3.10 as 3.12), so this only fixes the limit below.
set -euo pipefail

if [[ ${1:-} == rabbitmq-server ]]; then
  # RabbitMQ counts file handles (sockets, queue files) against the soft open-files limit and,
  # at a soft limit of 1024 (what newer container engines give), stalls logins and declarations
  # once it runs out, without an error (scripts/servers/rabbitmq.sh learnt it). Lift the soft
  # limit to the hard one; compose.yaml gives the container a high one (ulimits.nofile).
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fi
exec "$@"
