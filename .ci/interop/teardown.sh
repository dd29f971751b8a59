#!/usr/bin/env bash
# Stops the servers .ci/interop/setup.sh started: each by the process id recorded in
# $INTEROP_DIR/pids, with its process group (squid's auth helpers exit with squid),
# the loopback KDC and the curl checks' origin among them.
# Logs stay in $INTEROP_DIR for inspection. Safe to run twice, or with nothing running.
set -uo pipefail

INTEROP_DIR="${INTEROP_DIR:-${TMPDIR:-/tmp}/tower-tunnel-interop}"
PIDS="$INTEROP_DIR/pids"
[ -f "$PIDS" ] || exit 0

# Only signal a recorded id that is still one of our servers (guards against reuse).
ours() { # pid
    local comm
    comm="$(cat "/proc/$1/comm" 2>/dev/null)" || return 1
    case "$comm" in squid | tinyproxy | microsocks | nghttpx | danted | krb5kdc | python3) return 0 ;; *) return 1 ;; esac
}

live=()
while read -r name pid; do
    [ -n "${pid:-}" ] || continue
    if ours "$pid"; then
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        live+=("$pid")
        printf 'interop: stopping %s (pid %s)\n' "$name" "$pid" >&2
    fi
done <"$PIDS"

# Up to 5 s for a clean exit, then SIGKILL to what is left.
for _ in $(seq 1 50); do
    still=()
    for pid in "${live[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then still+=("$pid"); fi
    done
    [ "${#still[@]}" -gt 0 ] || break
    sleep 0.1
done
for pid in "${live[@]}"; do
    if ours "$pid"; then
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
done
rm -f "$PIDS"
printf 'interop: stopped; logs are in %s\n' "$INTEROP_DIR" >&2
