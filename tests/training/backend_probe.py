"""Run in a subprocess under one Keras backend (``KERAS_BACKEND``): from the initial weights in
``INIT`` (written by the first backend that runs), one pretrain step and one GAN step of the same
batch (the GAN step with the class-rebalanced L1), then the held-out numbers; writes the losses
(JSON) and every weight after (npz).

    KERAS_BACKEND=jax python backend_probe.py OUT.npz INIT.npz
"""

import json
import os
import sys

import keras
import numpy as np

from colorize_tf.core import losses
from colorize_tf.models import build_discriminator, build_generator
from colorize_tf.training.gan import ColorizationGAN

EMA_DECAY = 0.5
LABEL_SMOOTHING = 0.1


def main(out: str, init: str) -> None:
    keras.utils.set_random_seed(0)
    generator = build_generator(encoder_filters=4, decoder_filters=[8, 8, 8, 8, 8])
    discriminator = build_discriminator(base_filters=4)
    gan = ColorizationGAN(generator, discriminator, ema_decay=EMA_DECAY)
    networks = generator.weights + discriminator.weights
    if os.path.exists(init):
        with np.load(init) as stored:
            for i, variable in enumerate(networks):
                variable.assign(stored[f"w{i}"])
        gan.reset_average()
    else:
        np.savez(init, **{f"w{i}": keras.ops.convert_to_numpy(v) for i, v in enumerate(networks)})
    rng = np.random.default_rng(0)
    l_norm = rng.uniform(-1, 1, (2, 64, 64, 1)).astype("float32")
    ab = rng.uniform(-0.3, 0.3, (2, 64, 64, 2)).astype("float32")
    adam = keras.optimizers.Adam
    logs = {}

    def generator_values():  # the order the average follows
        return [keras.ops.convert_to_numpy(v) for v in gan._generator_variables()]

    stages = [generator_values()]
    gan.compile(adam(1e-3), phase="pretrain")
    logs["pretrain"] = gan.fit(l_norm, ab, batch_size=2, verbose=0, shuffle=False).history
    stages.append(generator_values())
    # What the GAN step's d_real must be: its discriminator is still the initial one here.
    real = discriminator(keras.ops.concatenate([l_norm, ab], -1), training=True)
    logs["expected_d_real"] = {
        s: float(keras.ops.mean(losses.bce_with_logits(real, 1.0 - s)))
        for s in (0.0, LABEL_SMOOTHING)
    }
    gan.compile(
        adam(1e-3, beta_1=0.5),
        adam(2e-3, beta_1=0.5),
        phase="gan",
        label_smoothing=LABEL_SMOOTHING,
        l1_bin_weights=losses.rebalance_weights(losses.ab_bin_counts(ab), 0.5),
    )
    logs["gan"] = gan.fit(l_norm, ab, batch_size=2, verbose=0, shuffle=False).history
    stages.append(generator_values())
    logs["eval"] = gan.validate((l_norm, ab), batch_size=2)
    after = [keras.ops.convert_to_numpy(v) for v in networks]
    average = gan.averaged_generator_weights()
    np.savez(out, *after, *average, *[w for stage in stages for w in stage])
    with open(out + ".json", "w") as handle:
        json.dump(
            {"logs": logs, "networks": len(after), "generator": len(average)}, handle, default=str
        )


if __name__ == "__main__":
    main(*sys.argv[1:3])
