"""The TPU/accelerator side of training, without a TPU: the step plan (whole epochs, steps per
execution that divide them), the accelerator check on given hardware facts, and the input
pipeline with and without its host-side XLA Lab conversion."""

import numpy as np
import pytest
import tensorflow as tf
from helpers import smooth_photo
from PIL import Image

from colorize_tf.config import ConfigError, load_config
from colorize_tf.data import pipeline as data
from colorize_tf.data import tfrecords
from colorize_tf.training import distribute
from colorize_tf.training.distribute import Hardware, StrategyError, check_accelerator
from colorize_tf.training.loop import phase_plan

# --- steps per epoch and per execution -----------------------------------------------------


@pytest.mark.parametrize(
    "name, replicas, global_batch, steps, per_execution, leftover",
    [
        # coco_paper's batch is global: 16 whatever the replica count.
        ("coco_paper", 1, 16, 500, 1, 0),
        ("coco_paper", 8, 16, 500, 1, 0),
        # tpu: 16 per core. One chip (v5e-1): 500 steps, and 50 per execution divides them.
        ("tpu", 1, 16, 500, 50, 0),
        # Eight cores (v2-8, v3-8): 8000 / 128 = 62.5. Batches are static (drop_remainder), so an
        # epoch is 62 full steps; the 64 images past them are not lost: the training stream
        # repeats before batching, so they open the next epoch's first batch. 50 per execution
        # would make Keras run 2 x 50 = 100 steps: the largest divisor of 62 at most 50 is 31.
        ("tpu", 8, 128, 62, 31, 64),
    ],
)
def test_8000_training_images_give_whole_epochs(
    name, replicas, global_batch, steps, per_execution, leftover
):
    config = load_config(name)
    assert config.train.pretrain.steps_per_epoch == 0 == config.train.gan.steps_per_epoch
    for phase in ("pretrain", "gan"):
        plan = phase_plan(config, phase, 8000, replicas)
        assert (
            plan.global_batch,
            plan.steps_per_epoch,
            plan.steps_per_execution,
            plan.leftover,
        ) == (global_batch, steps, per_execution, leftover)
        assert plan.steps_per_epoch * plan.global_batch + plan.leftover == 8000
        assert plan.steps_per_epoch % plan.steps_per_execution == 0
        assert plan.steps_per_execution <= config.runtime.steps_per_execution


def test_steps_per_execution_divides_a_resumed_epoch_too():
    config = load_config("tpu")
    # Resumed after 31 of 62 steps: 31 more, in executions of 31.
    assert phase_plan(config, "gan", 8000, 8, resume_offset=31).steps_per_execution == 31
    # After 500 - 150 = 350 of 500 steps... at most 50 dividing gcd(500, 150) = 50: 50.
    assert phase_plan(config, "gan", 8000, 1, resume_offset=150).steps_per_execution == 50
    # An offset the old plan left (e.g. 45 steps): gcd(500, 45) = 5.
    assert phase_plan(config, "gan", 8000, 1, resume_offset=45).steps_per_execution == 5


def test_largest_divisor():
    got = [
        distribute.largest_divisor_at_most(n, limit)
        for n, limit in [(62, 50), (500, 50), (7, 5), (1, 50), (64, 64), (97, 96)]
    ]
    assert got == [31, 50, 1, 1, 64, 1]
    with pytest.raises(ValueError):
        distribute.largest_divisor_at_most(0, 4)


def test_configured_steps_win_and_unknown_sizes_say_what_to_set():
    config = load_config(
        "coco_paper", ["train.gan.steps_per_epoch=30", "runtime.steps_per_execution=8"]
    )
    plan = phase_plan(config, "gan", None, 1)
    assert (plan.steps_per_epoch, plan.steps_per_execution, plan.how) == (30, 6, "configured")
    with pytest.raises(ConfigError, match=r"train.pretrain: .*set train.<phase>.steps_per_epoch"):
        phase_plan(config, "pretrain", None, 1)
    with pytest.raises(ConfigError, match="10 training images do not fill one global batch of 16"):
        phase_plan(config, "pretrain", 10, 1)


def test_global_batch_per_replica_or_split():
    assert distribute.global_batch_size(16, 0, 8) == 16
    assert distribute.global_batch_size(16, 16, 8) == 128
    with pytest.raises(StrategyError, match="data.batch_size=12 does not split across 8 replicas"):
        distribute.global_batch_size(12, 0, 8)


def test_record_sources_count_or_estimate_their_training_images(tmp_path):
    from colorize_tf.data import sources
    from colorize_tf.training.loop import _record_count

    rng = np.random.default_rng(1)
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(9):
        Image.fromarray(smooth_photo(rng, i, 40, 48)).save(photos / f"p{i}.png")
    expected = len(sources.list_images(str(photos), split="train", val_fraction=0.3))
    tfrecords.prepare_tfrecords(
        str(photos),
        str(tmp_path / "shards"),
        num_shards=2,
        short_side=32,
        val_fraction=0.3,
        progress=False,
    )
    shards = f"tfrecord:{tmp_path}/shards/*.tfrecord"
    config = load_config(None, [f"data.source={shards}", "data.val_fraction=0.3"])
    assert 0 < expected < 9 and _record_count(config) == (expected, "counted")
    # A pooled TFDS split cut to 10,000: the hashed split keeps about 80 % for training.
    config = load_config("coco_paper", ["data.source=tfds:coco/2017:train"])
    assert _record_count(config) == (8000, "estimated")
    config = load_config("coco_paper", ["data.source=tfds:coco/2017", "data.max_images=0"])
    assert _record_count(config) == (None, "")


