"""ColorizationGAN: real training steps on tiny networks change what they should, and only that."""

import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from colorize_tf.core import color, losses, metrics
from colorize_tf.models import build_discriminator, build_generator
from colorize_tf.training.gan import EVAL_LOGS, ColorizationGAN

SIZE = 64


def tiny_gan(seed: int = 0, ema_decay: float = 0.0) -> ColorizationGAN:
    keras.utils.set_random_seed(seed)
    generator = build_generator(encoder_filters=4, decoder_filters=[8, 8, 8, 8, 8])
    discriminator = build_discriminator(base_filters=4)
    return ColorizationGAN(generator, discriminator, ema_decay=ema_decay)


def batches(n: int = 4, batch: int = 2, seed: int = 0) -> tf.data.Dataset:
    rng = np.random.default_rng(seed)
    l_norm = rng.uniform(-1, 1, (n, SIZE, SIZE, 1)).astype("float32")
    ab = rng.uniform(-0.3, 0.3, (n, SIZE, SIZE, 2)).astype("float32")
    return tf.data.Dataset.from_tensor_slices((l_norm, ab)).batch(batch)


def snapshot(model) -> list[np.ndarray]:
    return [w.numpy().copy() for w in model.trainable_weights]


def changed(before, model) -> int:
    return sum(
        not np.array_equal(a, w.numpy())
        for a, w in zip(before, model.trainable_weights, strict=True)
    )


def test_gan_step_changes_both_networks_with_finite_losses():
    gan = tiny_gan()
    gan.compile(keras.optimizers.Adam(2e-4, 0.5), keras.optimizers.Adam(2e-4, 0.5), phase="gan")
    g0, d0 = snapshot(gan.generator), snapshot(gan.discriminator)
    history = gan.fit(batches(2, 2), epochs=1, verbose=0).history
    assert set(history) == {"g_loss", "g_gan", "g_l1", "d_loss", "d_real", "d_fake"}
    assert all(np.isfinite(v[0]) for v in history.values())
    # g_loss = g_gan + 100 * g_l1 on the same batch; BCE of untrained logits is near log 2.
    assert history["g_loss"][0] == pytest.approx(
        history["g_gan"][0] + 100 * history["g_l1"][0], rel=1e-5
    )
    assert 0.3 < history["d_loss"][0] < 1.5
    assert changed(g0, gan.generator) == len(g0)
    assert changed(d0, gan.discriminator) == len(d0)
    # Each optimizer holds slots for its own network only (Adam: m and v per variable, + 2).
    assert len(gan.g_optimizer.variables) == 2 * len(gan.generator.trainable_variables) + 2
    assert len(gan.d_optimizer.variables) == 2 * len(gan.discriminator.trainable_variables) + 2


def test_pretrain_step_trains_only_the_generator_on_l1():
    gan = tiny_gan()
    gan.compile(keras.optimizers.Adam(1e-4), phase="pretrain")
    g0 = snapshot(gan.generator)
    d_all = [w.numpy().copy() for w in gan.discriminator.weights]
    data = batches(2, 2)
    l_norm, ab = next(iter(data))
    expected_l1 = float(np.mean(losses.l1_loss(gan.generator(l_norm, training=True), ab)))
    history = gan.fit(data, epochs=1, verbose=0).history
    assert set(history) == {"g_l1"}
    assert history["g_l1"][0] == pytest.approx(expected_l1, rel=1e-4)  # loss before the update
    assert changed(g0, gan.generator) == len(g0)
    assert all(
        np.array_equal(a, w.numpy()) for a, w in zip(d_all, gan.discriminator.weights, strict=True)
    )


