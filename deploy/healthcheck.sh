#!/bin/bash
# Container HEALTHCHECK for wabot-worker (installed as
# /usr/local/bin/wabot-healthcheck by deploy/Dockerfile).
#
# GETs http://127.0.0.1:${HTTP_PORT:-9090}/healthz with nothing but bash's
# /dev/tcp, so the runtime image needs no curl or wget; exits 0 on an HTTP
# 200 and 1 on anything else (connection refused, timeout, 503, garbage).
# Kubernetes ignores HEALTHCHECK and uses the Deployment's probes instead;
# this is for `docker run` and docker compose.
set -u
port="${HTTP_PORT:-9090}"
path="${1:-/healthz}"
# Bound the whole check even if the server accepts and never answers.
exec 3<>"/dev/tcp/127.0.0.1/${port}" || exit 1
printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$path" >&3 || exit 1
IFS= read -r -t 3 status <&3 || exit 1
exec 3<&- 3>&-
case "$status" in
"HTTP/1."[01]" 200"*) exit 0 ;;
*) echo "wabot-healthcheck: ${path}: ${status%$'\r'}" >&2; exit 1 ;;
esac
