"""The generator, the encoder, the discriminator and encoder weight loading.

Shapes, serialization and weight loading use tiny widths; the parameter counts build the
full-size models (cheap: building allocates weights but runs nothing). The keras-hub tests
run only where keras-hub (the ``[hub]`` extra) is installed, the JAX one only where JAX is.
"""

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import randomize_batch_norm

from colorize_tf.models import (
    PatchDiscriminator,
    ResNet18Encoder,
    UNetGenerator,
    build_discriminator,
    build_generator,
    count_params,
    load_encoder_weights,
    patch_output_size,
    patch_receptive_field,
    pretrained,
    transfer_encoder_weights,
)

TINY_GENERATOR = dict(encoder_filters=8, decoder_filters=(32, 16, 16, 8, 8))
TINY_ENCODER = dict(stem_filters=8, stage_filters=(8, 16, 32, 64))
PYRAMID_LEVELS = ("P1", "P2", "P3", "P4", "P5")
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _seeded():
    keras.utils.set_random_seed(0)  # reproducible random weights


def _assert_close_to_scale(got: np.ndarray, expected: np.ndarray, rel: float = 1e-5) -> None:
    """Equal up to float32 reassociation: errors bounded relative to the map's largest value.

    Measured for the summed-stem check: max error / max value <= ~1.2e-6 over 6 random draws
    (the absolute error grows with the activations, ~1e-4 on P5 values ~500).
    """
    np.testing.assert_allclose(got, expected, rtol=0, atol=rel * np.abs(expected).max())


def _l_batch(size: int, batch: int = 2, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (batch, size, size, 1)).astype("float32")


def _pyramid(encoder: keras.Model, x: np.ndarray) -> dict:
    outputs = keras.Model(encoder.input, encoder.pyramid_outputs)(x)
    return {k: keras.ops.convert_to_numpy(v) for k, v in outputs.items()}


# --- shapes ----------------------------------------------------------------------------------


def test_generator_any_multiple_of_32_gives_ab_in_range():
    generator = build_generator(**TINY_GENERATOR)
    assert generator.input_shape == (None, None, None, 1)
    for size in (64, 96):
        ab = generator(_l_batch(size))
        assert tuple(ab.shape) == (2, size, size, 2)
        assert ab.dtype == "float32"
        ab = keras.ops.convert_to_numpy(ab)
        assert np.all(np.abs(ab) <= 1.0) and np.std(ab) > 0


def test_generator_builds_with_a_static_size():
    generator = build_generator(image_size=np.int64(64), **TINY_GENERATOR)  # e.g. from NumPy
    assert generator.input_shape == (None, 64, 64, 1)
    json.dumps(generator.get_config())
    assert generator.output_shape == (None, 64, 64, 2)
    assert tuple(generator(_l_batch(64, batch=1)).shape) == (1, 64, 64, 2)


def test_encoder_exposes_the_feature_pyramid_by_name():
    encoder = ResNet18Encoder(**TINY_ENCODER)
    features = _pyramid(encoder, _l_batch(64, batch=1))
    assert {k: v.shape for k, v in features.items()} == {
        "P1": (1, 32, 32, 8),
        "P2": (1, 16, 16, 8),
        "P3": (1, 8, 8, 16),
        "P4": (1, 4, 4, 32),
        "P5": (1, 2, 2, 64),
    }
    assert encoder.output_shape == (None, None, None, 64)


def test_discriminator_gives_30x30_logits_at_256():
    discriminator = build_discriminator(base_filters=8)
    pair = np.random.default_rng(0).uniform(-1, 1, (2, 256, 256, 3)).astype("float32")
    logits = discriminator(pair)
    assert tuple(logits.shape) == (2, 30, 30, 1)
    assert logits.dtype == "float32"


@pytest.mark.parametrize(
    "size, num_downsamples", [(24, 3), (64, 3), (100, 3), (128, 3), (64, 2), (128, 4)]
)
def test_discriminator_output_size_formula(size, num_downsamples):
    expected = size // 2**num_downsamples - 2  # floor(S / 2**n) - 2
    assert patch_output_size(size, num_downsamples) == expected
    discriminator = PatchDiscriminator(base_filters=4, num_downsamples=num_downsamples)
    logits = discriminator(np.zeros((1, size, size, 3), "float32"))
    assert tuple(logits.shape) == (1, expected, expected, 1)


