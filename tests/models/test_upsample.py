"""The decoder's upsampling option: the paper's transposed convs and resize-convolution (the
shipped preset's), which paints no stripes of period 2 and 4 pixels into smooth areas."""

import json

import keras
import numpy as np
import pytest
from helpers import randomize_batch_norm

from colorize_tf.config import load_config
from colorize_tf.core import metrics
from colorize_tf.evaluation.protocol import gradient_images
from colorize_tf.models import build_generator, count_params, generator_spec
from colorize_tf.models.generator import UNetGenerator
from colorize_tf.models.presets import load_preset

TINY = dict(encoder_filters=8, decoder_filters=(32, 16, 16, 8, 8))
MARGIN = metrics.STRIPE_MARGIN_PERIODS * metrics.STRIPE_PERIOD


def _gradients_l(size: int = 128) -> np.ndarray:
    """Smooth gray gradients as the network's input, (4, size, size, 1) in [-1, 1]."""
    return gradient_images(size)[..., :1].astype(np.float32) / 127.5 - 1.0


def _stripes_of(generator) -> np.ndarray:
    ab = np.asarray(generator(_gradients_l(), training=False)) * 110.0  # (4, 128, 128, 2)
    return np.asarray(metrics.stripes(ab, margin=MARGIN))


def test_shipped_preset_is_a_resize_convolution_decoder_with_pinned_outputs():
    generator = load_preset()
    assert generator.upsample == "bilinear" and generator.upsample_kernel_size == 3
    assert isinstance(generator.get_layer("decoder4_upconv"), keras.layers.Conv2D)
    assert isinstance(generator.get_layer("decoder4_upsample"), keras.layers.UpSampling2D)
    y, x = np.mgrid[0:64, 0:64] / 63.0
    l_norm = (np.sin(6 * x) * 0.5 + y - 0.5).astype(np.float32)[None, ..., None]
    ab = np.asarray(generator(l_norm, training=False))
    # Computed when the preset was made; a changed preset or a changed network changes them.
    assert float(ab.sum(dtype=np.float64)) == pytest.approx(872.0972602205875, rel=1e-5)
    np.testing.assert_allclose(ab[0, 10, 20], [0.03382334, 0.19947357], atol=1e-5)
    np.testing.assert_allclose(ab[0, 33, 41], [0.05833014, 0.2080121], atol=1e-5)


def test_shipped_preset_paints_no_stripes_on_smooth_gradients():
    """The issue's finding, fixed: the former preset (transposed convs) measured
    [1.660, 0.262, 0.931, 0.965] here (vertical, horizontal, diagonal, blob)."""
    values = _stripes_of(load_preset())
    np.testing.assert_allclose(values, [0.026, 0.048, 0.011, 0.019], atol=0.005)
    assert values.max() < 0.1


def test_resize_convolution_paints_no_stripes_where_transposed_convs_do():
    found = {}
    for upsample in ("transpose", "bilinear"):
        keras.utils.set_random_seed(0)
        generator = build_generator(upsample=upsample, **TINY)
        randomize_batch_norm(generator, 0)
        randomize_batch_norm(generator.encoder, 1)
        found[upsample] = _stripes_of(generator)
    # Measured: transpose ~[8.0, 8.3, 6.9, 8.4], bilinear ~[0.11, 0.06, 0.14, 0.07].
    assert found["transpose"].min() > 3.0
    assert found["bilinear"].max() < 0.3


def test_option_round_trips_and_counts_its_parameters():
    generator = build_generator(upsample="bilinear", **TINY)
    config = generator.get_config()
    assert config["upsample"] == "bilinear" and config["upsample_kernel_size"] == 3
    revived = UNetGenerator.from_config(json.loads(json.dumps(config)))
    assert json.dumps(revived.get_config(), sort_keys=True) == json.dumps(config, sort_keys=True)
    assert isinstance(generator.get_layer("decoder0_upsample"), keras.layers.UpSampling2D)
    # Each stage's upsampling conv has 9 instead of 16 weights per (c_in, c_out):
    # 7 * (512*512 + 512*384 + 384*256 + 256*96 + 96*32) = 4,092,928 fewer than 31,095,074.
    assert tuple(count_params(build_generator(upsample="bilinear"))) == (27_002_146, 17_280)


def test_config_key_reaches_the_generator_and_bad_values_fail():
    config = load_config(None, ["model.upsample=bilinear", "model.width=0.125"])
    assert generator_spec(config)["upsample"] == "bilinear"
    with pytest.raises(ValueError, match="model.upsample"):
        load_config(None, ["model.upsample=nearest"])
    with pytest.raises(ValueError, match="Received: 'nearest'"):
        build_generator(upsample="nearest", **TINY)
    with pytest.raises(ValueError, match="upsample_kernel_size=4"):
        build_generator(upsample="bilinear", upsample_kernel_size=4, **TINY)
