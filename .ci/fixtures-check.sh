#!/usr/bin/env bash
# The committed fixtures that need no PyTorch, regenerated into a temporary folder and compared
# byte for byte with the tree: the fuzz seed corpora (fuzz/make_seeds.py; its `checkpoint`
# seeds come from make_fixtures.py with PyTorch) and the bundled Fashion-MNIST sample
# (tests/fixtures/make_sample.py, from the Debian package). The PyTorch-written expected values
# are held to their scripts by tests/fixture_provenance.rs instead.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

python3 fuzz/make_seeds.py "$tmp/seeds"
diff -r --exclude=checkpoint "$tmp/seeds" fuzz/seeds
echo "fuzz seeds: $(find "$tmp/seeds" -type f | wc -l) files regenerated, identical"

python3 tests/fixtures/make_sample.py test train --out "$tmp/fashion-mnist-sample"
for f in "$tmp"/fashion-mnist-sample/*; do
  cmp "$f" "assets/fashion-mnist-sample/$(basename "$f")"
done
echo "Fashion-MNIST sample: $(ls "$tmp/fashion-mnist-sample" | wc -l) files regenerated, identical"