@pytest.mark.parametrize("phase", ["pretrain", "gan"])
def test_rebalanced_l1_weights_each_pixel_by_its_true_bin_in_both_phases(phase):
    data = batches(2, 2)
    l_norm, ab = next(iter(data))
    # Pixels whose true a is positive weigh 3, the others 1: the logged L1 (the loss before
    # the update) must be exactly that weighted mean.
    weights = np.ones(losses.AB_BINS**2, np.float32).reshape(losses.AB_BINS, -1)
    weights[losses.AB_BINS // 2 :] = 3.0
    weights = weights.ravel()
    gan = tiny_gan()
    pred = np.asarray(gan.generator(l_norm, training=True))
    error = np.abs(pred - np.asarray(ab)) * np.where(np.asarray(ab)[..., :1] >= 0, 3.0, 1.0)
    d_opt = keras.optimizers.Adam(2e-4, 0.5) if phase == "gan" else None
    gan.compile(keras.optimizers.Adam(1e-4), d_opt, phase=phase, l1_bin_weights=weights)
    history = gan.fit(data, epochs=1, verbose=0).history
    assert history["g_l1"][0] == pytest.approx(float(error.mean()), rel=1e-4)
    assert float(error.mean()) > 1.5 * float(np.abs(pred - np.asarray(ab)).mean())


def test_evaluate_reports_ours_and_the_gray_baseline():
    gan = tiny_gan()
    gan.compile(keras.optimizers.Adam(1e-4), phase="pretrain")
    results = gan.evaluate(batches(), return_dict=True, verbose=0)
    results = {k: float(v) for k, v in results.items()}  # Keras < 3.14 returns tensors here
    assert set(results) == {p + name for p in ("", "gray_") for name in EVAL_LOGS}
    assert EVAL_LOGS == ("l1", "psnr", "ssim", "cf", "dcf")
    # The gray baseline's L1 is the mean |ab| of the targets (uniform in +-0.3: 0.15).
    assert results["gray_l1"] == pytest.approx(0.15, abs=0.01)
    assert 0 < results["psnr"] < 100 and -1 <= results["ssim"] <= 1
    # Gray has no colorfulness, so its error is the truth's own colorfulness (core.metrics).
    l_norm, ab = (np.concatenate(t) for t in zip(*batches().as_numpy_iterator(), strict=True))
    true_rgb = color.l_ab_to_rgb(l_norm, ab)
    cf_true = float(np.mean(metrics.image_metrics(true_rgb, true_rgb)["cf_true"]))
    assert cf_true > 10  # the random ab are colorful
    assert results["gray_cf"] < 0.5
    assert results["gray_dcf"] == pytest.approx(cf_true - results["gray_cf"], abs=0.05)
    assert results["dcf"] >= 0 and results["cf"] >= 0
    # validate(): the same numbers as floats, from the dataset or from (L, ab) arrays.
    assert gan.validate(batches()) == pytest.approx(results, rel=1e-5)
    assert gan.validate((l_norm, ab), batch_size=2) == pytest.approx(results, rel=1e-4)


def test_compile_rejects_bad_arguments():
    gan = tiny_gan()
    with pytest.raises(ValueError, match="phase must be one of"):
        gan.compile(keras.optimizers.Adam(), phase="warmup")
    with pytest.raises(ValueError, match="phase 'gan' needs a d_optimizer"):
        gan.compile(keras.optimizers.Adam(), phase="gan")


def test_keras_round_trip_of_the_wrapper(tmp_path):
    gan = tiny_gan(ema_decay=0.9)
    gan.compile(keras.optimizers.Adam(1e-3), phase="pretrain")
    gan.fit(batches(2, 2), epochs=1, verbose=0)  # the average now differs from the weights
    l_norm = np.random.default_rng(1).uniform(-1, 1, (1, SIZE, SIZE, 1)).astype("float32")
    path = tmp_path / "gan.keras"
    gan.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded(l_norm), gan(l_norm))
    assert loaded.ema_decay == 0.9
    for mine, theirs in zip(
        gan.averaged_generator_weights(), loaded.averaged_generator_weights(), strict=True
    ):
        np.testing.assert_array_equal(mine, theirs)


def generator_values(gan) -> list[np.ndarray]:
    """The generator's variables in the order the average keeps them."""
    variables = gan.generator.trainable_variables + gan.generator.non_trainable_variables
    return [np.array(v.numpy()) for v in variables]


