#!/usr/bin/env bash
# The Python tools CI's checks use, in a virtual environment outside the clone (made once,
# then reused): kubernetes-validate (.ci/k8s-check.sh) and pyarrow (.ci/slurm-check.sh
# compares records files with it). Prints the environment's python on its last line.
set -euo pipefail
venv=${BLOCKDROP_CI_VENV:-$HOME/.cache/blockdrop-ci-venv}
if ! "$venv/bin/python" -c "import pyarrow, kubernetes_validate" 2>/dev/null; then
    echo "making the CI tools environment in $venv" >&2
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet "kubernetes-validate==1.*" "pyarrow>=15" >&2
fi
echo "$venv/bin/python"
