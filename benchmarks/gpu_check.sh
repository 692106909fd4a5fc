#!/usr/bin/env bash
# The GPU checks, for a session lent a GPU machine (about 3-4 min on one H200; nothing can be fetched there):
#  1. benchmarks/bench_throughput.py on cuda: the six paper networks' images/s and the paper profile's GPU hours;
#  2. a dry run of the pipeline's transfer grids on cuda through NCLIB_GPUS=1 (nclib.grid.gpu_cluster: one Dask worker
#     pinned to the GPU): linear and fine-tuning runs of two networks, two seeds, on a small Fashion-MNIST split.
# Two steps:
#   bash benchmarks/gpu_check.sh fetch   # here: the wheels the GPU image lacks and Fashion-MNIST -> .cache/gpu-check/
#                                        # (about 35 MB, git-ignored)
#   bash benchmarks/gpu_check.sh         # there, as the device run's command, with carry [".cache/gpu-check"];
#                                        # results (JSON, logs) go to $OUT
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=.cache/gpu-check  # wheels/ and the data root
WHEELS="dask distributed tornado zict tblib locket partd soundfile cffi pycparser"  # not in the GPU image

if [ "${1:-}" = fetch ]; then
  pins=$(.venv/bin/python -m pip freeze | grep -i -E "^($(echo $WHEELS | tr ' ' '|'))==")
  rm -rf $DIR && mkdir -p $DIR/wheels $DIR/FashionMNIST/raw
  # shellcheck disable=SC2086  # one pin a word
  .venv/bin/python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d $DIR/wheels $pins
  cp /usr/share/datasets/fashion-mnist/*.gz $DIR/FashionMNIST/raw/
  ls $DIR/wheels && du -sh $DIR
  exit 0
fi

OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site $DIR/wheels/*.whl
export PYTHONPATH=$PWD:/tmp/site PYTHONUNBUFFERED=1
nvidia-smi -L
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))"

python3 benchmarks/bench_throughput.py --device cuda --batches 20 --native-batches 10 --out "$OUT" \
  2> "$OUT/bench_stderr.log" | tee "$OUT/bench.md"

NCLIB_GPUS=1 NCLIB_DATA_ROOT=$PWD/$DIR NCLIB_CACHE=/tmp/nclib-cache python3 - <<'EOF' 2> "$OUT/dry_run_stderr.log" | tee "$OUT/dry_run.txt"
import time

from nclib.config import load_profile
from nclib.stages.transfer import transfer_runs

profile = load_profile(
    "mini", device="cuda",
    image={"split": {"train": 100, "val": 50, "test": 50}, "zoo": ["digits_cnn", "lite0_random"], "input_size": None},
    train={"epochs": 5, "finetune_epochs": 2, "seeds": [0, 1], "finetune_train": None, "patience": None},
)
for strategy in ("linear", "finetune"):
    start = time.perf_counter()
    done = transfer_runs(profile, "image", strategy)  # no executor: NCLIB_GPUS=1 gives the grid one worker on the GPU
    for config, res in done:
        print(f"{strategy} {config['model']} seed {config['seed']}: device {res['device']}, test accuracy "
              f"{res['test_metric']:.3f}, {res['wall_time_s']:.1f} s")
    assert all(res["device"] == "cuda" for _, res in done), "a run did not use the worker's GPU"
    print(f"{strategy}: {len(done)} runs in {time.perf_counter() - start:.0f} s")
print("dry run OK")
EOF
