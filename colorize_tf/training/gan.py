"""``ColorizationGAN``: the subclassed ``keras.Model`` whose ``train_step`` runs the method.

Two phases, picked at ``compile``:

* ``pretrain`` - the generator alone, on L1 (the reference pretrains 20 epochs with Adam 1e-4).
* ``gan`` - per batch, one discriminator update on real and generated pairs, then one generator
  update on ``BCE(D(L, G(L)), real) + l1_weight * L1``; the generator's forward pass is shared by
  both updates and its adversarial loss sees the freshly updated discriminator, as in the reference.

``fit()``, ``evaluate()``, callbacks and progress bars work as for any Keras model. Only the
generator is the product: save ``gan.generator``, never the wrapper.

The update itself is TensorFlow (``tf.GradientTape``, ``tf.distribute``); the networks, losses,
Lab math and metrics it calls are ``keras.ops`` and stay backend-portable.
"""

from __future__ import annotations

import types

import keras
import tensorflow as tf
from keras import ops

from colorize_tf.core import color, losses, metrics

PHASES = ("pretrain", "gan")


@keras.saving.register_keras_serializable(package="colorize_tf")
class ColorizationGAN(keras.Model):
    """Generator + discriminator trained together. ``call`` runs the generator: L_norm -> ab_norm.

    Args:
        generator: maps normalized L ``(B, H, W, 1)`` to normalized ab ``(B, H, W, 2)``.
        discriminator: maps ``concat([L, ab], -1)`` ``(B, H, W, 3)`` to patch logits.
    """

    def __init__(self, generator: keras.Model, discriminator: keras.Model, **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        mean = keras.metrics.Mean
        self.trackers = {
            name: mean(name=name)
            for name in ("g_loss", "g_gan", "g_l1", "d_loss", "d_real", "d_fake")
        }
        # Held-out numbers, each beside the gray (a = b = 0) baseline on the same images.
        self.eval_trackers = {
            name: mean(name=name)
            for name in ("l1", "psnr", "ssim", "gray_l1", "gray_psnr", "gray_ssim")
        }
        self.phase = "gan"
        self.l1_weight = 100.0
        self.label_smoothing = 0.0

    def call(self, l_norm, training: bool = False):
        return self.generator(l_norm, training=training)

    def compile(
        self,
        g_optimizer: keras.optimizers.Optimizer,
        d_optimizer: keras.optimizers.Optimizer | None = None,
        l1_weight: float = 100.0,
        phase: str = "gan",
        label_smoothing: float = 0.0,
        fused_batch_norm: bool = False,
        **kwargs,
    ):
        """Set the optimizers and the phase; other kwargs (``jit_compile``,
        ``steps_per_execution``) go to ``keras.Model.compile``. ``label_smoothing``: see
        ``losses.discriminator_loss`` (0: the paper's loss). ``fused_batch_norm``: both networks'
        BatchNormalization layers train with one fused kernel each (``set_fused_batch_norm``:
        the same maths, faster on a CPU; TensorFlow backend only)."""
        if phase not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")
        if phase == "gan" and d_optimizer is None:
            raise ValueError("phase 'gan' needs a d_optimizer")
        if l1_weight < 0:
            raise ValueError(f"l1_weight must be >= 0, got {l1_weight}")
        # Keras' own optimizer slot is the generator's (callbacks read its `iterations`).
        super().compile(optimizer=g_optimizer, **kwargs)
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        self.l1_weight = float(l1_weight)
        self.label_smoothing = float(label_smoothing)
        self.phase = phase
        if keras.backend.backend() == "tensorflow":
            for network in (self.generator, self.discriminator):
                set_fused_batch_norm(network, fused_batch_norm)
        # Build each optimizer on its own network's variables, so neither keeps slots for the
        # other's (Keras would otherwise build `optimizer` on all trainable variables).
        g_optimizer.build(self.generator.trainable_variables)
        if d_optimizer is not None:
            d_optimizer.build(self.discriminator.trainable_variables)

    @property
    def metrics(self):
        train = (
            [self.trackers["g_l1"]] if self.phase == "pretrain" else list(self.trackers.values())
        )
        return train + list(self.eval_trackers.values())

    # --- training ----------------------------------------------------------------------

    def _reduce(self, per_example, global_batch):
        """Sum this replica's per-example losses, divide by the global batch.

        Gradients are summed across replicas when applied, so this gives the gradient of the
        global-batch mean under any strategy (and the plain mean with one replica).
        """
        return ops.sum(per_example) / ops.cast(global_batch, "float32")

    def _global_batch(self, l_norm):
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        return tf.shape(l_norm)[0] * replicas

    def _apply(self, optimizer, tape, scaled_loss, variables):
        """Apply ``d scaled_loss / d variables``; a loss-scaling optimizer unscales them."""
        grads = tape.gradient(scaled_loss, variables)
        optimizer.apply_gradients(zip(grads, variables, strict=True))

    def train_step(self, data):
        l_norm, ab_true = data  # (B, H, W, 1), (B, H, W, 2)
        global_batch = self._global_batch(l_norm)
        g_vars = self.generator.trainable_variables
        d_vars = self.discriminator.trainable_variables

        with tf.GradientTape() as g_tape:
            ab_fake = self.generator(l_norm, training=True)  # (B, H, W, 2)

            if self.phase == "gan":
                with tf.GradientTape() as d_tape:
                    real_logits = self.discriminator(
                        ops.concatenate([l_norm, ab_true], -1), training=True
                    )
                    fake_logits = self.discriminator(
                        ops.concatenate([l_norm, ops.stop_gradient(ab_fake)], -1), training=True
                    )
                    d_parts = losses.discriminator_loss(
                        real_logits, fake_logits, self.label_smoothing
                    )
                    d_loss = self._reduce(d_parts["total"], global_batch)
                    # Scaled inside the tape (fp16 loss scaling), or the tape never sees it.
                    d_scaled = self.d_optimizer.scale_loss(d_loss)
                self._apply(self.d_optimizer, d_tape, d_scaled, d_vars)
                # The generator is judged by the discriminator it just made stronger.
                fake_logits = self.discriminator(
                    ops.concatenate([l_norm, ab_fake], -1), training=True
                )
                g_parts = losses.generator_loss(fake_logits, ab_fake, ab_true, self.l1_weight)
            else:
                g_parts = {"l1": losses.l1_loss(ab_fake, ab_true)}
                g_parts["total"] = g_parts["l1"]
            g_loss = self._reduce(g_parts["total"], global_batch)
            g_scaled = self.g_optimizer.scale_loss(g_loss)
        self._apply(self.g_optimizer, g_tape, g_scaled, g_vars)

        self.trackers["g_l1"].update_state(g_parts["l1"])
        if self.phase == "gan":
            self.trackers["g_loss"].update_state(g_parts["total"])
            self.trackers["g_gan"].update_state(g_parts["gan"])
            self.trackers["d_loss"].update_state(d_parts["total"])
            self.trackers["d_real"].update_state(d_parts["real"])
            self.trackers["d_fake"].update_state(d_parts["fake"])
        return {m.name: m.result() for m in self.metrics if m.name in self.trackers}

    # --- evaluation --------------------------------------------------------------------

    def test_step(self, data):
        l_norm, ab_true = data
        ab_pred = self.generator(l_norm, training=False)
        true_rgb = color.l_ab_to_rgb(l_norm, ab_true)  # (B, H, W, 3) in [0, 1]
        pred_rgb = color.l_ab_to_rgb(l_norm, ab_pred)
        gray_rgb = color.l_ab_to_rgb(l_norm, ops.zeros_like(ab_true))
        for prefix, rgb, ab in (
            ("", pred_rgb, ab_pred),
            ("gray_", gray_rgb, ops.zeros_like(ab_true)),
        ):
            self.eval_trackers[prefix + "l1"].update_state(losses.l1_loss(ab, ab_true))
            self.eval_trackers[prefix + "psnr"].update_state(metrics.psnr(rgb, true_rgb))
            self.eval_trackers[prefix + "ssim"].update_state(metrics.ssim(rgb, true_rgb))
        return {m.name: m.result() for m in self.eval_trackers.values()}

    # --- serialization -----------------------------------------------------------------

    def get_config(self):
        config = super().get_config()
        config.update(
            generator=keras.saving.serialize_keras_object(self.generator),
            discriminator=keras.saving.serialize_keras_object(self.discriminator),
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        generator = keras.saving.deserialize_keras_object(config.pop("generator"))
        discriminator = keras.saving.deserialize_keras_object(config.pop("discriminator"))
        return cls(generator, discriminator, **config)


# --- fused BatchNormalization (a training-speed option; the same maths) --------------------------


def _fused_batch_norm_call(self, inputs, training=None, mask=None):
    """``BatchNormalization.call`` in one ``FusedBatchNormV3`` kernel while training.

    Keras 3's layer normalizes with separate ops (a float32 cast of the input, ``moments``,
    ``batch_normalization``, a cast back) and their gradients: ~16 % of the op time of a float32 GAN
    step at batch 16, 256x256 on a 2-core CPU, ~4 % fused (``bench/train_step.py --profile``). The
    fused kernel computes the same thing in float32 inside (mean, biased variance, ``(x - mean) /
    sqrt(var + eps) * gamma + beta``, output in the input's dtype) and its gradient is the full
    batch-norm gradient. Its variance output is Bessel-corrected, so it is rescaled to the biased
    one Keras averages into the moving variance. Inference, masks, renorm and synchronized BN take
    the layer's own path.
    """
    if (
        not (training and self.trainable)
        or mask is not None
        or getattr(self, "renorm", False)  # the floor Keras (3.12) has no renorm
        or self.synchronized
        or len(inputs.shape) != 4
        or self.axis not in (-1, 3)
    ):
        return type(self).call(self, inputs, training=training, mask=mask)
    channels = inputs.shape[-1]
    gamma = ops.cast(self.gamma, "float32") if self.scale else tf.ones([channels], "float32")
    beta = ops.cast(self.beta, "float32") if self.center else tf.zeros([channels], "float32")
    empty = tf.constant([], "float32")
    outputs, mean, variance, _, _, _ = tf.raw_ops.FusedBatchNormV3(
        x=inputs, scale=gamma, offset=beta, mean=empty, variance=empty, epsilon=self.epsilon,
        exponential_avg_factor=1.0, data_format="NHWC", is_training=True,
    )  # fmt: skip
    count = ops.cast(ops.size(inputs) // channels, "float32")
    variance = variance * (count - 1.0) / count  # the kernel's is Bessel-corrected; Keras' is not
    momentum = self.momentum
    self.moving_mean.assign(self.moving_mean * momentum + mean * (1.0 - momentum))
    self.moving_variance.assign(self.moving_variance * momentum + variance * (1.0 - momentum))
    return ops.cast(outputs, self.compute_dtype)


def set_fused_batch_norm(model: keras.Model, enabled: bool = True) -> int:
    """Let every ``keras.layers.BatchNormalization`` in ``model`` train with the fused kernel
    (``enabled``) or its own ops again; returns how many layers it set.

    Only the layers' training-time kernel changes: weights, configs and saved files stay those of
    plain ``BatchNormalization`` layers (nothing of this is saved), and inference is untouched.
    """
    count = 0
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if type(layer) is not keras.layers.BatchNormalization:
            continue
        if enabled:
            layer.call = types.MethodType(_fused_batch_norm_call, layer)
        elif "call" in vars(layer):
            object.__delattr__(layer, "call")
        count += 1
    return count