# --- accelerator check ----------------------------------------------------------------------


def test_a_seen_accelerator_or_a_plain_cpu_passes():
    assert check_accelerator(Hardware(tpu_evidence=("/dev/accel0",), tf_tpu_cores=8)) == "tpu"
    assert check_accelerator(Hardware(gpu_evidence=("/dev/nvidia0",), tf_gpus=1)) == "gpu"
    assert check_accelerator(Hardware()) == "cpu"


def test_a_tpu_tensorflow_does_not_use_is_an_error_saying_what_to_do():
    hardware = Hardware(tpu_evidence=("/dev/vfio/0", "TPU_ACCELERATOR_TYPE=v5litepod-1"))
    with pytest.raises(StrategyError) as info:
        check_accelerator(hardware, requested="auto")
    message = str(info.value)
    assert "a TPU is present (/dev/vfio/0, TPU_ACCELERATOR_TYPE=v5litepod-1)" in message
    assert "pip install tensorflow-tpu==" in message and "runtime.tpu=local" in message
    assert "--set runtime.strategy=cpu" in message
    # Asking for the CPU is a choice, not a fallback.
    assert check_accelerator(hardware, requested="cpu") == "cpu"


def test_a_gpu_tensorflow_cannot_see_is_an_error_saying_what_to_do():
    hardware = Hardware(gpu_evidence=("nvidia-smi lists 1 GPU(s): GPU 0: Tesla T4", "/dev/nvidia0"))
    with pytest.raises(
        StrategyError,
        match=r"NVIDIA GPU is present \(nvidia-smi lists 1 GPU.*"
        r"tensorflow\[and-cuda\]",
    ):
        check_accelerator(hardware)
    assert check_accelerator(hardware, requested="cpu") == "cpu"


def test_probing_reads_device_files_and_the_environment(tmp_path, monkeypatch):
    for key in (
        "TPU_NAME",
        "COLAB_TPU_ADDR",
        "TPU_ACCELERATOR_TYPE",
        "KUBE_GOOGLE_CLOUD_TPU_ENDPOINTS",
    ):
        monkeypatch.delenv(key, raising=False)
    dev = tmp_path / "dev"
    (dev / "vfio").mkdir(parents=True)
    (dev / "vfio" / "vfio").touch()  # the VFIO control file alone is no TPU
    assert distribute.probe_hardware(dev=str(dev)).tpu_evidence == ()
    (dev / "accel").mkdir()  # Linux's accel class (an Intel NPU): /dev/accel/accel0
    (dev / "accel" / "accel0").touch()
    assert distribute.probe_hardware(dev=str(dev)).tpu_evidence == ()
    (dev / "vfio" / "0").touch()
    assert distribute.probe_hardware(dev=str(dev)).tpu_evidence == (str(dev / "vfio" / "0"),)
    (dev / "nvidia0").touch()  # VFIO groups beside a GPU: GPU passthrough, not a TPU
    found = distribute.probe_hardware(dev=str(dev))
    assert found.tpu_evidence == () and str(dev / "nvidia0") in found.gpu_evidence
    assert found.tf_gpus == len(tf.config.list_physical_devices("GPU"))
    (dev / "accel0").touch()  # a v4 TPU VM's chip
    monkeypatch.setenv("TPU_ACCELERATOR_TYPE", "v4-8")
    assert distribute.probe_hardware(dev=str(dev)).tpu_evidence == (
        str(dev / "accel0"),
        "TPU_ACCELERATOR_TYPE=v4-8",
    )


def test_cpu_time_estimate_of_the_paper_recipe():
    # coco_paper: 20 + 20 epochs of 500 steps of the full model at batch 16, 256x256.
    seconds = distribute.cpu_time_estimate({"pretrain": 10_000, "gan": 10_000}, 16, 256, 1.0)
    per_step = distribute.CPU_SECONDS_PER_STEP
    assert seconds == pytest.approx(10_000 * (per_step["pretrain"] + per_step["gan"]))
    assert seconds > 3 * 24 * 3600  # days, not hours
    # The quickstart (width 0.25, 128x128, batch 8): 1/8 of the pixels, 1/16 of the width cost.
    quick = distribute.cpu_time_estimate({"pretrain": 400, "gan": 320}, 8, 128, 0.25)
    assert quick == pytest.approx((400 * per_step["pretrain"] + 320 * per_step["gan"]) / 128)


# --- the input pipeline without host-side XLA (TPU hosts) -------------------------------------


def test_training_batches_are_equal_with_and_without_the_xla_lab_conversion(tmp_path):
    """TPU runs build the pipeline with ``jit_lab=False`` (no XLA inside tf.data on a TPU host):
    the uncached path must give the same batches either way, seeded."""
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(smooth_photo(rng, i, 48, 64)).save(tmp_path / f"p{i}.png")

    def batches(jit_lab: bool) -> list[np.ndarray]:
        ds = data.build_dataset(
            str(tmp_path),
            split="all",
            training=True,
            batch_size=2,
            crop_size=32,
            seed=7,
            repeat=True,
            drop_remainder=True,
            cache_limit_bytes=0,
            jit_lab=jit_lab,
        )
        return [np.concatenate([l_norm.numpy(), ab.numpy()], -1) for l_norm, ab in ds.take(3)]

    with_xla, without = batches(True), batches(False)
    assert with_xla[0].shape == (2, 32, 32, 3)
    for a, b in zip(with_xla, without, strict=True):
        np.testing.assert_allclose(a, b, atol=2e-6)  # float32 fusion order only
    assert np.abs(with_xla[0] - with_xla[1]).max() > 0.01  # real, varying crops
