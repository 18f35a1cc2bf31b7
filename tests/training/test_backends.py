"""One recipe under both Keras backends: the same step gives the same numbers under TensorFlow
and JAX; the JAX run trains, resumes after SIGKILL and writes a preset ``colorize`` uses; every
config field is honoured by both backends or refused naming both.

Keras picks its backend once per process, so each backend runs in a subprocess.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import smooth_photo
from PIL import Image

from colorize_tf.config import Config, ConfigError, load_config
from colorize_tf.training import recipe

HERE = Path(__file__).resolve().parent


def _env(backend: str) -> dict:
    return {**os.environ, "KERAS_BACKEND": backend, "CI": "true", "TF_CPP_MIN_LOG_LEVEL": "2"}


# --- the same step under both backends -----------------------------------------------------------


@pytest.fixture(scope="module")
def probes(tmp_path_factory) -> dict:
    """Each backend's losses and weights after one pretrain and one GAN step from one start."""
    root = tmp_path_factory.mktemp("probe")
    found = {}
    for backend in ("tensorflow", "jax"):  # TensorFlow writes the initial weights
        out = root / f"{backend}.npz"
        done = subprocess.run(
            [sys.executable, str(HERE / "backend_probe.py"), str(out), str(root / "init.npz")],
            capture_output=True,
            text=True,
            timeout=600,
            env=_env(backend),
        )
        assert done.returncode == 0, done.stderr[-3000:]
        record = json.loads((root / f"{backend}.npz.json").read_text())
        with np.load(out) as arrays:
            record["arrays"] = [arrays[f"arr_{i}"] for i in range(len(arrays.files))]
        found[backend] = record
    with np.load(root / "init.npz") as init:
        found["init"] = [init[f"w{i}"] for i in range(len(init.files))]
    return found


@pytest.mark.integration
def test_one_pretrain_and_one_gan_step_give_the_same_losses_under_both_backends(probes):
    tf_logs, jax_logs = probes["tensorflow"]["logs"], probes["jax"]["logs"]
    for phase in ("pretrain", "gan"):
        assert tf_logs[phase].keys() == jax_logs[phase].keys()
        for name in tf_logs[phase]:
            # float32 on a CPU, different kernels: losses agree to ~1e-5 relative
            np.testing.assert_allclose(
                jax_logs[phase][name], tf_logs[phase][name], rtol=2e-4, err_msg=f"{phase} {name}"
            )
    assert set(tf_logs["gan"]) == {"d_fake", "d_loss", "d_real", "g_gan", "g_l1", "g_loss"}
    for name in ("l1", "psnr", "ssim", "gray_psnr", "dcf"):
        np.testing.assert_allclose(
            probes["jax"]["logs"]["eval"][name], tf_logs["eval"][name], rtol=2e-3
        )


@pytest.mark.integration
def test_the_updated_weights_agree_under_both_backends(probes):
    """Both networks move the same way under both backends: over all their variables the
    difference of the two updates is under 2 % of the update's norm, and under 1 % of the
    values differ by more than 5e-4 (a quarter of one Adam step: Adam turns float32 rounding of
    a near-zero gradient into a whole step of either sign now and then)."""
    count = probes["tensorflow"]["networks"]
    init = probes["init"]
    tf_after, jax_after = probes["tensorflow"]["arrays"], probes["jax"]["arrays"]
    update = np.concatenate([(tf_after[i] - init[i]).ravel() for i in range(count)])
    apart = np.concatenate([(jax_after[i] - tf_after[i]).ravel() for i in range(count)])
    assert np.linalg.norm(apart) <= 0.02 * np.linalg.norm(update)
    assert np.mean(np.abs(apart) > 5e-4) < 0.01
    moved = sum(not np.array_equal(tf_after[i], init[i]) for i in range(count))
    assert moved > count // 2  # both networks trained


