#!/bin/sh
# Entrypoint of the Redis stand-in (see the Dockerfile): the official image's behaviour that
# compose.yaml relies on.
set -eu
# `docker run IMAGE --appendonly yes` means redis-server with those arguments.
case "${1:-}" in
  -*) set -- redis-server "$@" ;;
esac
if [ "${1:-}" = redis-server ]; then
  shift
  # Files Redis writes (AOF, RDB) are its user's only, as with the official entrypoint.
  umask 0077
  case "${1:-}" in
    "" | -*)
      # The official image builds Redis with protected mode off by default (clients come from
      # the container network, not loopback); a later --protected-mode argument still decides.
      set -- redis-server --protected-mode no "$@"
      ;;
    *)
      # A configuration file comes first and decides for itself.
      set -- redis-server "$@"
      ;;
  esac
fi
exec "$@"
