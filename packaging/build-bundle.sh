#!/bin/sh
# Freeze Postroom (console, CLI and service) into a one-folder bundle that needs no Python.
#
#   packaging/build-bundle.sh            # -> dist/postroom/postroom
#
# Uses the project's venv (.venv, made by the README's set-up; PYTHON=... to use another) and
# installs the pinned PyInstaller into it: a build tool, so not among the runtime dependencies.
# Install the result by copying dist/postroom/ to e.g. /opt/postroom and linking
# /opt/postroom/postroom to /usr/local/bin/postroom (the path postroom.service runs).
# The bundle needs the same system libraries as Qt itself (the README's set-up lists them).
set -eu

PYINSTALLER_VERSION=6.22.3
HOOKS_CONTRIB_VERSION=2026.9

here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
root=$(CDPATH= cd -- "$here/.." && pwd)
python=${PYTHON:-"$root/.venv/bin/python"}
work="$root/build/bundle"
dist="$root/dist"
started=$(date +%s)

if [ ! -x "$python" ]; then
    echo "build-bundle: no Python at $python; run the README's set-up first (or set PYTHON)" >&2
    exit 1
fi

"$python" -m pip install --quiet --disable-pip-version-check \
    "pyinstaller==$PYINSTALLER_VERSION" "pyinstaller-hooks-contrib==$HOOKS_CONTRIB_VERSION"

# app.cli loads its subcommands and the console (ui.app) with importlib, which PyInstaller's
# import scan cannot see: collect both packages whole. resources/ is data (icons, help pages).
"$python" -m PyInstaller --noconfirm --clean --log-level WARN \
    --onedir --name postroom \
    --paths "$root" \
    --collect-submodules app --collect-submodules ui \
    --collect-data resources \
    --hidden-import PySide6.QtSvg \
    --exclude-module tkinter \
    --distpath "$dist" --workpath "$work" --specpath "$work" \
    "$here/bundle_entry.py"

bundle="$dist/postroom"
echo "build-bundle: built $bundle in $(($(date +%s) - started)) s, $(du -sh "$bundle" | cut -f1)"

# Smoke test: the frozen command answers --version, with no Python of the build machine in
# reach where this machine lets us hide it (root, util-linux unshare): a fresh mount namespace
# with every Python installation under an empty tmpfs.
expected="postroom $("$python" -c 'import app; print(app.__version__)')"
hide=""
for dir in /usr/lib/python3 /usr/lib/python3.* /usr/local/lib/python3.* \
    "$(dirname "$(dirname "$(readlink -f "$python")")")" "$root/.venv"; do
    [ -d "$dir" ] && hide="$hide mount -t tmpfs none '$dir';"
done
# Run the bundle as a machine without Python would: in its own mount namespace with every
# Python installation hidden where we may (root and util-linux's unshare), else with an empty
# environment. It ends in exec: call it in a subshell, $(...) or ( ), or in the background,
# where $! is then the bundle itself.
run_bundle() {
    if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null 2>&1; then
        exec unshare --mount sh -c "$hide exec env PATH=/usr/bin:/bin $*"
    else
        exec env -i PATH=/usr/bin:/bin HOME="$HOME" sh -c "exec $*"
    fi
}
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null 2>&1; then
    where="with Python hidden"
else
    where="in a clean environment"
fi

answer=$(run_bundle "'$bundle/postroom' --version")
if [ "$answer" != "$expected" ]; then
    echo "build-bundle: $bundle/postroom --version said '$answer', expected '$expected'" >&2
    exit 1
fi
echo "build-bundle: '$bundle/postroom --version' $where: $answer"

# The console starts (offscreen) on a set-up data directory and keeps running for 5 s without
# exiting or printing a traceback; its embedded SMTP service greets on a free port.
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT
port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
(run_bundle "'$bundle/postroom' --data-dir '$data' smtp set listen 127.0.0.1:$port") >/dev/null
run_bundle "QT_QPA_PLATFORM=offscreen '$bundle/postroom' --data-dir '$data'" >"$data/console.log" 2>&1 &
console=$!
sleep 5
if ! kill -0 "$console" 2>/dev/null; then
    wait "$console" || true
    echo "build-bundle: the bundled console exited at once:" >&2
    cat "$data/console.log" >&2
    exit 1
fi
greeting=$("$python" -c "import socket; print(socket.create_connection(('127.0.0.1', $port), 5).recv(200).decode().strip())" 2>&1 || true)
kill "$console"
wait "$console" 2>/dev/null || true
if grep -q Traceback "$data/console.log"; then
    echo "build-bundle: the bundled console failed:" >&2
    cat "$data/console.log" >&2
    exit 1
fi
case "$greeting" in
    220*) ;;
    *) echo "build-bundle: the bundled console's SMTP service did not greet: $greeting" >&2
       exit 1 ;;
esac
echo "build-bundle: the bundled console started offscreen $where; SMTP said: $greeting"
