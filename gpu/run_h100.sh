#!/usr/bin/env bash
# Train the colorization generator under JAX on the device machine (one H100) in ONE call,
# and bring back its float16 weights and a JSON log.
#
# The machine has Python 3.12 with JAX (CUDA), PyTorch, torchvision, timm, numpy, pillow,
# h5py, ml-dtypes, absl-py, rich, packaging, pyyaml, scikit-image; no TensorFlow, no Keras,
# and no network. Keras travels as a wheel with the two of its requirements the machine lacks
# (keras Requires-Dist: absl-py numpy rich namex h5py optree ml-dtypes packaging).
#
# Steps for the session that runs it (from the repository root, on the developer machine):
#
#   1. wheels (.whl/ is git-ignored by .gitignore):
#        python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#          --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
#          --platform manylinux2014_x86_64 -d .whl keras==3.15.1 namex==0.1.0 optree==0.20.0
#   2. photos, in a folder git ignores locally (same relative names => same split):
#        echo /.photos/ >> .git/info/exclude && cp -r PHOTOS .photos   (PHOTOS: your photo folder)
#   3. check the CPU smoke first (about a minute, no device time):
#        KERAS_BACKEND=jax python gpu/train_h100.py --photos .photos --out /tmp/smoke \
#          --minutes 0.2 --width 0.0625 --size 64 --batch 4 --imagenet none
#   4. one device call:  run(command="bash gpu/run_h100.sh", carry=[".whl", ".photos"],
#                            timeout_s=600)
#      MINUTES (default 8) is the training wall clock, compilation and validation included;
#      install, decoding and export add well under a minute. Training time plus ~1.5 min must
#      stay inside timeout_s. Extra arguments go to gpu/train_h100.py (e.g. --batch 16).
#   5. the files come back under files_at: generator.fp16.weights.h5.part00..03 (~59 MiB in
#      all at width 1.0), generator.json, train_log.json, train.log. Load them anywhere with
#        python -c "from colorize_tf.jax_train import load_generator; g = load_generator('DIR')"
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