def test_discriminator_receptive_field_is_70x70():
    # Arithmetic: r <- (r - 1) * stride + 4 over strides (1, 1, 2, 2, 2), logits first.
    assert patch_receptive_field(3) == 70
    assert patch_receptive_field(2) == 34
    # Measured: the input pixels that one interior logit depends on span exactly 70x70.
    discriminator = PatchDiscriminator(base_filters=4)
    randomize_batch_norm(discriminator)
    pair = tf.constant(np.random.default_rng(1).uniform(-1, 1, (1, 128, 128, 3)), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(pair)
        logit = discriminator(pair)[0, 7, 7, 0]
    influence = np.abs(tape.gradient(logit, pair).numpy()[0]).sum(axis=-1)  # (128, 128)
    rows, cols = np.nonzero(influence)
    assert rows.max() - rows.min() + 1 == 70
    assert cols.max() - cols.min() + 1 == 70


# --- parameter counts (full size) ------------------------------------------------------------


def test_full_size_parameter_counts():
    # torchvision's ResNet-18 without fc has 11,176,512 parameters at 3 input channels; the
    # 1-channel stem has 2 * 7 * 7 * 64 = 6,272 fewer. Non-trainable: BN moving statistics.
    assert tuple(count_params(ResNet18Encoder(image_shape=(None, None, 3)))) == (11_176_512, 9_600)
    assert tuple(count_params(ResNet18Encoder())) == (11_176_512 - 6_272, 9_600)
    generator = build_generator()
    assert tuple(count_params(generator)) == (31_095_074, 17_280)
    assert tuple(count_params(generator.encoder)) == (11_170_240, 9_600)
    # The reference fastai DynamicUnet(resnet18, n_in=1, n_out=2, 256x256): 31,099,672.
    assert abs(count_params(generator).trainable / 31_099_672 - 1) < 1e-3
    # The reference PatchDiscriminator(input_c=3, num_filters=64, n_down=3): 2,765,633.
    assert tuple(count_params(build_discriminator())) == (2_765_633, 1_792)


# --- serialization ---------------------------------------------------------------------------


def _tiny_models() -> dict:
    return {
        "encoder": ResNet18Encoder(**TINY_ENCODER),
        "generator": build_generator(**TINY_GENERATOR),
        "discriminator": build_discriminator(image_size=64, base_filters=8),
    }


@pytest.mark.parametrize("kind", ["encoder", "generator", "discriminator"])
def test_config_round_trip_gives_identical_json(kind):
    model = _tiny_models()[kind]
    config = model.get_config()
    revived = type(model).from_config(json.loads(json.dumps(config)))
    assert type(revived) is type(model)
    assert json.dumps(revived.get_config(), sort_keys=True) == json.dumps(config, sort_keys=True)
    assert [w.shape for w in revived.weights] == [w.shape for w in model.weights]


def test_keras_save_load_gives_identical_outputs(tmp_path):
    generator = build_generator(**TINY_GENERATOR)
    discriminator = build_discriminator(base_filters=8)
    randomize_batch_norm(generator.encoder)
    l_norm = _l_batch(64)
    pair = np.concatenate([l_norm, _l_batch(64, seed=1), _l_batch(64, seed=2)], axis=-1)
    for model, x in ((generator, l_norm), (discriminator, pair)):
        path = tmp_path / f"{model.name}.keras"
        model.save(path)
        loaded = keras.models.load_model(path)
        assert type(loaded) is type(model)
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(model(x))
        )
    assert isinstance(loaded, PatchDiscriminator)


@pytest.fixture
def mixed_bfloat16():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def test_mixed_precision_outputs_float32(mixed_bfloat16):
    generator = build_generator(**TINY_GENERATOR)
    discriminator = build_discriminator(base_filters=8)
    assert generator.get_layer("decoder0_1_conv").compute_dtype == "bfloat16"
    assert generator.encoder.get_layer("conv1_conv").compute_dtype == "bfloat16"
    assert discriminator.get_layer("block1_conv").compute_dtype == "bfloat16"
    ab = generator(_l_batch(64))
    logits = discriminator(np.zeros((2, 64, 64, 3), "float32"))
    assert ab.dtype == "float32" and logits.dtype == "float32"
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(ab)))
    assert np.all(np.abs(keras.ops.convert_to_numpy(ab)) <= 1.0)


# --- encoder weights ------------------------------------------------------------------------


