#!/bin/sh
# Render the application icon's PNG sizes from resources/app/postroom.svg.
#
# The PNGs are committed, so nothing at run time (nor pip install) needs a renderer; run this
# after editing the SVG. Needs rsvg-convert (Debian: librsvg2-bin).
set -eu

here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
app_dir="$here/../resources/app"

if ! command -v rsvg-convert >/dev/null 2>&1; then
    echo "render-icons: rsvg-convert is missing; install it with: apt-get install -y librsvg2-bin" >&2
    exit 1
fi

for size in 16 24 32 48 64 128 256; do
    rsvg-convert --width "$size" --height "$size" --keep-aspect-ratio \
        --output "$app_dir/postroom-$size.png" "$app_dir/postroom.svg"
done
echo "render-icons: wrote $(ls "$app_dir"/postroom-*.png | wc -l) PNGs to resources/app/"
