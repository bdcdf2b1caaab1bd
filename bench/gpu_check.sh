#!/usr/bin/env bash
# The device check (issue 19) on a GPU machine that reaches no network: installs the wheels that
# bench/gpu_wheels.sh put in bench/.gpu/wheels (the packages the machine lacks, or holds at other
# versions than this project runs with) and runs bench/gpu_check.py on the model files in
# bench/.gpu/smollm2. Ends with the check's one JSON line; arguments go to bench/gpu_check.py.
#
#   bash bench/gpu_check.sh             # sized for well under 10 minutes on one H100/H200 (not yet run on one)
#   bash bench/gpu_check.sh --smoke     # the same script on a tiny model, 2 steps
#
# The wheels go to a --target folder put first on PYTHONPATH, over the machine's own Python (the one
# holding the CUDA build of torch, /opt/torch/.venv where it exists): a venv made from a venv's
# python with --system-site-packages would see the base interpreter's packages, not torch.
set -euo pipefail
cd "$(dirname "$0")/.."
GPU=bench/.gpu
PY=${GPU_CHECK_PYTHON:-}
if [ -z "$PY" ]; then
    if [ -x /opt/torch/.venv/bin/python3 ]; then PY=/opt/torch/.venv/bin/python3; else PY=$(command -v python3); fi
fi
if ! ls "$GPU"/wheels/*.whl >/dev/null 2>&1 || [ ! -f "$GPU/smollm2/tokenizer_config.json" ]; then
    echo "no wheels or model files in $GPU: run 'make gpu-wheels' where there is a network, and carry $GPU" >&2
    exit 2
fi
SITE=${GPU_CHECK_SITE:-/tmp/arbiter-gpu-site}
"$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "$GPU"/wheels/*.whl
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
exec "$PY" bench/gpu_check.py --model-dir "$GPU/smollm2" "$@"
