"""The training recipe both Keras backends run (``colorize_tf.training.recipe``): the configured
optimizers, the steps of each phase, and the loop's plan built from them."""

import keras
import pytest

from colorize_tf.config import ConfigError, PhaseConfig, load_config
from colorize_tf.training import recipe


def test_the_recipe_gives_the_configured_optimizers_steps_and_precision():
    config = load_config(
        None,
        [
            "train.pretrain.learning_rate=0.001",
            "train.pretrain.beta_1=0.8",
            "train.gan.learning_rate=0.0003",
            "train.gan.beta_1=0.4",
            "train.gan.beta_2=0.99",
            "train.d_learning_rate=0.00005",
        ],
    )
    optimizers = recipe.make_optimizers(config.train)
    expected = {
        "pretrain": (1e-3, 0.8, 0.999),
        "g_gan": (3e-4, 0.4, 0.99),
        "d_gan": (5e-5, 0.4, 0.99),
    }
    for name, (rate, beta_1, beta_2) in expected.items():
        opt = optimizers[name]
        assert (float(opt.learning_rate), opt.beta_1, opt.beta_2) == pytest.approx(
            (rate, beta_1, beta_2)
        ), name
    same_rate = recipe.make_optimizers(load_config(None, ["train.gan.learning_rate=0.0003"]).train)
    assert float(same_rate["d_gan"].learning_rate) == pytest.approx(3e-4)  # 0: the GAN phase's
    assert all(type(o) is keras.optimizers.Adam for o in optimizers.values())

    # Steps: the configured steps_per_epoch, else the whole batches the images fill.
    assert recipe.phase_steps(PhaseConfig(epochs=3), train_images=20, global_batch=8) == 3 * 2
    assert recipe.phase_steps(PhaseConfig(epochs=2, steps_per_epoch=5), 20, 8) == 2 * 5
    assert recipe.phase_steps(PhaseConfig(epochs=2, steps_per_epoch=5), None, 8) == 2 * 5
    with pytest.raises(ValueError, match="do not fill one global batch of 8"):
        recipe.phase_steps(PhaseConfig(epochs=1), 7, 8)
    with pytest.raises(ValueError, match="size is not known"):
        recipe.phase_steps(PhaseConfig(epochs=1), None, 8)
    # Precision: one policy per setting; float16 (loss scaling) is TensorFlow's alone.
    assert recipe.MIXED_PRECISION_POLICIES == {
        "none": "float32",
        "bf16": "mixed_bfloat16",
        "fp16": "mixed_float16",
    }
    fp16 = load_config(None, ["runtime.mixed_precision=fp16"])
    recipe.check_backend(fp16, "tensorflow")
    with pytest.raises(ConfigError, match="runtime.mixed_precision='fp16' applies to the tensorf"):
        recipe.check_backend(fp16, "jax")


def test_the_loop_plans_the_recipes_steps():
    from colorize_tf.training import loop

    for overrides, images in (
        ([], 100),
        (["data.batch_size=7"], 50),
        (["train.gan.steps_per_epoch=9"], 30),
    ):
        config = load_config(None, overrides)
        for phase in ("pretrain", "gan"):
            phase_cfg = getattr(config.train, phase)
            plan = loop.phase_plan(config, phase, images, replicas=1)
            assert plan.steps_per_epoch * phase_cfg.epochs == recipe.phase_steps(
                phase_cfg, images, config.data.batch_size
            )


@pytest.mark.parametrize("source", ["no/such/folder", "EMPTY"])
def test_train_names_a_bad_data_source_as_a_user_error(tmp_path, capsys, source):
    from colorize_tf.cli import train

    if source == "EMPTY":
        source = str(tmp_path / "empty")
        (tmp_path / "empty").mkdir()
    code = train.main(["--workdir", str(tmp_path / "run"), "--set", f"data.source={source}"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.startswith("error: ") and source in err
