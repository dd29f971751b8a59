#!/usr/bin/env bash
# Starts the real proxies that tests/interop.rs runs against:
#
#   squid-open    squid, CONNECT + forward proxying, no auth
#   squid-basic   squid, Basic proxy auth (basic_ncsa_auth, htpasswd)
#   squid-digest  squid, Digest proxy auth (digest_file_auth, MD5, qop=auth)
#   tinyproxy     tinyproxy, CONNECT to any port + forward proxying
#   socks5        microsocks, no auth
#   socks5-auth   microsocks, username/password (RFC 1929)
#   nghttpx       nghttpx, an HTTP/2 proxy (CONNECT over h2) in front of squid-open
#   origin        python3 -m http.server on loopback, the target of the curl checks
#   squid-ntlm    squid, NTLM proxy auth (ntlm_fake_auth)
#   squid-digest-only  squid, Digest only, Basic credentials refused with 403
#   kdc           MIT krb5kdc for a private realm, a keytab for HTTP/localhost and a
#                 ticket cache for the test user (kinit)
#   squid-negotiate  squid, Negotiate/Kerberos proxy auth (negotiate_kerberos_auth)
#   dante         Dante, SOCKS4 and SOCKS5, no auth
#   ws-echo       a WebSocket echo server over TLS (Debian's python3-websockets)
#
# Installs Debian's packages when a binary is missing (never starting the distro's
# services), renders the configs kept beside this script into $INTEROP_DIR, starts each
# server on 127.0.0.1 on a free port it picks, waits (bounded) until each accepts
# connections, checks the authenticating ones with curl (so a broken lab is told apart
# from a broken crate), and writes $INTEROP_DIR/ports.env for tests/interop.rs. Exits
# non-zero if any server fails to start or its check. `teardown.sh` stops them. See
# README.md beside this file.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
INTEROP_DIR="${INTEROP_DIR:-${TMPDIR:-/tmp}/tower-tunnel-interop}"
# One user for every server that authenticates. The space exercises percent-decoding of
# proxy URLs and each server's own parsing.
PROXY_USER="aladdin"
PROXY_PASS="open sesame"
# The NTLM domain (ntlm_fake_auth takes any), and the Kerberos realm of the loopback KDC.
NTLM_DOMAIN="DOMAIN"
REALM="TOWER-TUNNEL.TEST"
# How long one server may take to accept connections, and how many ports to try.
START_TIMEOUT_SECS=30
START_ATTEMPTS=3

log() { printf 'interop: %s\n' "$*" >&2; }
# On failure, stops whatever this run had started, so nothing is left half up.
die() {
    log "error: $*"
    if [ -s "$INTEROP_DIR/pids" ]; then
        INTEROP_DIR="$INTEROP_DIR" bash "$HERE/teardown.sh" || true
    fi
    exit 1
}

# --- 1. packages ------------------------------------------------------------------------

SQUID_BIN="$(command -v squid || echo /usr/sbin/squid)"
TINYPROXY_BIN="$(command -v tinyproxy || echo /usr/bin/tinyproxy)"
MICROSOCKS_BIN="$(command -v microsocks || echo /usr/bin/microsocks)"
HTPASSWD_BIN="$(command -v htpasswd || echo /usr/bin/htpasswd)"
NGHTTPX_BIN="$(command -v nghttpx || echo /usr/sbin/nghttpx)"
OPENSSL_BIN="$(command -v openssl || echo /usr/bin/openssl)"
DANTED_BIN="$(command -v danted || echo /usr/sbin/danted)"
CURL_BIN="$(command -v curl || echo /usr/bin/curl)"
# Debian's python3, by path: a version manager's shim would hide the process name that
# teardown.sh checks.
PYTHON_BIN=/usr/bin/python3
KDB5_UTIL_BIN=/usr/sbin/kdb5_util
KADMIN_LOCAL_BIN=/usr/sbin/kadmin.local
KRB5KDC_BIN=/usr/sbin/krb5kdc
KINIT_BIN=/usr/bin/kinit
SQUID_LIBEXEC=/usr/lib/squid

