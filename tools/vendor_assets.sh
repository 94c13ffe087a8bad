#!/usr/bin/env bash
# Vendor the JavaScript the built book needs, so that pages load math and widgets from the
# site itself instead of CDNs (toolchain.md §5):
#   MathJax 3 (es5 build), the ipywidgets HTML manager (dist, no source maps), require.js.
#
# usage: bash tools/vendor_assets.sh DEST      (the Makefile uses DEST=_vendor)
# result: DEST/vendor/{mathjax/, html-manager/, require.js, widgets_setup.js, VERSIONS}
#   (widgets_setup.js is the project's own tools/widgets_setup.js: RequireJS paths for the
#   widget manager's fonts, and MathJax 2 calls of ipywidgets mapped onto MathJax 3)
#
# _config.yml serves DEST through `html_static_path: [_vendor]`. Never use `_static/` at the
# book root: Jupyter Book 1 then adds every .js/.css file under the static paths to every page.
# Idempotent: DEST/vendor is replaced as a whole. Fails loudly if npm fails.
set -euo pipefail

MATHJAX=mathjax@3.2.2
HTML_MANAGER=@jupyter-widgets/html-manager@1.0.6
REQUIREJS=requirejs@2.3.8

if [ $# -ne 1 ] || [ -z "$1" ]; then
  echo "usage: bash $0 DEST" >&2
  exit 2
fi
DEST=$1
command -v npm >/dev/null || { echo "vendor_assets.sh: npm is not installed" >&2; exit 1; }

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

echo "vendor_assets.sh: npm install $MATHJAX $HTML_MANAGER $REQUIREJS" >&2
# --ignore-scripts: nothing of these packages needs to run at install time.
# Fresh cache per run keeps the user's npm cache untouched and the install reproducible.
npm install --prefix "$TMP" --no-audit --no-fund --no-save --ignore-scripts \
  --loglevel=error --cache "$TMP/.npm-cache" \
  "$MATHJAX" "$HTML_MANAGER" "$REQUIREJS" >&2

NM=$TMP/node_modules
for f in "$NM/mathjax/es5/tex-mml-chtml.js" "$NM/@jupyter-widgets/html-manager/dist/embed-amd.js" \
         "$NM/requirejs/require.js"; do
  [ -f "$f" ] || { echo "vendor_assets.sh: $f is missing after npm install" >&2; exit 1; }
done

# Assemble in a staging folder, then swap it in: an interrupted run leaves DEST/vendor intact.
STAGE=$TMP/stage
mkdir -p "$STAGE/mathjax" "$STAGE/html-manager"
cp -R "$NM/mathjax/es5/." "$STAGE/mathjax/"
(cd "$NM/@jupyter-widgets/html-manager/dist" && find . -type f ! -name '*.map' -print0 |
  while IFS= read -r -d '' f; do mkdir -p "$STAGE/html-manager/$(dirname "$f")"; cp "$f" "$STAGE/html-manager/$f"; done)
cp "$NM/requirejs/require.js" "$STAGE/require.js"
cp "$(dirname "$0")/widgets_setup.js" "$STAGE/widgets_setup.js"
# Record the installed versions (read back from the installed package.json files).
for p in mathjax @jupyter-widgets/html-manager requirejs; do
  node -e 'const p=require(process.argv[1]); console.log(p.name + "@" + p.version)' "$NM/$p/package.json"
done > "$STAGE/VERSIONS"

mkdir -p "$DEST"
rm -rf "$DEST/vendor.old"
[ -d "$DEST/vendor" ] && mv "$DEST/vendor" "$DEST/vendor.old"
mv "$STAGE" "$DEST/vendor"
rm -rf "$DEST/vendor.old"
echo "vendor_assets.sh: $(du -sh "$DEST/vendor" | cut -f1) in $DEST/vendor ($(tr '\n' ' ' < "$DEST/vendor/VERSIONS"))" >&2
