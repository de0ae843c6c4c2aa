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
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null 2>&1; then
    answer=$(unshare --mount sh -c "$hide PATH=/usr/bin:/bin exec '$bundle/postroom' --version")
    where="with Python hidden"
else
    answer=$(env -i PATH=/usr/bin:/bin "$bundle/postroom" --version)
    where="in a clean environment"
fi
if [ "$answer" != "$expected" ]; then
    echo "build-bundle: $bundle/postroom --version said '$answer', expected '$expected'" >&2
    exit 1
fi
echo "build-bundle: '$bundle/postroom --version' $where: $answer"