missing=()
[ -x "$SQUID_BIN" ] || missing+=(squid)
[ -x "$SQUID_LIBEXEC/basic_ncsa_auth" ] || missing+=(squid)
[ -x "$TINYPROXY_BIN" ] || missing+=(tinyproxy)
[ -x "$MICROSOCKS_BIN" ] || missing+=(microsocks)
[ -x "$HTPASSWD_BIN" ] || missing+=(apache2-utils)
[ -x "$NGHTTPX_BIN" ] || missing+=(nghttp2-proxy)
[ -x "$OPENSSL_BIN" ] || missing+=(openssl)
[ -x "$DANTED_BIN" ] || missing+=(dante-server)
"$PYTHON_BIN" -c 'import websockets' 2>/dev/null || missing+=(python3-websockets)
[ -x "$CURL_BIN" ] || missing+=(curl)
[ -x "$PYTHON_BIN" ] || missing+=(python3)
[ -x "$KDB5_UTIL_BIN" ] && [ -x "$KRB5KDC_BIN" ] || missing+=(krb5-kdc)
# kadmin.local comes with krb5-admin-server on Debian; its kadmind is never started.
[ -x "$KADMIN_LOCAL_BIN" ] || missing+=(krb5-admin-server)
[ -x "$KINIT_BIN" ] || missing+=(krb5-user)

if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    [ "$(id -u)" = 0 ] || die "need root to apt-get install ${missing[*]}"
    command -v apt-get >/dev/null || die "no apt-get: install ${missing[*]} by hand"
    export DEBIAN_FRONTEND=noninteractive
    # Never let the packages start the distro's services (squid would take port 3128):
    # policy-rc.d exit 101 makes invoke-rc.d refuse. Docker images ship one; add it if not.
    made_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    rc=0
    timeout 300 apt-get update -q || rc=$?
    if [ "$rc" = 0 ]; then
        timeout 600 apt-get install -y -q --no-install-recommends \
            squid tinyproxy microsocks apache2-utils nghttp2-proxy openssl curl python3 \
            krb5-kdc krb5-admin-server krb5-user dante-server python3-websockets || rc=$?
    fi
    [ -z "$made_policy" ] || rm -f /usr/sbin/policy-rc.d
    [ "$rc" = 0 ] || die "apt-get failed (exit $rc)"
fi

# --- 2. a clean state directory ---------------------------------------------------------

if [ -f "$INTEROP_DIR/pids" ]; then
    log "stopping servers left by an earlier run in $INTEROP_DIR"
    INTEROP_DIR="$INTEROP_DIR" bash "$HERE/teardown.sh" || true
fi
mkdir -p "$INTEROP_DIR"
# squid and tinyproxy drop root for their own users, which must reach their directories.
chmod 755 "$INTEROP_DIR"
rm -f "$INTEROP_DIR/ports.env" "$INTEROP_DIR/taken-ports"
: >"$INTEROP_DIR/pids"
: >"$INTEROP_DIR/taken-ports"

# --- 3. helpers -------------------------------------------------------------------------

# A port below the kernel's ephemeral range (so no test fixture's port 0 can get it) that
# nothing listens on and that this script has not handed out yet.
pick_port() {
    local low _ p
    low="$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)"
    [ "$low" -gt 21000 ] || low=61000
    for _ in $(seq 1 100); do
        p=$((20000 + RANDOM % (low - 20000)))
        if ! grep -qx "$p" "$INTEROP_DIR/taken-ports" &&
            ! ss -Hltn 2>/dev/null | awk '{print $4}' | grep -qE "[:.]$p\$"; then
            echo "$p" >>"$INTEROP_DIR/taken-ports"
            echo "$p"
            return 0
        fi
    done
    die "found no free port"
}

