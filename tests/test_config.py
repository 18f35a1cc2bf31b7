"""Config resolution: defaults -> file -> overrides, validation messages, the dumped run config."""

import pytest
import yaml

from colorize_tf.config import CONFIG_DIR, Config, ConfigError, load_config


def test_default_is_quickstart_and_every_packaged_config_loads():
    assert load_config().name == "quickstart"
    names = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
    assert names == ["coco_paper", "photos", "quickstart", "tpu"]
    for name in names:
        assert isinstance(load_config(name), Config)


def test_order_is_defaults_then_file_then_overrides(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("data: {batch_size: 4}\ntrain: {gan: {epochs: 7}}\n")
    config = load_config(str(path), ["train.gan.epochs=2", "model.width=0.5"])
    assert config.data.batch_size == 4  # from the file
    assert config.train.gan.epochs == 2  # override beats file
    assert config.model.width == 0.5  # int/float read as YAML
    assert config.train.gan.learning_rate == 2e-4  # untouched default
    # A section given partly keeps the phase's own defaults (pretrain's lr is 1e-4, not 2e-4).
    assert load_config(str(path), ["train.pretrain.epochs=1"]).train.pretrain.learning_rate == 1e-4


def test_tpu_config_builds_on_coco_paper():
    config = load_config("tpu")
    assert config.model.encoder_weights == "imagenet"  # inherited from coco_paper
    assert config.runtime.strategy == "tpu" and config.runtime.mixed_precision == "bf16"
    assert config.runtime.steps_per_execution > 1 and config.data.batch_per_replica == 16
    assert not config.runtime.jit_compile  # a TPUStrategy compiles with XLA by itself


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("train.gan.epoch=3", "unknown config key(s) ['epoch'] in section 'train.gan'"),
        ("dataa.source=x", "unknown config key(s) ['dataa'] at the top level"),
        ("data.crop_size=100", "data.crop_size must be a positive multiple of 32, got 100"),
        ("runtime.strategy=gpu", "runtime.strategy: 'gpu' is not one of"),
        ("model.width=abc", "model.width: expected float, got 'abc'"),
        ("data.batch_size=true", "data.batch_size: expected int, got True"),
        ("no_equals_sign", "must look like key.sub=value"),
    ],
)
def test_bad_values_name_the_key(override, fragment):
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    assert fragment in str(info.value)


def test_missing_config_names_the_alternatives():
    with pytest.raises(ConfigError, match=r"neither a file nor a packaged config \['coco_paper'"):
        load_config("nope")


def test_dump_round_trips(tmp_path):
    config = load_config("coco_paper", ["train.l1_weight=50"])
    dumped = config.dump(tmp_path / "config.yaml")
    assert yaml.safe_load(dumped.read_text())["train"]["l1_weight"] == 50.0
    assert load_config(str(dumped)) == config


@pytest.mark.parametrize("name", ["coco_paper", "tpu"])
def test_paper_configs_take_their_epoch_length_from_the_data(name):
    """No hard-coded steps_per_epoch: it follows the training images and the global batch
    (tests/training/test_distribute.py pins 8,000 images on 1 and 8 replicas)."""
    from colorize_tf.training.loop import phase_plan

    config = load_config(name)
    for phase in ("pretrain", "gan"):
        assert getattr(config.train, phase).steps_per_epoch == 0
        assert phase_plan(config, phase, 8000, 1).steps_per_epoch == 500
