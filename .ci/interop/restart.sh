#!/usr/bin/env bash
# Restarts or reloads one server of the lab that setup.sh started, for the soak run
# (tests/soak.rs) and by hand:
#
#   restart.sh reload nghttpx       SIGHUP to nghttpx's master: it starts a new worker and
#                                   the old one sends GOAWAY and drains (a graceful reload)
#   restart.sh restart squid-open   stops squid (SIGTERM; shutdown_lifetime is 0, so the
#                                   tunnels through it are cut) and starts it again with
#                                   the same command line, on the same port
#
# Finds the server by the process id setup.sh recorded in $INTEROP_DIR/pids, and records
# the new one after a restart. Waits (bounded) until the server accepts connections
# again. Exits non-zero if it does not.
set -euo pipefail

INTEROP_DIR="${INTEROP_DIR:-${TMPDIR:-/tmp}/tower-tunnel-interop}"
PIDS="$INTEROP_DIR/pids"
action="${1:?usage: restart.sh reload|restart NAME}"
name="${2:?usage: restart.sh reload|restart NAME}"

log() { printf 'interop: %s\n' "$*" >&2; }

pid="$(awk -v n="$name" '$1 == n { print $2 }' "$PIDS" | tail -n 1)"
[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || {
    log "error: $name is not running (no live pid in $PIDS)"
    exit 1
}

# The port a server listens on, from its own command line or config.
port_of() { # pid
    local cmd
    cmd="$(tr '\0' ' ' <"/proc/$1/cmdline")"
    case "$cmd" in
    *nghttpx*) sed -n 's/.*--frontend=127\.0\.0\.1,\([0-9]*\).*/\1/p' <<<"$cmd" ;;
    *squid*)
        local conf
        conf="$(sed -n 's/.* -f \([^ ]*\).*/\1/p' <<<"$cmd")"
        sed -n 's/^http_port 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$conf" | head -n 1
        ;;
    esac
}

wait_port() { # port
    local i
    for i in $(seq 1 100); do
        if timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

port="$(port_of "$pid")"
[ -n "$port" ] || {
    log "error: no port found for $name (pid $pid)"
    exit 1
}

case "$action" in
reload)
    kill -HUP "$pid"
    log "reloaded $name (SIGHUP to pid $pid)"
    ;;
restart)
    mapfile -d '' cmd <"/proc/$pid/cmdline"
    cwd="$(readlink "/proc/$pid/cwd")"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        sleep 0.2
    fi
    cd "$cwd"
    # As setup.sh does: setsid execs in place (a background job leads no group), so $!
    # is the server, leading its own process group for teardown.sh.
    setsid "${cmd[@]}" >>"$INTEROP_DIR/$name/server.log" 2>&1 </dev/null &
    new=$!
    sed -i "s/^$name $pid\$/$name $new/" "$PIDS"
    log "restarted $name (pid $pid -> $new)"
    ;;
*)
    log "error: unknown action $action"
    exit 1
    ;;
esac

wait_port "$port" || {
    log "error: $name does not accept connections on port $port"
    exit 1
}