@pytest.mark.integration
def test_the_moving_average_is_updated_inside_the_step_under_both_backends(probes):
    """After a pretrain step and a GAN step with decay d from weights w0 (w1, w2 after each):
    average = d^2 w0 + d (1 - d) w1 + (1 - d) w2, for every generator variable (BatchNorm
    statistics included). A step that ignored ema_decay would leave w0 (or the raw w2)."""
    from backend_probe import EMA_DECAY as d

    for backend in ("tensorflow", "jax"):
        arrays, count = probes[backend]["arrays"], probes[backend]["networks"]
        n = probes[backend]["generator"]
        average = arrays[count : count + n]
        w0, w1, w2 = (arrays[count + n * k : count + n * (k + 1)] for k in (1, 2, 3))
        for i in range(n):
            expected = d * d * w0[i] + d * (1 - d) * w1[i] + (1 - d) * w2[i]
            np.testing.assert_allclose(average[i], expected, atol=1e-5, err_msg=f"{backend} {i}")
        assert sum(not np.allclose(a, b) for a, b in zip(average, w2, strict=True)) > n // 2


@pytest.mark.integration
def test_label_smoothing_reaches_the_discriminator_loss_under_both_backends(probes):
    """d_real of the first GAN step is BCE(D(real), 1 - s) with the initial discriminator."""
    from backend_probe import LABEL_SMOOTHING

    for backend in ("tensorflow", "jax"):
        logs = probes[backend]["logs"]
        expected = logs["expected_d_real"]
        smoothed, plain = expected[str(LABEL_SMOOTHING)], expected["0.0"]
        assert abs(smoothed - plain) > 1e-3  # the test can tell the two apart
        assert logs["gan"]["d_real"][0] == pytest.approx(smoothed, rel=1e-4), backend


# --- the JAX run end to end ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(10):
        Image.fromarray(smooth_photo(rng, i, 96, 112)).save(root / f"photo {i}.png")
    return root


RECIPE = [
    "data.crop_size=64",
    "data.batch_size=2",
    "data.val_batch_size=2",
    "data.max_zoom=1.5",
    "model.width=0.0625",
    "train.sample_images=2",
    "train.pretrain.epochs=2",
    "train.pretrain.steps_per_epoch=6",
    "train.gan.epochs=2",
    "train.gan.steps_per_epoch=3",
    "train.checkpoint_every=2",
    "train.ema_decay=0.9",
    "train.label_smoothing=0.1",
    "train.select_best=true",
    "train.select_metric=psnr_dcf",
]


def _last_step(workdir: Path) -> int:
    records = sorted((workdir / "checkpoints").glob("ckpt-*.json"))
    return json.loads(records[-1].read_text())["step"] if records else 0


