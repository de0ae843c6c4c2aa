#!/bin/sh
# Install Postroom's launcher, AppStream metainfo and icons so desktops list it.
#
#   packaging/install-desktop-files.sh                # for this user, into ~/.local
#   sudo packaging/install-desktop-files.sh /usr/local
#   DESTDIR=/tmp/stage packaging/install-desktop-files.sh /usr   # for distribution packages
#
# The launcher runs `postroom`, so that command must be on PATH (a venv's bin/ linked into
# /usr/local/bin, or the frozen bundle from build-bundle.sh linked the same way).
set -eu

app_id=org.postroom.Postroom
here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
resources="$here/../resources/app"
prefix=${1:-"$HOME/.local"}
share="${DESTDIR:-}$prefix/share"

install -D -m 0644 "$here/$app_id.desktop" "$share/applications/$app_id.desktop"
install -D -m 0644 "$here/$app_id.metainfo.xml" "$share/metainfo/$app_id.metainfo.xml"
install -D -m 0644 "$resources/postroom.svg" "$share/icons/hicolor/scalable/apps/$app_id.svg"
for size in 16 24 32 48 64 128 256; do
    install -D -m 0644 "$resources/postroom-$size.png" \
        "$share/icons/hicolor/${size}x${size}/apps/$app_id.png"
done

# Refresh the desktop's caches, unless staging for a package (its install scripts do that).
if [ -z "${DESTDIR:-}" ]; then
    if command -v update-desktop-database >/dev/null 2>&1; then
        update-desktop-database -q "$share/applications" || true
    fi
    if command -v gtk-update-icon-cache >/dev/null 2>&1; then
        gtk-update-icon-cache -q -t "$share/icons/hicolor" || true
    fi
fi
echo "installed $app_id into $share"
