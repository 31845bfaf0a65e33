#!/usr/bin/env bash
# The Kubernetes manifests in examples/ validated against the API schemas of every Kubernetes
# version kubernetes-validate bundles, strictly (unknown fields are errors). Validated only:
# no cluster runs them here (docs/scale-out.md).
set -euo pipefail
cd "$(dirname "$0")/.."
python=$(bash .ci/ci-venv.sh | tail -1)
bin=$(dirname "$python")
versions=$("$python" - <<'PY'
import os, kubernetes_validate
root = os.path.join(os.path.dirname(kubernetes_validate.__file__), "kubernetes-json-schema")
names = [n for n in os.listdir(root) if n.startswith("v") and n.endswith("-local-strict")]
print(" ".join(sorted((n[1:].split("-")[0] for n in names), key=lambda v: tuple(map(int, v.split("."))))))
PY
)
[ -n "$versions" ] || { echo "k8s check: kubernetes-validate bundles no schemas" >&2; exit 1; }
manifests=(examples/k8s_*.yaml)
for v in $versions; do
    "$bin/kubernetes-validate" --strict --quiet -k "$v" "${manifests[@]}"
done
echo "k8s check: ${manifests[*]} valid for Kubernetes $(echo "$versions" | wc -w) versions ($versions)"