def test_stem_adaptation_sums_rgb_kernels(tmp_path):
    rgb_encoder = ResNet18Encoder(image_shape=(None, None, 3), **TINY_ENCODER)
    randomize_batch_norm(rgb_encoder)
    path = tmp_path / "rgb_encoder.weights.h5"
    rgb_encoder.save_weights(path)

    gray_encoder = ResNet18Encoder(**TINY_ENCODER)
    l_norm = _l_batch(64)
    expected = _pyramid(rgb_encoder, np.repeat(l_norm, 3, axis=-1))
    assert not np.allclose(_pyramid(gray_encoder, l_norm)["P5"], expected["P5"], atol=1e-3)

    load_encoder_weights(gray_encoder, str(path))
    rgb_kernel = rgb_encoder.get_layer("conv1_conv").get_weights()[0]  # (7, 7, 3, 8)
    gray_kernel = gray_encoder.get_layer("conv1_conv").get_weights()[0]  # (7, 7, 1, 8)
    np.testing.assert_array_equal(gray_kernel, rgb_kernel.sum(axis=2, keepdims=True))
    got = _pyramid(gray_encoder, l_norm)
    for level in PYRAMID_LEVELS:
        _assert_close_to_scale(got[level], expected[level])


def test_local_weights_file_loads_into_the_generator_encoder(tmp_path):
    source = ResNet18Encoder(**TINY_ENCODER)
    randomize_batch_norm(source)
    path = tmp_path / "encoder.weights.h5"
    source.save_weights(path)
    generator = build_generator(encoder_weights=str(path), **TINY_GENERATOR)
    for expected, got in zip(source.weights, generator.encoder.weights, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(got), expected.numpy())


def test_weights_of_other_widths_are_refused(tmp_path):
    path = tmp_path / "wide.weights.h5"
    ResNet18Encoder(stem_filters=16, stage_filters=(16, 16, 16, 16)).save_weights(path)
    with pytest.raises(ValueError, match=r"stem_filters=8, stage_filters=\[8, 16, 32, 64\]"):
        load_encoder_weights(ResNet18Encoder(**TINY_ENCODER), str(path))
    with pytest.raises(ValueError, match="stack1_block0_1_conv: target shapes"):
        transfer_encoder_weights(
            ResNet18Encoder(stem_filters=8, stage_filters=(8, 8, 32, 64)),
            ResNet18Encoder(**TINY_ENCODER),
        )


def test_imagenet_offline_fails_fast_naming_the_alternatives(tmp_path, monkeypatch):
    # An empty kagglehub cache and a host that cannot resolve (.invalid is reserved), so the
    # test is the same offline and online and never downloads.
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path))
    monkeypatch.setattr(pretrained, "IMAGENET_CHECK_URL", "https://colorize-tf-check.invalid")
    encoder = ResNet18Encoder()
    start = time.monotonic()
    with pytest.raises(ConnectionError) as error:
        load_encoder_weights(encoder, "imagenet")
    assert time.monotonic() - start < pretrained.REACHABILITY_TIMEOUT_S + 1.0
    for alternative in ("encoder_weights='none'", "keras-hub preset directory", ".weights.h5"):
        assert alternative in str(error.value)


def test_bad_arguments_fail_early_repeating_what_was_received():
    with pytest.raises(ValueError, match=r"multiples of 32.*\(100, 100, 1\)"):
        build_generator(image_size=100, **TINY_GENERATOR)
    with pytest.raises(ValueError, match=r"decoder_filters=\[8, 8\]"):
        build_generator(encoder_filters=8, decoder_filters=[8, 8])
    with pytest.raises(ValueError, match="encoder_weights='imagenett'"):
        build_generator(encoder_weights="imagenett", **TINY_GENERATOR)
    with pytest.raises(ValueError, match="encoder_filters=8"):
        build_generator(encoder_weights="imagenet", **TINY_GENERATOR)
    with pytest.raises(ValueError, match=r"stem_filters=32, stage_filters=\(64,"):
        ResNet18Encoder(stem_filters=32)
    with pytest.raises(ValueError, match=r"image_shape=\(64, 64\)"):
        ResNet18Encoder(image_shape=(64, 64))
    with pytest.raises(ValueError, match=r"stage_filters=\(8, 16, 0, 64\)"):
        ResNet18Encoder(stem_filters=8, stage_filters=(8, 16, 0, 64))
    with pytest.raises(ValueError, match=r">= 24.*\(16, 16, 3\)"):
        build_discriminator(image_size=16)
    with pytest.raises(ValueError, match="encoder=.*Conv2D"):
        UNetGenerator(encoder=keras.layers.Conv2D(1, 1))


# --- keras-hub (optional [hub] extra) --------------------------------------------------------


