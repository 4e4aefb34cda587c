#!/usr/bin/env bash
# Screenshots of the built site with headless Chromium, 1400 px wide: the
# index, one API page, the gallery, one example and the benchmarks page.
#
#   apt-get install chromium        # Debian's package
#   make -C docs html
#   bash docs/screenshots.sh        # PNGs in docs/_build/screenshots
#
# Each page is rendered at 1400 x HEIGHT (default 2400) from the files, with
# no network: the site must look right offline (math is served locally).
set -eu
html=${HTML:-docs/_build/html}
out=${1:-docs/_build/screenshots}
height=${HEIGHT:-2400}
mkdir -p "$out"
for page in index \
    generated/sklearn_derand.DerandomizedJLProjector \
    auto_examples/index \
    auto_examples/plot_gset_maxcut \
    benchmarks; do
    chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
        --window-size=1400,"$height" \
        --screenshot="$out/$(echo "$page" | tr / _).png" \
        "file://$(pwd)/$html/$page.html" 2>/dev/null
    echo "$out/$(echo "$page" | tr / _).png"
done
