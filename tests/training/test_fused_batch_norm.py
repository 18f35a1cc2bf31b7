"""The fused BatchNormalization training kernel (``ColorizationGAN.compile(fused_batch_norm=True)``)
computes what Keras' own layer computes: outputs, gradients, moving statistics, GAN losses."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from colorize_tf.models import build_discriminator, build_generator
from colorize_tf.training.gan import ColorizationGAN, set_fused_batch_norm

SIZE = 32


def _layer_run(fused: bool, dtype: str, x: np.ndarray):
    """One training call of a BN layer (gamma/beta set off their defaults) and its gradients."""
    keras.utils.set_random_seed(0)
    layer = keras.layers.BatchNormalization(epsilon=1e-5, momentum=0.9, dtype=dtype)
    layer.build(x.shape)
    layer.gamma.assign(np.linspace(0.5, 1.5, x.shape[-1]).astype("float32"))
    layer.beta.assign(np.linspace(-0.2, 0.3, x.shape[-1]).astype("float32"))
    model = keras.Sequential([keras.Input(x.shape[1:]), layer])
    assert set_fused_batch_norm(model, fused) == 1
    inputs = tf.constant(x)
    weights = tf.constant(np.random.default_rng(1).normal(size=x.shape).astype("float32"))
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        y = model(inputs, training=True)
        loss = tf.reduce_sum(tf.cast(y, "float32") * weights)
    grads = tape.gradient(loss, [inputs, layer.gamma, layer.beta])
    stats = [layer.moving_mean.numpy(), layer.moving_variance.numpy()]
    return [tf.cast(y, "float32").numpy()] + [g.numpy() for g in grads] + stats


@pytest.mark.parametrize(("dtype", "tol"), [("float32", 1e-4), ("mixed_bfloat16", 2e-2)])
def test_fused_layer_matches_keras_batch_normalization(dtype, tol):
    x = np.random.default_rng(0).normal(0.3, 2.0, (4, 6, 5, 8)).astype("float32")
    plain, fused = _layer_run(False, dtype, x), _layer_run(True, dtype, x)
    names = ["output", "d input", "d gamma", "d beta", "moving mean", "moving variance"]
    for name, a, b in zip(names, plain, fused, strict=True):
        scale = max(1.0, float(np.abs(a).max()))
        np.testing.assert_allclose(b, a, atol=tol * scale, rtol=tol, err_msg=name)


def test_inference_and_config_are_untouched():
    keras.utils.set_random_seed(0)
    generator = build_generator(encoder_filters=4, decoder_filters=[8, 8, 8, 8, 8])
    x = np.random.default_rng(0).uniform(-1, 1, (2, SIZE, SIZE, 1)).astype("float32")
    before, config = generator(x, training=False).numpy(), generator.get_config()
    assert set_fused_batch_norm(generator) > 10
    np.testing.assert_array_equal(generator(x, training=False).numpy(), before)
    assert generator.get_config() == config
    set_fused_batch_norm(generator, False)
    assert not any("call" in vars(layer) for layer in generator._flatten_layers())


def _gan_losses(fused: bool, steps: int = 2) -> tuple[list[dict], list[np.ndarray]]:
    keras.utils.set_random_seed(0)
    generator = build_generator(encoder_filters=4, decoder_filters=[8, 8, 8, 8, 8])
    gan = ColorizationGAN(generator, build_discriminator(base_filters=4))
    # SGD: updates are linear in the gradients, so rounding-level differences stay that small
    # (Adam's first steps move by ~lr * sign(g), which turns rounding into visible differences).
    gan.compile(
        keras.optimizers.SGD(1e-3), keras.optimizers.SGD(1e-3), phase="gan", fused_batch_norm=fused
    )
    rng = np.random.default_rng(0)
    batch = (
        tf.constant(rng.uniform(-1, 1, (4, SIZE, SIZE, 1)).astype("float32")),
        tf.constant(rng.uniform(-0.3, 0.3, (4, SIZE, SIZE, 2)).astype("float32")),
    )
    step = tf.function(gan.train_step)
    history = []
    for _ in range(steps):
        history.append({k: float(v) for k, v in step(batch).items()})
        for tracker in gan.trackers.values():
            tracker.reset_state()  # each step's own losses, not the running mean
    stats = [v.numpy() for v in gan.generator.non_trainable_variables]
    return history, stats


def test_gan_step_losses_equal_with_fused_batch_norm():
    plain, plain_stats = _gan_losses(False)
    fused, fused_stats = _gan_losses(True)
    for step, (a, b) in enumerate(zip(plain, fused, strict=True)):
        for key in a:
            assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-5), (step, key)
    for a, b in zip(plain_stats, fused_stats, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)