def _hub_resnet18(stage_filters, **kwargs):
    """keras-hub's ResNet-18 layout (basic blocks, 2 per stage) with the given stage widths."""
    keras_hub = pytest.importorskip("keras_hub")
    return keras_hub.models.ResNetBackbone(
        input_conv_filters=[64],
        input_conv_kernel_sizes=[7],
        stackwise_num_filters=list(stage_filters),
        stackwise_num_blocks=[2, 2, 2, 2],
        stackwise_num_strides=[1, 2, 2, 2],
        block_type="basic_block",
        **kwargs,
    )


def _tiny_hub_backbone():
    # keras-hub requires 64 filters in the first stage; the rest stays tiny.
    backbone = _hub_resnet18([64, 8, 16, 32], image_shape=(None, None, 3))
    randomize_batch_norm(backbone)
    return backbone


def test_keras_hub_resnet_maps_onto_our_encoder_exactly():
    backbone = _tiny_hub_backbone()
    encoder = ResNet18Encoder(
        image_shape=(None, None, 3), stem_filters=64, stage_filters=(64, 8, 16, 32)
    )
    transfer_encoder_weights(backbone, encoder)
    rgb = np.random.default_rng(0).uniform(-1, 1, (2, 64, 64, 3)).astype("float32")
    hub_features = keras.Model(backbone.input, backbone.pyramid_outputs)(rgb)
    ours = _pyramid(encoder, rgb)
    for level in ("P2", "P3", "P4", "P5"):
        _assert_close_to_scale(ours[level], hub_features[level].numpy())


def test_local_keras_hub_preset_loads_with_an_adapted_stem(tmp_path):
    backbone = _tiny_hub_backbone()
    backbone.save_to_preset(str(tmp_path / "preset"))
    encoder = ResNet18Encoder(stem_filters=64, stage_filters=(64, 8, 16, 32))
    load_encoder_weights(encoder, str(tmp_path / "preset"))
    l_norm = _l_batch(64)
    expected = backbone(np.repeat(l_norm, 3, axis=-1)).numpy()  # P5 on gray RGB
    _assert_close_to_scale(_pyramid(encoder, l_norm)["P5"], expected)


def test_imagenet_uses_the_kagglehub_cache_offline(tmp_path, monkeypatch):
    # A full-size ResNet-18 preset (random weights) where kagglehub caches resnet_18_imagenet.
    backbone = _hub_resnet18([64, 128, 256, 512])
    backbone.save_to_preset(str(tmp_path.joinpath(*pretrained.IMAGENET_KAGGLE_PATH, "3")))
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path))
    monkeypatch.setattr(pretrained, "IMAGENET_CHECK_URL", "https://colorize-tf-check.invalid")
    generator = build_generator(encoder_weights="imagenet")
    stem = backbone.get_layer("conv1_conv").get_weights()[0].sum(axis=2, keepdims=True)
    np.testing.assert_array_equal(generator.encoder.get_layer("conv1_conv").get_weights()[0], stem)
    np.testing.assert_array_equal(
        generator.encoder.get_layer("stack3_block1_2_conv").get_weights()[0],
        backbone.get_layer("stack3_block1_2_conv").get_weights()[0],
    )


# --- other Keras backends --------------------------------------------------------------------

_JAX_SCRIPT = textwrap.dedent(
    """
    import numpy as np, keras
    from colorize_tf.models import build_discriminator
    assert keras.backend.backend() == "jax"
    generator = keras.models.load_model({path!r})  # saved under TensorFlow
    np.testing.assert_allclose(
        np.asarray(generator(np.load({x!r}))), np.load({y!r}), rtol=1e-4, atol=1e-5)
    discriminator = build_discriminator(base_filters=8)
    assert discriminator(np.zeros((1, 64, 64, 3), "float32")).shape == (1, 6, 6, 1)
    print("jax ok")
    """
)


@pytest.mark.integration
def test_models_run_under_the_jax_backend(tmp_path):
    pytest.importorskip("jax")
    generator = build_generator(**TINY_GENERATOR)
    randomize_batch_norm(generator.encoder)
    l_norm = _l_batch(64)
    paths = {"path": str(tmp_path / "g.keras"), "x": str(tmp_path / "x.npy")}
    paths["y"] = str(tmp_path / "y.npy")
    generator.save(paths["path"])
    np.save(paths["x"], l_norm)
    np.save(paths["y"], keras.ops.convert_to_numpy(generator(l_norm)))
    # XLA's backend optimizations only cost compile time here (one eager call per op shape).
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_backend_optimization_level=0".strip()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-c", _JAX_SCRIPT.format(**paths)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "jax ok" in result.stdout


