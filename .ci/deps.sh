#!/usr/bin/env bash
# Installs the system packages that `--all-features` builds need: the `negotiate`
# feature's libgssapi-sys runs bindgen (libclang) over the Kerberos GSSAPI headers found
# with pkg-config (Debian: libkrb5-dev, pkg-config, libclang-dev). Does nothing when they
# are there already; needs root (apt-get) otherwise.
#
# Also the tools tests/system_settings.rs and tests/system_interop.rs need: gsettings and
# the GNOME proxy schema (libglib2.0-bin, gsettings-desktop-schemas), and the reference
# the system proxy settings are checked against, libproxy's `proxy` with its GSettings and
# KConfig plugins (libproxy-tools, libproxy1-plugin-gsettings, libproxy1-plugin-kconfig),
# whose KDE plugin reads kioslaverc through kreadconfig5 (libkf5config-bin).
#
# And the PAC conformance test's reference, pacparser (Debian: python3-pacparser, for the
# system python3), and curl, the reference of tests/env_rules.rs.
set -euo pipefail

SYSTEM_PROXY_PACKAGES=(libglib2.0-bin gsettings-desktop-schemas libproxy-tools
    libproxy1-plugin-gsettings libproxy1-plugin-kconfig libkf5config-bin)

have_system_proxy_tools() {
    command -v gsettings >/dev/null 2>&1 &&
        command -v proxy >/dev/null 2>&1 &&
        command -v kreadconfig5 >/dev/null 2>&1 &&
        compgen -G '/usr/lib/*/libproxy/*/modules/config_gnome3.so' >/dev/null &&
        compgen -G '/usr/lib/*/libproxy/*/modules/config_kde.so' >/dev/null &&
        [ -e /usr/share/glib-2.0/schemas/org.gnome.system.proxy.gschema.xml ]
}

have_all() {
    command -v pkg-config >/dev/null 2>&1 &&
        pkg-config --exists mit-krb5-gssapi 2>/dev/null &&
        compgen -G '/usr/lib/llvm-*/lib/libclang*.so*' >/dev/null &&
        /usr/bin/python3 -c 'import pacparser' 2>/dev/null &&
        command -v curl >/dev/null 2>&1
}

if have_all && have_system_proxy_tools; then
    echo "deps: libkrb5-dev, pkg-config, libclang, pacparser, curl and the system proxy tools are installed"
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "deps: need libkrb5-dev pkg-config libclang-dev ${SYSTEM_PROXY_PACKAGES[*]} python3-pacparser curl (root and apt-get to install them)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
timeout 300 apt-get update -q
timeout 600 apt-get install -y -q --no-install-recommends libkrb5-dev pkg-config libclang-dev \
    "${SYSTEM_PROXY_PACKAGES[@]}" \
    python3-pacparser curl
have_all || { echo "deps: installed, yet pkg-config or libclang is still missing" >&2; exit 1; }
have_system_proxy_tools ||
    { echo "deps: installed, yet gsettings, proxy or kreadconfig5 is still missing" >&2; exit 1; }