# Substitutes @PORT@, @DIR@, @SQUID_LIBEXEC@, and the Kerberos lab's @REALM@, @KDC_PORT@
# and @KRB_DIR@ in a template.
render() { # template output port dir
    sed -e "s|@PORT@|$3|g" -e "s|@DIR@|$4|g" -e "s|@SQUID_LIBEXEC@|$SQUID_LIBEXEC|g" \
        -e "s|@REALM@|$REALM|g" -e "s|@KDC_PORT@|${KDC_PORT:-}|g" -e "s|@KRB_DIR@|${KRB_DIR:-}|g" \
        "$1" >"$2"
}

# Waits until 127.0.0.1:port accepts a connection, or the process dies, or time is up.
wait_port() { # pid port
    local i
    for i in $(seq 1 $((START_TIMEOUT_SECS * 10))); do
        kill -0 "$1" 2>/dev/null || return 1
        if timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$2" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

stop_pid() { # pid
    kill -TERM -- "-$1" 2>/dev/null || kill -TERM "$1" 2>/dev/null || true
    local i
    for i in $(seq 1 50); do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL -- "-$1" 2>/dev/null || kill -KILL "$1" 2>/dev/null || true
}

# start NAME PREPARE_FN CMD...: for up to START_ATTEMPTS ports, runs PREPARE_FN with
# $PORT and $DIR set (it writes the config), then CMD (with @PORT@/@DIR@ replaced) in its
# own session, in the background, logging to $DIR/server.log; keeps the first that
# accepts connections. Sets STARTED_PORT.
start() {
    local name="$1" prepare="$2"
    shift 2
    local attempt pid arg
    DIR="$INTEROP_DIR/$name"
    mkdir -p "$DIR"
    for attempt in $(seq 1 "$START_ATTEMPTS"); do
        PORT="$(pick_port)"
        "$prepare"
        local cmd=()
        for arg in "$@"; do
            arg="${arg//@PORT@/$PORT}"
            cmd+=("${arg//@DIR@/$DIR}")
        done
        # setsid: the server leads its own process group, which teardown.sh stops by this
        # id; squid's auth helpers are its children and exit when it does.
        setsid "${cmd[@]}" >"$DIR/server.log" 2>&1 </dev/null &
        pid=$!
        if wait_port "$pid" "$PORT"; then
            echo "$name $pid" >>"$INTEROP_DIR/pids"
            log "$name listening on 127.0.0.1:$PORT (pid $pid)"
            STARTED_PORT="$PORT"
            return 0
        fi
        log "$name did not start on port $PORT (attempt $attempt of $START_ATTEMPTS); its log:"
        tail -n 20 "$DIR/server.log" >&2 || true
        for f in "$DIR"/cache.log "$DIR"/tinyproxy.log; do
            [ ! -f "$f" ] || tail -n 20 "$f" >&2
        done
        stop_pid "$pid"
    done
    die "$name failed to start"
}

as_root() { [ "$(id -u)" = 0 ]; }

# --- 4. the servers ---------------------------------------------------------------------

prepare_squid() { # uses $SQUID_CONF, $PORT, $DIR
    rm -f "$DIR"/*.log "$DIR/squid.pid"
    render "$HERE/squid-common.conf" "$DIR/squid-common.conf" "$PORT" "$DIR"
    render "$HERE/$SQUID_CONF" "$DIR/squid.conf" "$PORT" "$DIR"
    # Squid refuses a config with a max_filedescriptors beyond the ulimit, and a huge
    # ulimit costs memory: keep it small.
    echo "max_filedescriptors 1024" >>"$DIR/squid.conf"
    case "$SQUID_CONF" in
    squid-basic.conf) "$HTPASSWD_BIN" -bc "$DIR/htpasswd" "$PROXY_USER" "$PROXY_PASS" 2>/dev/null ;;
    squid-digest.conf | squid-digest-only.conf)
        printf '%s:%s\n' "$PROXY_USER" "$PROXY_PASS" >"$DIR/digest-passwd"
        ;;
    # The helper runs as squid's user: its own copy of the keytab, chowned below.
    squid-negotiate.conf)
        cp "$KRB_DIR/http.keytab" "$DIR/http.keytab"
        chmod 600 "$DIR/http.keytab"
        ;;
    esac
    # As root, squid runs as Debian's `proxy` user, which must write its logs here.
    if as_root; then chown -R proxy:proxy "$DIR"; fi
    chmod -R go-w "$DIR"
    if ! "$SQUID_BIN" -k parse -f "$DIR/squid.conf" >"$DIR/parse.log" 2>&1; then
        cat "$DIR/parse.log" >&2
        die "squid rejected $SQUID_CONF"
    fi
}

prepare_tinyproxy() {
    rm -f "$DIR"/*.log "$DIR/tinyproxy.pid"
    render "$HERE/tinyproxy.conf" "$DIR/tinyproxy.conf" "$PORT" "$DIR"
    if as_root; then
        printf 'User nobody\nGroup nogroup\n' >>"$DIR/tinyproxy.conf"
        chown -R nobody:nogroup "$DIR"
    fi
}

prepare_nothing() { :; }

prepare_dante() {
    rm -f "$DIR"/*.log
    render "$HERE/danted.conf" "$DIR/danted.conf" "$PORT" "$DIR"
    if as_root; then
        # Server settings go before the rules, or danted refuses the file.
        sed -i 's/^clientmethod: none$/&\nuser.unprivileged: nobody/' "$DIR/danted.conf"
        chown -R nobody:nogroup "$DIR"
    fi
}

# A Kerberos realm of its own: the database, stash, keytabs, logs and ticket cache live in
# $INTEROP_DIR/kdc, and KRB5_CONFIG / KRB5_KDC_PROFILE point every tool at its configs, so
# the machine's /etc/krb5.conf is neither read nor written. The database is made once per
# run (the port is only in the configs, rendered for each attempt).
KRB_DIR="$INTEROP_DIR/kdc"
krb_env() { env KRB5_CONFIG="$KRB_DIR/krb5.conf" KRB5_KDC_PROFILE="$KRB_DIR/kdc.conf" "$@"; }
prepare_kdc() {
    KDC_PORT="$PORT"
    render "$HERE/krb5.conf" "$KRB_DIR/krb5.conf" "$PORT" "$DIR"
    render "$HERE/kdc.conf" "$KRB_DIR/kdc.conf" "$PORT" "$DIR"
    [ -f "$KRB_DIR/principal" ] && return 0
    : >"$KRB_DIR/kadm5.acl"
    # -W: the master key from the non-blocking random source (a test realm).
    krb_env "$KDB5_UTIL_BIN" -r "$REALM" create -s -W -P "interop master key" \
        >"$KRB_DIR/kdb5_util.log" 2>&1 || { cat "$KRB_DIR/kdb5_util.log" >&2; die "kdb5_util create failed"; }
    local q
    for q in "addprinc -pw \"$PROXY_PASS\" $PROXY_USER@$REALM" \
        "addprinc -randkey HTTP/localhost@$REALM" \
        "ktadd -k $KRB_DIR/http.keytab HTTP/localhost@$REALM"; do
        krb_env "$KADMIN_LOCAL_BIN" -r "$REALM" -q "$q" >>"$KRB_DIR/kadmin.log" 2>&1 ||
            { cat "$KRB_DIR/kadmin.log" >&2; die "kadmin.local: $q failed"; }
    done
}

# A user's ticket cache, as `kinit` makes it from the password on standard input.
kinit_user() {
    local ccache="FILE:$KRB_DIR/ccache" i
    for i in 1 2 3; do
        if printf '%s\n' "$PROXY_PASS" |
            krb_env KRB5CCNAME="$ccache" timeout 10 "$KINIT_BIN" "$PROXY_USER@$REALM" \
                >"$KRB_DIR/kinit.log" 2>&1; then
            return 0
        fi
        sleep 1
    done
    cat "$KRB_DIR/kinit.log" "$KRB_DIR/kdc.log" >&2 2>/dev/null
    die "kinit $PROXY_USER@$REALM failed"
}

# The curl checks: each lab server that authenticates must let curl through (or refuse
# it) exactly as configured, before any test of the crate runs against it.
check() { # name expected-status curl-args...
    local name="$1" want="$2" got
    shift 2
    got="$("$CURL_BIN" -sS --max-time 15 -o /dev/null -w '%{http_code}' "$@" 2>"$INTEROP_DIR/curl-check.log")" || true
    if [ "$got" != "$want" ]; then
        log "curl check of $name: got HTTP ${got:-nothing}, want $want; curl -v says:"
        "$CURL_BIN" -sS -v --max-time 15 -o /dev/null "$@" 2>&1 | tail -n 40 >&2 || true
        for f in "$INTEROP_DIR/$name/cache.log" "$KRB_DIR/kdc.log"; do
            [ ! -f "$f" ] || { log "$f:"; tail -n 20 "$f" >&2; }
        done
        die "the lab's $name is broken (curl cannot use it either), not the crate"
    fi
    log "curl check of $name: HTTP $got, as configured"
}

# The user in squid's access log for a request to the origin, within a few seconds.
check_logged() { # name needle
    local i
    for i in $(seq 1 50); do
        grep -qF -- "$2" "$INTEROP_DIR/$1/access.log" 2>/dev/null && return 0
        sleep 0.1
    done
    tail -n 5 "$INTEROP_DIR/$1/access.log" >&2 2>/dev/null || true
    die "the lab's $1 did not log $2"
}

# nghttpx needs a TLS certificate: a throwaway CA and a leaf for localhost and
# 127.0.0.1 (the leaf is not a CA: rustls refuses a CA certificate as a server's).
prepare_nghttpx() {
    [ -f "$DIR/leaf.pem" ] && return 0
    "$OPENSSL_BIN" req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=tower-tunnel interop CA" \
        -keyout "$DIR/ca.key" -out "$DIR/ca.pem" -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign" >"$DIR/openssl.log" 2>&1 || die "openssl CA failed"
    "$OPENSSL_BIN" req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
        -keyout "$DIR/leaf.key" -out "$DIR/leaf.csr" >>"$DIR/openssl.log" 2>&1 || die "openssl CSR failed"
    printf 'basicConstraints=critical,CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' \
        >"$DIR/leaf.ext"
    "$OPENSSL_BIN" x509 -req -in "$DIR/leaf.csr" -CA "$DIR/ca.pem" -CAkey "$DIR/ca.key" \
        -CAcreateserial -days 2 -extfile "$DIR/leaf.ext" -out "$DIR/leaf.pem" \
        >>"$DIR/openssl.log" 2>&1 || die "openssl leaf failed"
}

SQUID_CONF=squid-open.conf
start squid-open prepare_squid "$SQUID_BIN" -N -f @DIR@/squid.conf
SQUID_PORT="$STARTED_PORT"
SQUID_CONF=squid-basic.conf
start squid-basic prepare_squid "$SQUID_BIN" -N -f @DIR@/squid.conf
SQUID_BASIC_PORT="$STARTED_PORT"
SQUID_CONF=squid-digest.conf
start squid-digest prepare_squid "$SQUID_BIN" -N -f @DIR@/squid.conf
SQUID_DIGEST_PORT="$STARTED_PORT"
start tinyproxy prepare_tinyproxy "$TINYPROXY_BIN" -d -c @DIR@/tinyproxy.conf
TINYPROXY_PORT="$STARTED_PORT"
start socks5 prepare_nothing "$MICROSOCKS_BIN" -i 127.0.0.1 -p @PORT@
SOCKS5_PORT="$STARTED_PORT"
start socks5-auth prepare_nothing "$MICROSOCKS_BIN" -i 127.0.0.1 -p @PORT@ \
    -u "$PROXY_USER" -P "$PROXY_PASS"
SOCKS5_AUTH_PORT="$STARTED_PORT"
# An HTTP/2 proxy (CONNECT over h2, RFC 9113 8.5) in front of the open squid. Its default
# of 8 backend connections per host would queue most of 100 concurrent tunnels.
# --conf=/dev/null: Debian's sample /etc/nghttpx/nghttpx.conf adds a frontend on port 3000,
# which a second lab on the same machine cannot bind (nghttpx then exits silently).
start nghttpx prepare_nghttpx "$NGHTTPX_BIN" --conf=/dev/null --http2-proxy --no-ocsp --workers=1 \
    --backend-connections-per-host=256 --frontend="127.0.0.1,@PORT@" \
    --backend="127.0.0.1,$SQUID_PORT" --accesslog-file=@DIR@/access.log \
    --errorlog-file=@DIR@/error.log @DIR@/leaf.key @DIR@/leaf.pem
NGHTTPX_PORT="$STARTED_PORT"
# Dante: a SOCKS4 server (SOCKS5 too), since microsocks speaks SOCKS5 only.
start dante prepare_dante "$DANTED_BIN" -f @DIR@/danted.conf -N 1
DANTE_PORT="$STARTED_PORT"
# A WebSocket echo server over TLS, with nghttpx's certificate (localhost, 127.0.0.1).
start ws-echo prepare_nothing "$PYTHON_BIN" "$HERE/ws_echo.py" @PORT@ \
    "$INTEROP_DIR/nghttpx/leaf.pem" "$INTEROP_DIR/nghttpx/leaf.key"
WS_ECHO_PORT="$STARTED_PORT"

# The origin of the curl checks: a static file server on loopback.
prepare_origin() { printf 'tower-tunnel interop origin\n' >"$DIR/index.html"; }
start origin prepare_origin "$PYTHON_BIN" -m http.server --bind 127.0.0.1 --directory @DIR@ @PORT@
ORIGIN_PORT="$STARTED_PORT"
ORIGIN="http://127.0.0.1:$ORIGIN_PORT/"

SQUID_CONF=squid-ntlm.conf
start squid-ntlm prepare_squid "$SQUID_BIN" -N -f @DIR@/squid.conf
SQUID_NTLM_PORT="$STARTED_PORT"
SQUID_CONF=squid-digest-only.conf
start squid-digest-only prepare_squid "$SQUID_BIN" -N -f @DIR@/squid.conf
SQUID_DIGEST_ONLY_PORT="$STARTED_PORT"

mkdir -p "$KRB_DIR"
start kdc prepare_kdc env KRB5_CONFIG="$KRB_DIR/krb5.conf" KRB5_KDC_PROFILE="$KRB_DIR/kdc.conf" \
    "$KRB5KDC_BIN" -n -r "$REALM"
KDC_PORT="$STARTED_PORT"
kinit_user
# The helper reads the realm's config; no replay cache (a test realm, and squid's user
# need not write one).
SQUID_CONF=squid-negotiate.conf
start squid-negotiate prepare_squid env KRB5_CONFIG="$KRB_DIR/krb5.conf" KRB5RCACHETYPE=none \
    "$SQUID_BIN" -N -f @DIR@/squid.conf
SQUID_NEGOTIATE_PORT="$STARTED_PORT"

check origin 200 "$ORIGIN"
check squid-ntlm 200 --proxy-ntlm -U "$NTLM_DOMAIN\\$PROXY_USER:$PROXY_PASS" \
    -x "http://127.0.0.1:$SQUID_NTLM_PORT" "$ORIGIN"
check_logged squid-ntlm "$PROXY_USER"
check squid-ntlm 407 -x "http://127.0.0.1:$SQUID_NTLM_PORT" "$ORIGIN"
check squid-digest-only 200 --proxy-anyauth -U "$PROXY_USER:$PROXY_PASS" \
    -x "http://127.0.0.1:$SQUID_DIGEST_ONLY_PORT" "$ORIGIN"
check squid-digest-only 403 --proxy-basic -U "$PROXY_USER:$PROXY_PASS" \
    -x "http://127.0.0.1:$SQUID_DIGEST_ONLY_PORT" "$ORIGIN"
KRB5_CONFIG="$KRB_DIR/krb5.conf" KRB5CCNAME="FILE:$KRB_DIR/ccache" \
    check squid-negotiate 200 --proxy-negotiate -U : -x "http://localhost:$SQUID_NEGOTIATE_PORT" "$ORIGIN"
check_logged squid-negotiate "$PROXY_USER@$REALM"

# --- 5. versions and the environment for the tests --------------------------------------

pkg_version() { dpkg-query -W -f '${Version}' "$1" 2>/dev/null || echo unknown; }
log "versions:"
log "  $("$SQUID_BIN" -v | head -n 1) (Debian squid $(pkg_version squid))"
log "  $("$TINYPROXY_BIN" -v 2>&1 | head -n 1) (Debian tinyproxy $(pkg_version tinyproxy))"
log "  microsocks (Debian microsocks $(pkg_version microsocks))"
log "  $("$NGHTTPX_BIN" --version | head -n 1) (Debian nghttp2-proxy $(pkg_version nghttp2-proxy))"
log "  dante (Debian dante-server $(pkg_version dante-server)), python3-websockets $(pkg_version python3-websockets)"
log "  MIT krb5kdc (Debian krb5-kdc $(pkg_version krb5-kdc)), $("$CURL_BIN" --version | head -n 1 | cut -d' ' -f1-2)"

{
    echo "# Written by .ci/interop/setup.sh; read by tests/interop.rs."
    printf 'export TOWER_TUNNEL_INTEROP=1\n'
    printf 'export INTEROP_DIR=%q\n' "$INTEROP_DIR"
    printf 'export SQUID_URL=%q\n' "http://127.0.0.1:$SQUID_PORT"
    printf 'export SQUID_BASIC_URL=%q\n' "http://127.0.0.1:$SQUID_BASIC_PORT"
    printf 'export SQUID_DIGEST_URL=%q\n' "http://127.0.0.1:$SQUID_DIGEST_PORT"
    printf 'export TINYPROXY_URL=%q\n' "http://127.0.0.1:$TINYPROXY_PORT"
    printf 'export SOCKS5_URL=%q\n' "socks5://127.0.0.1:$SOCKS5_PORT"
    printf 'export SOCKS5_AUTH_URL=%q\n' "socks5://127.0.0.1:$SOCKS5_AUTH_PORT"
    printf 'export NGHTTPX_URL=%q\n' "https://localhost:$NGHTTPX_PORT"
    printf 'export NGHTTPX_CA=%q\n' "$INTEROP_DIR/nghttpx/ca.pem"
    printf 'export DANTE_SOCKS4_URL=%q\n' "socks4://127.0.0.1:$DANTE_PORT"
    printf 'export WSS_ECHO_URL=%q\n' "wss://localhost:$WS_ECHO_PORT/echo"
    printf 'export INTEROP_PROXY_USER=%q\n' "$PROXY_USER"
    printf 'export INTEROP_PROXY_PASS=%q\n' "$PROXY_PASS"
    printf 'export ORIGIN_URL=%q\n' "$ORIGIN"
    printf 'export SQUID_NTLM_URL=%q\n' "http://127.0.0.1:$SQUID_NTLM_PORT"
    printf 'export INTEROP_NTLM_DOMAIN=%q\n' "$NTLM_DOMAIN"
    printf 'export SQUID_DIGEST_ONLY_URL=%q\n' "http://127.0.0.1:$SQUID_DIGEST_ONLY_PORT"
    # Named "localhost": the service principal is HTTP/localhost@REALM.
    printf 'export SQUID_NEGOTIATE_URL=%q\n' "http://localhost:$SQUID_NEGOTIATE_PORT"
    printf 'export KRB5_CONFIG=%q\n' "$KRB_DIR/krb5.conf"
    printf 'export KRB5CCNAME=%q\n' "FILE:$KRB_DIR/ccache"
    printf 'export INTEROP_KRB5_REALM=%q\n' "$REALM"
    printf 'export INTEROP_KRB5_PRINCIPAL=%q\n' "$PROXY_USER@$REALM"
    printf 'export INTEROP_KRB5_SERVICE=%q\n' "HTTP/localhost@$REALM"
    printf 'export INTEROP_KDC=%q\n' "127.0.0.1:$KDC_PORT"
} >"$INTEROP_DIR/ports.env"
log "wrote $INTEROP_DIR/ports.env:"
sed 's/^/    /' "$INTEROP_DIR/ports.env" >&2
