#!/usr/bin/env bash
# Train the colorization generator under Keras' JAX backend on a GPU machine that has JAX but no
# TensorFlow, and write its weights and a JSON log into a results folder.
#
#   bash gpu/run_jax.sh PHOTOS RESULTS [gpu/train_jax.py options, e.g. --batch 64 --set train.gan.epochs=4]
#
# Needs Python with JAX (CUDA), numpy, pillow, h5py and scikit-image. Keras comes from PyPI, or,
# on a machine without network, from wheels you downloaded elsewhere into a folder named by
# KERAS_WHEELS:
#     python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
#       --platform manylinux2014_x86_64 -d WHEELS keras==3.15.1 namex==0.1.0 optree==0.20.0
# Check on a CPU first (about a minute):
#     python gpu/train_jax.py --photos PHOTOS --out RESULTS --width 0.0625 --size 64 --batch 4 \
#       --imagenet none --set train.pretrain.epochs=1 --set train.gan.epochs=1
# Same relative file names give the same train/val split on every machine.
#
# RESULTS is the training run folder (resume by running again); its model/ preset folder and
# summary.json are the product: `python -m colorize_tf.colorize --model RESULTS/model ...`.
# What a run logs: devices, per epoch the losses, the time per step, and validation (L1, PSNR,
# SSIM, colorfulness) beside the gray baseline, and which epoch the selection keeps.
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: bash gpu/run_jax.sh PHOTOS RESULTS [gpu/train_jax.py options]" >&2
    exit 2
fi
PHOTOS=$1 RESULTS=$2
shift 2
cd "$(dirname "$0")/.."
if ! python3 -c "import keras" 2>/dev/null; then
    if [ -n "${KERAS_WHEELS:-}" ]; then
        python3 -m pip install -q --no-index --no-deps --find-links "$KERAS_WHEELS" keras namex optree
    else
        python3 -m pip install -q keras
    fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" KERAS_BACKEND=jax PYTHONUNBUFFERED=1
mkdir -p "$RESULTS"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 -c "import jax, keras; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__)"
python3 gpu/train_jax.py --photos "$PHOTOS" --out "$RESULTS" "$@" 2>&1 | tee "$RESULTS/train.log"
