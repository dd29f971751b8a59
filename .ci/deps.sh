#!/usr/bin/env bash
# Installs the system packages that `--all-features` builds need: the `negotiate`
# feature's libgssapi-sys runs bindgen (libclang) over the Kerberos GSSAPI headers found
# with pkg-config (Debian: libkrb5-dev, pkg-config, libclang-dev). Also the PAC
# conformance test's reference, pacparser (Debian: python3-pacparser, for the system
# python3). Does nothing when they are there already; needs root (apt-get) otherwise.
set -euo pipefail

have_all() {
    command -v pkg-config >/dev/null 2>&1 &&
        pkg-config --exists mit-krb5-gssapi 2>/dev/null &&
        compgen -G '/usr/lib/llvm-*/lib/libclang*.so*' >/dev/null &&
        /usr/bin/python3 -c 'import pacparser' 2>/dev/null
}

if have_all; then
    echo "deps: libkrb5-dev, pkg-config, libclang and python3-pacparser are installed"
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "deps: need libkrb5-dev pkg-config libclang-dev python3-pacparser (root and apt-get to install them)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
timeout 300 apt-get update -q
timeout 600 apt-get install -y -q --no-install-recommends libkrb5-dev pkg-config libclang-dev \
    python3-pacparser
have_all || { echo "deps: installed, yet pkg-config, libclang or pacparser is still missing" >&2; exit 1; }