def test_float32_copy_of_a_mixed_precision_generator_keeps_the_weights(tmp_path):
    """A generator trained under mixed_bfloat16 keeps that policy in its .keras file;
    inference and TFLite export get a float32 copy with the same weights."""
    from colorize_tf.models import float32_copy
    from colorize_tf.models.files import load_keras_file

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        keras.utils.set_random_seed(3)
        mixed = build_generator(image_size=64, encoder_filters=4, decoder_filters=(8, 8, 8, 8, 8))
        mixed.save(tmp_path / "g.keras")
    finally:
        keras.config.set_dtype_policy(previous)
    assert any(layer.compute_dtype == "bfloat16" for layer in mixed._flatten_layers())

    reference = build_generator(image_size=64, encoder_filters=4, decoder_filters=(8, 8, 8, 8, 8))
    reference.set_weights(mixed.get_weights())  # built under float32: what the copy must equal
    x = np.random.default_rng(0).uniform(-1, 1, (2, 64, 64, 1)).astype("float32")
    for copy in (float32_copy(mixed), load_keras_file(tmp_path / "g.keras")):
        assert all(layer.compute_dtype == "float32" for layer in copy._flatten_layers())
        assert len(copy.weights) == len(mixed.weights)
        for a, b in zip(copy.get_weights(), mixed.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(copy(x).numpy(), reference(x).numpy(), atol=1e-5)
        # bf16 compute keeps ~3 significant digits: on average the outputs agree to that.
        assert np.abs(copy(x).numpy() - mixed(x).numpy()).mean() < 0.02
    plain = build_generator(image_size=64, encoder_filters=4, decoder_filters=(8, 8, 8, 8, 8))
    assert float32_copy(plain) is plain


def test_a_training_runs_folder_becomes_a_preset(tmp_path, capsys):
    """``python -m colorize_tf.presets RUN_DIR OUT``: the run's generator, its config, summary
    and evaluation numbers and the photos' manifest land in one preset folder, which loads
    back to the same network (float16 weights)."""
    from colorize_tf.cli import presets as presets_cli
    from colorize_tf.config import load_config
    from colorize_tf.models import files, presets

    keras.utils.set_random_seed(5)
    generator = build_generator(**TINY_GENERATOR, input_size=64)
    run = tmp_path / "run"
    run.mkdir()
    generator.save(run / files.LEGACY_GENERATOR_FILE)
    (run / files.RUN_CONFIG_FILE).write_text(load_config(None, ["train.gan.epochs=3"]).to_yaml())
    summary = {"step": 12, "product": "gan", "val": {"l1": 0.25}}
    (run / files.SUMMARY_FILE).write_text(json.dumps(summary))
    report = tmp_path / "eval"
    report.mkdir()
    numbers = {"count": 2, "ours": {"psnr": 23.5}, "gray": {"psnr": 22.0}, "other": 1}
    (report / files.EVALUATION_FILE).write_text(json.dumps(numbers))
    (tmp_path / "photos.csv").write_text("file,license\na.jpg,CC0\n")
    out = tmp_path / "my_preset"
    argv = [str(run), str(out), "--eval", str(report), "--manifest", str(tmp_path / "photos.csv")]
    assert presets_cli.main([*argv, "--set", "note=tiny"]) == 0
    assert f"preset written to {out}" in capsys.readouterr().out

    metadata = presets.load_metadata(out)
    assert metadata["name"] == "my_preset" and metadata["note"] == "tiny"
    assert metadata["input_size"] == 64 and metadata["parameters"] == generator.count_params()
    assert metadata["recipe"]["train"]["gan"]["epochs"] == 3
    assert metadata["training"] == {
        "steps": 12, "product": "gan", "validation_during_training": {"l1": 0.25}
    }  # fmt: skip
    assert metadata["evaluation"] == {"count": 2, "ours": {"psnr": 23.5}, "gray": {"psnr": 22.0}}
    assert (out / presets.MANIFEST_FILE).read_text() == "file,license\na.jpg,CC0\n"
    x = np.random.default_rng(1).uniform(-1, 1, (1, 64, 64, 1)).astype("float32")
    loaded = presets.load_preset(out)
    error = np.abs(loaded(x).numpy() - generator(x).numpy())  # float16 weights: measured 0.0021
    assert error.max() < 5e-3 and error.mean() < 5e-4
    assert presets_cli.main(argv) == 2  # exists: kept unless --overwrite
    assert "exists" in capsys.readouterr().err
