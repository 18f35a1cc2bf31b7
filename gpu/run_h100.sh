#!/usr/bin/env bash
# Train the colorization generator under JAX on a GPU machine that has JAX but no TensorFlow,
# and write its float16 weights and a JSON log into a results folder.
#
# Needs Python with JAX (CUDA), numpy, pillow, h5py, scikit-image; Keras is installed from
# wheels in .whl/ (so the GPU machine needs no network):
#
#   1. on any machine with network, from the repository root:
#        python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#          --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
#          --platform manylinux2014_x86_64 -d .whl keras==3.15.1 namex==0.1.0 optree==0.20.0
#   2. put your photo folder at .photos (same relative names give the same train/val split):
#        cp -r PHOTOS .photos
#   3. check on a CPU first (about a minute):
#        KERAS_BACKEND=jax python gpu/train_h100.py --photos .photos --out /tmp/smoke \
#          --minutes 0.2 --width 0.0625 --size 64 --batch 4 --imagenet none
#   4. on the GPU machine:  OUT=RESULTS MINUTES=8 bash gpu/run_h100.sh [train_h100.py args]
#      MINUTES (default 8) is the training wall clock, compilation and validation included;
#      install, decoding and export add well under a minute.
#   5. RESULTS then holds generator.fp16.weights.h5.partNN, generator.json, train_log.json and
#      train.log. Load them anywhere with
#        python -c "from colorize_tf.training.jax_loop import load_generator; g = load_generator('RESULTS')"
#
# What a run logs (train.log, train_log.json): devices, the loader's crops/s alone on this
# host, per phase the first step's time (compilation), images/s and loader wait, losses every
# --log-every steps, validation L1 / PSNR beside the gray baseline every --eval-every seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl
export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1
OUT="${OUT:-runs/h100}"
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 -c "import jax, keras; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__)"
python3 gpu/train_h100.py --photos .photos --out "$OUT" --minutes "${MINUTES:-8}" "$@" 2>&1 \
  | tee "$OUT/train.log"