def test_the_average_decays_once_per_step_inside_each_execution():
    """ema_decay 0.9, two steps: average = 0.81 w0 + 0.09 w1 + 0.1 w2 for every generator
    variable (BatchNormalization statistics too), whether the two steps run as two executions
    or as one of ``steps_per_execution=2`` (a callback sees only the second)."""
    decay = 0.9
    gan = tiny_gan(ema_decay=decay)
    gan.compile(keras.optimizers.Adam(1e-3), phase="pretrain", steps_per_execution=1)
    seen = [generator_values(gan)]
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: seen.append(generator_values(gan))
    )
    gan.fit(batches(4, 2), epochs=1, verbose=0, callbacks=[record])
    w0, w1, w2 = seen
    averaged = gan.averaged_generator_weights()
    assert len(averaged) == len(w0) == len(gan.ema_weights)
    assert sum(not np.allclose(a, b) for a, b in zip(w0, w2, strict=True)) > len(w0) // 2
    for got, a, b, c in zip(averaged, w0, w1, w2, strict=True):
        expected = decay**2 * a + decay * (1 - decay) * b + (1 - decay) * c
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)

    again = tiny_gan(ema_decay=decay)
    again.compile(keras.optimizers.Adam(1e-3), phase="pretrain", steps_per_execution=2)
    again.fit(batches(4, 2), epochs=1, verbose=0)
    assert int(again.g_optimizer.iterations.numpy()) == 2
    for got, expected in zip(again.averaged_generator_weights(), averaged, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_the_averaged_generator_is_lent_and_given_back():
    gan = tiny_gan(ema_decay=0.5)
    gan.compile(keras.optimizers.Adam(1e-3), phase="pretrain")
    gan.fit(batches(4, 2), epochs=1, verbose=0)
    raw, averaged = generator_values(gan), gan.averaged_generator_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(raw, averaged, strict=True))
    l_norm = next(iter(batches()))[0]
    with gan.averaged_generator() as generator:
        assert generator is gan.generator
        for got, expected in zip(generator_values(gan), averaged, strict=True):
            np.testing.assert_array_equal(got, expected)
        inside = np.asarray(generator(l_norm))
    for got, expected in zip(generator_values(gan), raw, strict=True):
        np.testing.assert_array_equal(got, expected)
    assert not np.array_equal(inside, np.asarray(gan.generator(l_norm)))
    # The average scores as the generator holding it: what the selection ships.
    with gan.averaged_generator():
        with_average = gan.validate(batches())
    gan.set_generator_weights(averaged)
    assert gan.validate(batches()) == pytest.approx(with_average, rel=1e-6)

    gan.set_generator_weights(raw)
    gan.reset_average()  # after a restore: the average starts from the weights
    for got, expected in zip(gan.averaged_generator_weights(), raw, strict=True):
        np.testing.assert_array_equal(got, expected)

    plain = tiny_gan()  # ema_decay 0: no average, the weights stand for it
    plain.compile(keras.optimizers.Adam(1e-3), phase="pretrain")
    plain.fit(batches(2, 2), epochs=1, verbose=0)
    assert plain.ema_weights == []
    for got, expected in zip(
        plain.averaged_generator_weights(), generator_values(plain), strict=True
    ):
        np.testing.assert_array_equal(got, expected)
    with plain.averaged_generator() as generator:
        assert generator is plain.generator
    plain.reset_average()  # nothing to reset
    with pytest.raises(ValueError, match="ema_decay must be in"):
        tiny_gan(ema_decay=1.0)


MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np, tensorflow as tf, keras
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    sys.path.insert(0, {tests!r})
    from test_gan import tiny_gan

    rng = np.random.default_rng(0)
    half_l = rng.uniform(-1, 1, (2, 64, 64, 1)).astype("float32")
    half_ab = rng.uniform(-0.3, 0.3, (2, 64, 64, 2)).astype("float32")
    # Global batch of 4 = two identical halves, so each replica's BatchNorm statistics equal
    # the global batch's (see the test's docstring).
    l_norm, ab = np.concatenate([half_l, half_l]), np.concatenate([half_ab, half_ab])

    def one_step(strategy):
        with strategy.scope():
            gan = tiny_gan(seed=3)
            # Plain SGD: its step is proportional to the gradient, so a wrong loss scaling shows.
            gan.compile(keras.optimizers.SGD(0.01), keras.optimizers.SGD(0.01), phase="gan")
        ds = tf.data.Dataset.from_tensor_slices((l_norm, ab)).batch(4)
        gan.fit(ds, epochs=1, verbose=0)
        return [w.numpy() for w in gan.generator.weights + gan.discriminator.weights]

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert mirrored.num_replicas_in_sync == 2
    a, b = one_step(tf.distribute.get_strategy()), one_step(mirrored)
    fresh = tiny_gan(seed=3)
    start = [w.numpy() for w in fresh.generator.weights + fresh.discriminator.weights]
    norm = lambda arrays: float(np.sqrt(sum(np.sum(np.square(x)) for x in arrays)))
    diff = norm([x - y for x, y in zip(a, b)])
    moved = norm([x - s for x, s in zip(a, start)])
    print(json.dumps({{"diff": diff, "moved": moved, "relative": diff / moved, "n": len(a)}}))
    """
)


@pytest.mark.integration
def test_mirrored_two_replicas_match_one_replica_on_the_same_global_batch():
    """Two logical CPUs under MirroredStrategy vs the default strategy, one GAN step, batch 4.

    Loss scaling: each replica divides its per-example sum by the *global* batch and the
    optimizer sums gradients across replicas; a wrong scaling would double or halve the step,
    a difference as large as the step itself. Plain SGD keeps that visible (Adam would
    normalize it away). We compare the L2 norm of the weight difference between the two runs
    to the norm of the step: measured 7.8e-4 (float32 reassociation across batch sizes,
    amplified through BatchNorm's backward pass; the largest single weights differ by ~2 %).
    Bound: 1e-2; dropping the replica count from the scaling (a 2x step) measured 0.16.

    BatchNorm, honestly: under MirroredStrategy each replica normalizes with its own half-batch
    statistics (no cross-replica sync), so with *different* halves the two runs differ by design.
    Identical halves make per-replica statistics equal the global ones, isolating the loss and
    gradient aggregation we want to pin.
    """
    script = MIRRORED_SCRIPT.format(tests=str(__import__("pathlib").Path(__file__).parent))
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(result)
    assert result["moved"] > 1e-2, result
    assert result["relative"] < 1e-2, result


@pytest.mark.integration
def test_tpu_shaped_step_compiles_with_xla_bf16_and_steps_per_execution():
    """What a TPU run needs, exercised on the CPU: static shapes (drop_remainder), the whole
    train step under XLA, mixed_bfloat16, several steps per execution."""
    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        gan = tiny_gan()
        gan.compile(
            keras.optimizers.Adam(2e-4, 0.5),
            keras.optimizers.Adam(2e-4, 0.5),
            phase="gan",
            jit_compile=True,
            steps_per_execution=2,
        )
        data = batches(8, 2).unbatch().batch(2, drop_remainder=True).repeat()
        assert data.element_spec[0].shape == (2, SIZE, SIZE, 1)  # static batch dimension
        g0 = snapshot(gan.generator)
        history = gan.fit(data, epochs=1, steps_per_epoch=4, verbose=0).history
        assert all(np.isfinite(v[0]) for v in history.values())
        assert gan.g_optimizer.iterations.numpy() == 4
        assert changed(g0, gan.generator) == len(g0)
        out = gan.generator(np.zeros((1, SIZE, SIZE, 1), np.float32))
        assert out.dtype == "float32"  # bf16 compute, float32 output
    finally:
        keras.mixed_precision.set_global_policy(policy)


@pytest.mark.parametrize("phase", ["pretrain", "gan"])
def test_fp16_step_with_loss_scaling_trains(phase):
    """GPU precision: mixed_float16 with LossScaleOptimizer. The scaled loss must be taken
    inside the tape, or there are no gradients at all (a bug this test caught)."""
    from colorize_tf.training.recipe import make_optimizer

    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        gan = tiny_gan()
        g_opt, d_opt = make_optimizer(2e-4, 0.5, 0.999), make_optimizer(2e-4, 0.5, 0.999)
        assert isinstance(g_opt, keras.optimizers.LossScaleOptimizer)
        gan.compile(g_opt, d_opt, phase=phase)
        g0, d0 = snapshot(gan.generator), snapshot(gan.discriminator)
        # Dynamic loss scaling starts at 2**15 and skips steps whose scaled gradients overflow
        # float16, halving the scale each time: give it steps to settle.
        history = gan.fit(batches(4, 2).repeat(), epochs=1, steps_per_epoch=12, verbose=0).history
        assert all(np.isfinite(v[0]) for v in history.values())
        assert changed(g0, gan.generator) == len(g0)
        assert float(g_opt.dynamic_scale) <= 2.0**15
        assert changed(d0, gan.discriminator) == (len(d0) if phase == "gan" else 0)
        assert gan.generator(np.zeros((1, SIZE, SIZE, 1), np.float32)).dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy(policy)


@pytest.mark.integration
def test_keras_runs_whole_executions_so_steps_per_execution_must_divide_the_epoch():
    """Why ``distribute.epoch_plan`` picks a divisor: Keras steps through an epoch in whole
    executions, so 3 steps at 2 per execution train 4 (62 at 50 would train 100)."""
    from colorize_tf.training.distribute import largest_divisor_at_most

    data = batches(8, 2).repeat()
    for per_execution, trained in ((2, 4), (largest_divisor_at_most(3, 2), 3)):
        gan = tiny_gan()
        gan.compile(
            keras.optimizers.Adam(1e-4), phase="pretrain", steps_per_execution=per_execution
        )
        gan.fit(data, epochs=1, steps_per_epoch=3, verbose=0)
        assert int(gan.g_optimizer.iterations.numpy()) == trained


def test_a_non_finite_loss_stops_fit_at_once_naming_phase_epoch_and_step(tmp_path):
    """The loop's ``StopOnNonFinite``: the step whose loss turns NaN ends ``fit`` with an error
    that says where, and no further step runs (no checkpoint could save the NaN)."""
    from colorize_tf.training import callbacks, checkpoint
    from colorize_tf.training.recipe import NonFiniteLossError

    rng = np.random.default_rng(0)
    l_norm = rng.uniform(-1, 1, (10, SIZE, SIZE, 1)).astype("float32")
    ab = rng.uniform(-0.3, 0.3, (10, SIZE, SIZE, 2)).astype("float32")
    ab[6, 0, 0, 0] = np.nan  # the 4th batch of 2
    data = tf.data.Dataset.from_tensor_slices((l_norm, ab)).batch(2)
    gan = tiny_gan()
    gan.compile(keras.optimizers.Adam(1e-4), phase="pretrain")
    counter = callbacks.StepCounter(start=10)  # a resumed run: global steps go on from 10
    stop = callbacks.StopOnNonFinite(counter, "pretrain", tmp_path)
    with pytest.raises(NonFiniteLossError) as err:
        gan.fit(data, epochs=2, verbose=0, callbacks=[counter, stop])
    message = str(err.value)
    assert "g_l1=nan in phase 'pretrain', epoch 1, step 14" in message
    assert "none was written yet" in message
    assert int(gan.g_optimizer.iterations.numpy()) == 4  # stopped after the bad step

    checkpoint.save(tmp_path, 12, {"generator": gan.generator}, {"phase": "pretrain"})
    with pytest.raises(NonFiniteLossError, match=r"checkpoint is .*ckpt-000000012.npz \(step 12"):
        gan.fit(data, epochs=1, verbose=0, callbacks=[counter, stop])