@pytest.mark.integration
def test_jax_run_resumes_after_sigkill_selects_by_its_criterion_and_colorize_uses_it(
    tmp_path, photos
):
    workdir = tmp_path / "run"
    cmd = [sys.executable, "-m", "colorize_tf.train", "--backend", "jax", "--workdir", str(workdir)]
    cmd += [a for s in (f"data.source={photos}", *RECIPE) for a in ("--set", s)]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env("tensorflow")
    )
    deadline = time.time() + 400
    while _last_step(workdir) < 4 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = _last_step(workdir)
    assert 4 <= killed_at < 12, f"not killed mid-pretraining (checkpoint at step {killed_at})"

    # --backend wins over KERAS_BACKEND=tensorflow in the environment
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=_env("tensorflow"))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "on jax" in done.stdout
    assert f"resumed from ckpt-{killed_at:09d}" in done.stdout
    assert _last_step(workdir) == 6 * 2 + 3 * 2  # the planned steps, none trained twice

    # Selection: the product is the epoch whose logged score is the highest, by psnr_dcf.
    scores = []
    for phase in ("pretrain", "gan"):
        with open(workdir / f"history_{phase}.csv") as handle:
            for row in csv.DictReader(handle):
                scores.append((float(row["selection_score"]), phase, int(row["epoch"]) + 1))
                expected = float(row["ema_psnr"]) - recipe.DCF_PENALTY_DB * float(row["ema_dcf"])
                assert float(row["selection_score"]) == pytest.approx(expected, abs=1e-4)
    summary = json.loads((workdir / "summary.json").read_text())
    best = max(scores)
    assert (summary["product"]["phase"], summary["product"]["epoch"]) == best[1:]
    assert summary["product"]["ema"] is True and summary["product"]["select_metric"] == "psnr_dcf"
    assert summary["product"]["score"] == pytest.approx(best[0], abs=1e-4)

    # The product is a preset folder that colorize loads (under TensorFlow here).
    model = workdir / "model"
    assert {"config.json", "model.weights.h5", "metadata.json"} <= {p.name for p in model.iterdir()}
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "colorize_tf.colorize", str(photos / "photo 0.png"),
         "--model", str(model), "--out", str(out)],
        capture_output=True, text=True, timeout=300, env=_env("tensorflow"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    (written,) = out.iterdir()
    assert Image.open(written).size == (112, 96)


# --- every field: honoured by both backends, or refused naming both ------------------------------


def _fields(cls, prefix: str = "") -> list[str]:
    names = []
    for field in dataclasses.fields(cls):
        value = getattr(cls(), field.name)
        name = f"{prefix}{field.name}"
        names += _fields(type(value), name + ".") if dataclasses.is_dataclass(value) else [name]
    return names


# What both backends do with each field (TF: tf.data + tf.distribute; JAX: the same tf.data
# where TensorFlow is installed, keras.distribution, the same ColorizationGAN steps). A new
# field fails the walk below until it is entered here or in recipe's backend tables.
HONOURED_BY_BOTH = {
    "name", "data.source", "data.val_source", "data.val_fraction", "data.crop_size",
    "data.batch_size", "data.batch_per_replica", "data.val_batch_size", "data.max_images",
    "data.max_pixels", "data.shuffle_buffer", "data.cache", "data.max_zoom",
    "model.encoder_weights", "model.width", "model.upsample", "model.disc_filters",
    "model.disc_downsamples",
    "train.l1_weight", "train.l1_rebalance", "train.d_learning_rate", "train.label_smoothing",
    "train.ema_decay",
    "train.select_best", "train.select_metric", "train.checkpoint_every", "train.sample_images",
    "train.seed", "runtime.strategy", "runtime.mixed_precision", "runtime.steps_per_execution",
    "runtime.local_checkpoints", "runtime.mirror_minutes",
    *(f"train.{p}.{k}" for p in ("pretrain", "gan")
      for k in ("epochs", "steps_per_epoch", "learning_rate", "beta_1", "beta_2")),
}  # fmt: skip


def test_every_config_field_is_classified_for_both_backends():
    classified = HONOURED_BY_BOTH | set(recipe.BACKEND_ONLY) | set(recipe.SPEED_ONLY)
    fields = set(_fields(Config))
    assert fields - classified == set(), "fields no backend table names"
    assert classified - fields == set(), "tables name fields that do not exist"
    assert not HONOURED_BY_BOTH & (set(recipe.BACKEND_ONLY) | set(recipe.SPEED_ONLY))


@pytest.mark.parametrize(
    "override, backend",
    [("runtime.tpu=local", "jax"), ("runtime.strategy=multi_worker", "jax"),
     ("runtime.mixed_precision=fp16", "jax")],
)  # fmt: skip
def test_a_setting_the_backend_cannot_honour_is_refused_naming_both(override, backend):
    config = load_config(None, [override])
    with pytest.raises(ConfigError) as err:
        recipe.check_backend(config, backend)
    message = str(err.value)
    assert override.split("=")[0] in message and "'jax'" in message and "tensorflow" in message
    recipe.check_backend(config, "tensorflow")  # its own backend takes it


@pytest.mark.parametrize("name", ["quickstart", "photos", "coco_paper"])
@pytest.mark.parametrize("backend", recipe.BACKENDS)
def test_the_packaged_recipes_run_under_both_backends(name, backend):
    recipe.check_backend(load_config(name, ["data.source=samples"]), backend)


def test_the_selection_criteria():
    results = {"psnr": 22.0, "dcf": 10.0}
    assert recipe.selection_score("psnr", results) == 22.0
    assert recipe.selection_score("psnr_dcf", results) == pytest.approx(21.5)
    gray = {"psnr": 20.4, "dcf": 52.0}  # dull but "accurate": PSNR alone prefers it to this
    colorful = {"psnr": 20.3, "dcf": 12.0}
    assert recipe.selection_score("psnr", gray) > recipe.selection_score("psnr", colorful)
    assert recipe.selection_score("psnr_dcf", gray) < recipe.selection_score("psnr_dcf", colorful)
    # psnr_color: psnr_dcf less 1 dB per point of dcf above half the gray baseline's (24 here).
    sharp = {"psnr": 22.6, "dcf": 26.0, "gray_dcf": 48.0}  # 2 points short of real color
    vivid = {"psnr": 22.3, "dcf": 23.0, "gray_dcf": 48.0}
    assert recipe.selection_score("psnr_color", vivid) == pytest.approx(22.3 - 0.05 * 23.0)
    assert recipe.selection_score("psnr_color", sharp) == pytest.approx(22.6 - 1.3 - 2.0)
    assert recipe.selection_score("psnr_dcf", sharp) > recipe.selection_score("psnr_dcf", vivid)
    assert recipe.selection_score("psnr_color", sharp) < recipe.selection_score("psnr_color", vivid)
    with pytest.raises(ValueError, match="unknown selection criterion 'ssim'"):
        recipe.selection_score("ssim", results)


def test_a_resumed_run_rescores_the_stored_best_by_its_own_criterion(tmp_path):
    from colorize_tf.training.callbacks import EpochSelection

    metrics = {"psnr": 22.6, "dcf": 26.0, "gray_dcf": 48.0}
    record = {"criterion": "psnr_dcf", "score": 21.3, "metrics": metrics}
    (tmp_path / "metadata.json").write_text(json.dumps({"selection": record}))
    same = EpochSelection(None, lambda: {}, "psnr_dcf", str(tmp_path))
    changed = EpochSelection(None, lambda: {}, "psnr_color", str(tmp_path))
    assert same._best_score == pytest.approx(21.3)
    assert changed._best_score == pytest.approx(22.6 - 1.3 - 2.0)


NO_TENSORFLOW = """
import runpy, sys
class NoTensorFlow:  # a JAX machine without TensorFlow: importing it fails
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "tensorflow":
            raise ImportError("No module named 'tensorflow'")
sys.meta_path.insert(0, NoTensorFlow())
sys.argv = ["train"] + sys.argv[1:]
runpy.run_module("colorize_tf.train", run_name="__main__")
"""


@pytest.mark.integration
def test_jax_trains_where_tensorflow_is_absent_through_the_numpy_pipeline(tmp_path, photos):
    workdir = tmp_path / "run"
    sets = [f"data.source={photos}", *RECIPE[:6], "train.pretrain.epochs=1",
            "train.pretrain.steps_per_epoch=2", "train.gan.epochs=1", "train.gan.steps_per_epoch=2",
            "train.ema_decay=0.9", "train.l1_rebalance=0.5"]  # fmt: skip
    cmd = [sys.executable, "-c", NO_TENSORFLOW, "--backend", "jax", "--workdir", str(workdir)]
    done = subprocess.run(
        cmd + [a for s in sets for a in ("--set", s)],
        capture_output=True, text=True, timeout=900, env=_env("jax"),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "TensorFlow is not installed: the numpy input pipeline" in done.stdout
    assert "rebalanced L1 (strength 0.5)" in done.stdout  # its histogram from the numpy crops
    assert _last_step(workdir) == 4
    summary = json.loads((workdir / "summary.json").read_text())
    assert np.isfinite(summary["val"]["psnr"]) and summary["val"]["gray_psnr"] > 0
    assert (workdir / "model" / "model.weights.h5").is_file()
    assert not (workdir / "logs").exists()  # TensorBoard needs TensorFlow: not written
