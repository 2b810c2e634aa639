#!/usr/bin/env bash
# Build minigen's documentation site into site/ (open site/index.html; no server needed).
#
#   pip install ".[docs]"        # Sphinx, MyST-NB, furo, sphinx-argparse
#   bash docs/build.sh           # strict: any warning fails (a broken link, a page outside the
#                                # navigation, a docstring reference to nothing, bad reST)
#
# MathJax is vendored from its npm package (needs npm once; cached in docs/_build), so no page loads
# anything from the network.  Every build is from scratch (-E): docstrings change without Sphinx
# noticing.  Extra arguments go to sphinx-build (e.g. -j 2).
set -euo pipefail
cd "$(dirname "$0")/.."

MATHJAX_VERSION=3.2.2
cache="docs/_build/mathjax-$MATHJAX_VERSION"
if [ ! -f "$cache/es5/tex-svg-full.js" ]; then
  if ! command -v npm >/dev/null; then
    echo "docs/build.sh: npm is needed once, to fetch MathJax $MATHJAX_VERSION" \
      "(apt-get install npm)" >&2
    exit 1
  fi
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  # npm checks the tarball against the registry's integrity hash
  (cd "$tmp" && npm pack --silent "mathjax@$MATHJAX_VERSION" >/dev/null)
  tar -xzf "$tmp/mathjax-$MATHJAX_VERSION.tgz" -C "$tmp"
  rm -rf "$cache" && mkdir -p "$cache"
  mv "$tmp/package/es5" "$tmp/package/LICENSE" "$cache/"
fi
# The SVG build with every TeX extension inside (no web fonts); a11y/, ui/ and sre/ are what its
# menu may load later, from the same folder.
rm -rf docs/_static/mathjax && mkdir -p docs/_static/mathjax
cp -r "$cache/es5/tex-svg-full.js" "$cache/es5/a11y" "$cache/es5/ui" "$cache/es5/sre" \
  "$cache/LICENSE" docs/_static/mathjax/

# Built in docs/_build (MyST-NB writes its scratch folder beside the output folder), then moved.
rm -rf site docs/_build/html docs/_build/doctrees docs/_build/jupyter_execute
python -m sphinx -E -W --keep-going -n -q -b html -d docs/_build/doctrees "$@" docs docs/_build/html
mv docs/_build/html site
echo "docs/build.sh: site/index.html ($(du -sh site | cut -f1))"
