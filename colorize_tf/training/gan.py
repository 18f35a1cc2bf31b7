"""``ColorizationGAN``: the subclassed ``keras.Model`` whose ``train_step`` runs the method,
under the TensorFlow and the JAX backend alike.

Two phases, picked at ``compile``:

* ``pretrain`` - the generator alone, on L1 (the reference pretrains 20 epochs with Adam 1e-4).
* ``gan`` - per batch, one discriminator update on real and generated pairs, then one generator
  update on ``BCE(D(L, G(L)), real) + l1_weight * L1``; the generator's forward pass is shared by
  both updates and its adversarial loss sees the freshly updated discriminator, as in the reference.

The update exists once per backend, side by side, the way keras.io's "Customizing what happens in
fit()" guides write them: ``GradientTape`` for TensorFlow (``_tf_train_step``), a stateless
``train_step(state, data) -> (logs, state)`` for JAX (``_jax_train_step``). Both call the same
losses (``core.losses``), the same Lab math (``core.color``) and the same recipe: ``l1_weight``,
``label_smoothing`` and the generator's exponential moving average (``ema_decay``), which lives in
non-trainable variables of this model and is updated on the device inside the step.

``fit()``, ``evaluate()``, callbacks and progress bars work as for any Keras model. Only the
generator is the product: save ``gan.generator`` (or ``gan.averaged_generator_weights()``),
never the wrapper.
"""

from __future__ import annotations

import contextlib
import types

import keras
from keras import ops

from colorize_tf.core import color, losses, metrics

PHASES = ("pretrain", "gan")
TRAIN_LOGS = {
    "pretrain": ("g_l1",),
    "gan": ("g_loss", "g_gan", "g_l1", "d_loss", "d_real", "d_fake"),
}
# Held-out numbers, each beside the gray (a = b = 0) baseline on the same images. ``dcf`` is
# |colorfulness(prediction) - colorfulness(truth)| per image: what PSNR does not see.
EVAL_LOGS = ("l1", "psnr", "ssim", "cf", "dcf")


class OptimizerPair(keras.optimizers.Optimizer):
    """The generator's and the discriminator's optimizers, seen by ``fit`` as one.

    Keras' JAX trainer threads ``model.optimizer.variables`` through its stateless step; a GAN
    has two optimizers, so this holds both and lists both's variables (the generator's first).
    It applies nothing itself: ``ColorizationGAN``'s steps call each optimizer. ``iterations`` is
    the generator's (what callbacks count). Used under JAX only: under TensorFlow the step updates
    variables in place, and Keras wraps ``model.optimizer`` for float16 loss scaling.
    """

    def __init__(self, g_optimizer, d_optimizer=None, name: str = "optimizer_pair"):
        super().__init__(learning_rate=0.0, name=name)
        self.g_optimizer, self.d_optimizer = g_optimizer, d_optimizer

    @property
    def parts(self) -> list:
        return [o for o in (self.g_optimizer, self.d_optimizer) if o is not None]

    @property
    def variables(self):
        return [v for optimizer in self.parts for v in optimizer.variables]

    @property
    def iterations(self):
        return self.g_optimizer.iterations

    def build(self, variables):  # each part is built on its own network's variables
        if not all(optimizer.built for optimizer in self.parts):
            raise ValueError("build each optimizer on its own network's variables first")
        self.built = True

    def finalize_variable_values(self, var_list):
        pass  # neither part keeps an optimizer-side EMA


@keras.saving.register_keras_serializable(package="colorize_tf")
class ColorizationGAN(keras.Model):
    """Generator + discriminator trained together. ``call`` runs the generator: L_norm -> ab_norm.

    Args:
        generator: maps normalized L ``(B, H, W, 1)`` to normalized ab ``(B, H, W, 2)``.
        discriminator: maps ``concat([L, ab], -1)`` ``(B, H, W, 3)`` to patch logits.
        ema_decay: > 0 keeps ``average = decay * average + (1 - decay) * weights`` of every
            generator variable (BatchNormalization statistics included) after every step, on the
            device; 0 keeps none.
    """

    def __init__(
        self, generator: keras.Model, discriminator: keras.Model, ema_decay: float = 0.0, **kwargs
    ):
        super().__init__(**kwargs)
        if not 0.0 <= ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {ema_decay}")
        self.generator = generator
        self.discriminator = discriminator
        self.ema_decay = float(ema_decay)
        # Made here, before Keras locks the model's state: one average per generator variable.
        self.ema_weights = [
            keras.Variable(
                ops.convert_to_numpy(v),  # a copy: JAX must not see one buffer twice
                trainable=False,
                dtype=v.dtype,
                name=f"ema_{i}",
                aggregation="only_first_replica",
            )
            for i, v in enumerate(self._generator_variables())
        ] if ema_decay > 0 else []  # fmt: skip
        mean = keras.metrics.Mean
        self.trackers = {name: mean(name=name) for name in TRAIN_LOGS["gan"]}
        self.eval_trackers = {
            prefix + name: mean(name=prefix + name)
            for prefix in ("", "gray_")
            for name in EVAL_LOGS
        }
        self.phase = "gan"
        self.l1_weight = 100.0
        self.label_smoothing = 0.0
        self.l1_bin_weights = None
        self._layouts: dict = {}
        self.built = True  # both networks are built: fit must not build this on an RGB batch

    def _generator_variables(self) -> list:
        """The variables the average follows, in one fixed order."""
        return list(self.generator.trainable_variables) + list(
            self.generator.non_trainable_variables
        )

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
        l1_bin_weights=None,
        **kwargs,
    ):
        """Set the optimizers and the phase; other kwargs (``jit_compile``,
        ``steps_per_execution``) go to ``keras.Model.compile``. ``label_smoothing``: see
        ``losses.discriminator_loss`` (0: the paper's loss). ``fused_batch_norm``: both networks'
        BatchNormalization layers train with one fused kernel each (``set_fused_batch_norm``:
        the same maths, faster on a CPU; under JAX, XLA fuses them itself). ``l1_bin_weights``
        (``losses.AB_BINS ** 2``,): the class-rebalanced L1 of both phases
        (``losses.rebalance_weights``); None: plain L1, the paper's."""
        if phase not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")
        if phase == "gan" and d_optimizer is None:
            raise ValueError("phase 'gan' needs a d_optimizer")
        if l1_weight < 0:
            raise ValueError(f"l1_weight must be >= 0, got {l1_weight}")
        if not 0.0 <= label_smoothing < 0.5:
            raise ValueError(f"label_smoothing must be in [0, 0.5), got {label_smoothing}")
        backend = keras.backend.backend()
        if backend not in ("tensorflow", "jax"):
            raise ValueError(f"ColorizationGAN trains under tensorflow or jax, not {backend!r}")
        # Build each optimizer on its own network's variables, so neither keeps slots for the
        # other's (Keras would otherwise build `optimizer` on all trainable variables).
        g_optimizer.build(self.generator.trainable_variables)
        if d_optimizer is not None:
            d_optimizer.build(self.discriminator.trainable_variables)
        if backend == "jax":
            optimizer = OptimizerPair(g_optimizer, d_optimizer if phase == "gan" else None)
            optimizer.build(self.trainable_variables)
        else:
            # Keras' own optimizer slot is the generator's (callbacks read its `iterations`).
            optimizer = g_optimizer
        super().compile(optimizer=optimizer, **kwargs)
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer if phase == "gan" else None
        self.l1_weight = float(l1_weight)
        self.label_smoothing = float(label_smoothing)
        self.l1_bin_weights = (
            None if l1_bin_weights is None else ops.convert_to_numpy(l1_bin_weights)
        )
        self.phase = phase
        if backend == "tensorflow":
            for network in (self.generator, self.discriminator):
                set_fused_batch_norm(network, fused_batch_norm)

    @property
    def metrics(self):
        train = [self.trackers[name] for name in TRAIN_LOGS[self.phase]]
        return train + list(self.eval_trackers.values())

    # --- the moving average ----------------------------------------------------------------

    def averaged_generator_weights(self) -> list:
        """The average as numpy arrays in ``_generator_variables`` order (the raw weights when
        no average is kept)."""
        self._sync()
        source = self.ema_weights or self._generator_variables()
        return [keras.ops.convert_to_numpy(v) for v in source]

    def set_generator_weights(self, values: list) -> None:
        """Assign arrays in ``_generator_variables`` order to the generator."""
        self._sync()
        for variable, value in zip(self._generator_variables(), values, strict=True):
            variable.assign(value)

    @contextlib.contextmanager
    def averaged_generator(self):
        """Within the block the generator holds the averaged weights; its own come back after."""
        if not self.ema_weights:
            yield self.generator
            return
        raw = [keras.ops.convert_to_numpy(v) for v in self._generator_variables()]
        self.set_generator_weights(self.averaged_generator_weights())
        try:
            yield self.generator
        finally:
            self.set_generator_weights(raw)

    def reset_average(self) -> None:
        """Start the average again from the generator's current weights (after a restore)."""
        self._sync()
        if not self.ema_weights:  # ema_decay 0: no average to reset
            return
        for average, variable in zip(self.ema_weights, self._generator_variables(), strict=True):
            average.assign(ops.convert_to_numpy(variable))  # a copy, as in __init__

    def validate(self, data, batch_size: int = 8) -> dict:
        """``evaluate`` on a validation dataset or on (L, ab) arrays: ``EVAL_LOGS`` of ours and
        of the gray baseline, as floats."""
        if isinstance(data, tuple):
            found = self.evaluate(*data, batch_size=batch_size, return_dict=True, verbose=0)
        else:
            found = self.evaluate(data, return_dict=True, verbose=0)
        return {k: float(v) for k, v in found.items()}

    def _sync(self) -> None:
        """Under JAX inside ``fit``, write the step's state back to the variables first."""
        if hasattr(self, "jax_state_sync"):
            self.jax_state_sync()

    # --- shared step pieces ----------------------------------------------------------------

    @staticmethod
    def _unpack(data):
        """A batch -> (L_norm (B, H, W, 1), ab_norm (B, H, W, 2)).

        The tf.data pipeline gives (L, ab); the numpy pipeline (JAX without TensorFlow) gives
        uint8 RGB crops (B, H, W, 3), turned into L and ab here, on the device. Keras'
        ``train_on_batch`` passes ``(x, y, sample_weight)``.
        """
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        if y is not None:
            return x, y
        return color.rgb_to_l_ab(ops.cast(x, "float32") / 255.0)

    def _train_logs(self, g_parts, d_parts) -> dict:
        """Per-example losses -> ``{log name: (batch,) values}`` for the phase's trackers."""
        logs = {"g_l1": g_parts["l1"]}
        if self.phase == "gan":
            logs.update(g_loss=g_parts["total"], g_gan=g_parts["gan"])
            logs.update(d_loss=d_parts["total"], d_real=d_parts["real"], d_fake=d_parts["fake"])
        return logs

    def _eval_values(self, l_norm, ab_true, ab_pred) -> dict:
        """Per-example held-out numbers for ours and the gray baseline."""
        true_rgb = color.l_ab_to_rgb(l_norm, ab_true)  # (B, H, W, 3) in [0, 1]
        gray = ops.zeros_like(ab_true)
        values = {}
        for prefix, ab in (("", ab_pred), ("gray_", gray)):
            found = metrics.image_metrics(color.l_ab_to_rgb(l_norm, ab), true_rgb)
            values[prefix + "l1"] = losses.l1_loss(ab, ab_true)
            values[prefix + "psnr"] = found["psnr"]
            values[prefix + "ssim"] = found["ssim"]
            values[prefix + "cf"] = found["cf_pred"]
            values[prefix + "dcf"] = found["delta_cf"]
        return values

    # --- TensorFlow: GradientTape ------------------------------------------------------------

    def train_step(self, *args):
        """One step of the phase: ``train_step(data)`` under TensorFlow, the stateless
        ``train_step(state, data) -> (logs, state)`` under JAX."""
        if keras.backend.backend() == "jax":
            return self._jax_train_step(*args)
        return self._tf_train_step(*args)

    def test_step(self, *args):
        """Held-out numbers of ours and of the gray baseline (``EVAL_LOGS``), per backend."""
        if keras.backend.backend() == "jax":
            return self._jax_test_step(*args)
        return self._tf_test_step(*args)

    def _tf_train_step(self, data):
        import tensorflow as tf

        l_norm, ab_true = self._unpack(data)  # (B, H, W, 1), (B, H, W, 2)
        # Sum this replica's per-example losses and divide by the global batch: gradients are
        # summed across replicas when applied, so this is the gradient of the global-batch mean
        # under any strategy (and the plain mean with one replica).
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        global_batch = ops.cast(tf.shape(l_norm)[0] * replicas, "float32")
        g_vars = self.generator.trainable_variables
        d_vars = self.discriminator.trainable_variables
        d_parts = None

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
                    # Scaled inside the tape (fp16 loss scaling), or the tape never sees it.
                    d_scaled = self.d_optimizer.scale_loss(ops.sum(d_parts["total"]) / global_batch)
                d_grads = d_tape.gradient(d_scaled, d_vars)
                self.d_optimizer.apply_gradients(zip(d_grads, d_vars, strict=True))
                # The generator is judged by the discriminator it just made stronger.
                fake_logits = self.discriminator(
                    ops.concatenate([l_norm, ab_fake], -1), training=True
                )
                g_parts = losses.generator_loss(
                    fake_logits, ab_fake, ab_true, self.l1_weight, self.l1_bin_weights
                )
            else:
                g_parts = {"l1": losses.l1_loss(ab_fake, ab_true, self.l1_bin_weights)}
                g_parts["total"] = g_parts["l1"]
            g_scaled = self.g_optimizer.scale_loss(ops.sum(g_parts["total"]) / global_batch)
        g_grads = g_tape.gradient(g_scaled, g_vars)
        self.g_optimizer.apply_gradients(zip(g_grads, g_vars, strict=True))

        decay = self.ema_decay
        if self.ema_weights:  # ema_decay 0 keeps no average
            for average, variable in zip(
                self.ema_weights, self._generator_variables(), strict=True
            ):
                average.assign(decay * average + (1.0 - decay) * ops.cast(variable, average.dtype))
        for name, values in self._train_logs(g_parts, d_parts).items():
            self.trackers[name].update_state(values)
        return {name: self.trackers[name].result() for name in TRAIN_LOGS[self.phase]}

    def _tf_test_step(self, data):
        l_norm, ab_true = self._unpack(data)
        ab_pred = self.generator(l_norm, training=False)
        for name, values in self._eval_values(l_norm, ab_true, ab_pred).items():
            self.eval_trackers[name].update_state(values)
        return {name: tracker.result() for name, tracker in self.eval_trackers.items()}

    # --- JAX: stateless ------------------------------------------------------------------------

    def _layout(self) -> dict:
        """Where each network's variables (and the average) sit in the state lists Keras' JAX
        trainer passes: positions in ``trainable_variables`` / ``non_trainable_variables``."""
        if self.phase not in self._layouts:

            def positions(every, subset):
                index = {id(v): i for i, v in enumerate(every)}
                return [index[id(v)] for v in subset]

            t, nt = self.trainable_variables, self.non_trainable_variables
            self._layouts[self.phase] = {
                "g": positions(t, self.generator.trainable_variables),
                "d": positions(t, self.discriminator.trainable_variables),
                "g_nt": positions(nt, self.generator.non_trainable_variables),
                "d_nt": positions(nt, self.discriminator.non_trainable_variables),
                "ema": positions(nt, self.ema_weights),
            }
        return self._layouts[self.phase]

    def _update_metrics(self, metric_values: list, values: dict, names) -> tuple[dict, list]:
        """Stateless tracker updates: ``values`` into ``metric_values`` (``metrics_variables``
        order); returns the results of ``names`` and the new list."""
        metric_values, logs, start = list(metric_values), {}, 0
        for tracker in self.metrics:
            end = start + len(tracker.variables)
            if tracker.name in values:
                metric_values[start:end] = tracker.stateless_update_state(
                    metric_values[start:end], values[tracker.name]
                )
            if tracker.name in names:
                logs[tracker.name] = tracker.stateless_result(metric_values[start:end])
            start = end
        return logs, metric_values

    def _jax_train_step(self, state, data):
        import jax

        trainable, non_trainable, optimizer_values, metric_values = state
        at = self._layout()
        l_norm, ab_true = self._unpack(data)  # (B, H, W, 1), (B, H, W, 2)
        g = [trainable[i] for i in at["g"]]
        g_nt = [non_trainable[i] for i in at["g_nt"]]
        d = [trainable[i] for i in at["d"]]
        d_nt = [non_trainable[i] for i in at["d_nt"]]
        g_count = len(self.g_optimizer.variables)
        g_opt, d_opt = optimizer_values[:g_count], optimizer_values[g_count:]
        generator, discriminator = self.generator, self.discriminator
        d_parts = None
        # Under a JAX distribution the batch is sharded and the mean below is the global one.

        if self.phase == "pretrain":

            def l1_fn(g_vars):
                ab_pred, new_nt = generator.stateless_call(g_vars, g_nt, l_norm, training=True)
                l1 = losses.l1_loss(ab_pred, ab_true, self.l1_bin_weights)
                return ops.mean(l1), (new_nt, l1)

            (_, (g_nt, l1)), g_grads = jax.value_and_grad(l1_fn, has_aux=True)(g)
            g_parts = {"l1": l1, "total": l1}
        else:

            def g_forward(g_vars):
                return generator.stateless_call(g_vars, g_nt, l_norm, training=True)

            # One generator forward pass, shared: its output feeds D's update as a constant and
            # its pullback turns dLoss/dab into the generator's gradients afterwards.
            ab_fake, g_pullback, g_nt = jax.vjp(g_forward, g, has_aux=True)

            def d_loss_fn(d_vars, nt):
                real, nt = discriminator.stateless_call(
                    d_vars, nt, ops.concatenate([l_norm, ab_true], -1), training=True
                )
                fake, nt = discriminator.stateless_call(
                    d_vars,
                    nt,
                    ops.concatenate([l_norm, jax.lax.stop_gradient(ab_fake)], -1),
                    training=True,
                )
                parts = losses.discriminator_loss(real, fake, self.label_smoothing)
                return ops.mean(parts["total"]), (nt, parts)

            (_, (d_nt, d_parts)), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(d, d_nt)
            d, d_opt = self.d_optimizer.stateless_apply(d_opt, d_grads, d)

            def g_loss_fn(ab):
                # The generator is judged by the discriminator it just made stronger.
                logits, nt = discriminator.stateless_call(
                    d, d_nt, ops.concatenate([l_norm, ab], -1), training=True
                )
                parts = losses.generator_loss(
                    logits, ab, ab_true, self.l1_weight, self.l1_bin_weights
                )
                return ops.mean(parts["total"]), (nt, parts)

            (_, (d_nt, g_parts)), ab_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(ab_fake)
            (g_grads,) = g_pullback(ab_grads)
        g, g_opt = self.g_optimizer.stateless_apply(g_opt, g_grads, g)

        trainable, non_trainable = list(trainable), list(non_trainable)
        for key, values in (("g", g), ("d", d)):
            for i, value in zip(at[key], values, strict=True):
                trainable[i] = value
        for key, values in (("g_nt", g_nt), ("d_nt", d_nt)):
            for i, value in zip(at[key], values, strict=True):
                non_trainable[i] = value
        decay = self.ema_decay
        if at["ema"]:  # ema_decay 0 keeps no average
            for i, value in zip(at["ema"], list(g) + list(g_nt), strict=True):
                non_trainable[i] = decay * non_trainable[i] + (1.0 - decay) * value
        logs, metric_values = self._update_metrics(
            metric_values, self._train_logs(g_parts, d_parts), TRAIN_LOGS[self.phase]
        )
        return logs, (trainable, non_trainable, list(g_opt) + list(d_opt), metric_values)

    def _jax_test_step(self, state, data):
        trainable, non_trainable, metric_values = state
        at = self._layout()
        l_norm, ab_true = self._unpack(data)
        ab_pred, _ = self.generator.stateless_call(
            [trainable[i] for i in at["g"]],
            [non_trainable[i] for i in at["g_nt"]],
            l_norm,
            training=False,
        )
        values = self._eval_values(l_norm, ab_true, ab_pred)
        logs, metric_values = self._update_metrics(metric_values, values, self.eval_trackers)
        return logs, (trainable, non_trainable, metric_values)

    # --- serialization -----------------------------------------------------------------

    def get_config(self):
        config = super().get_config()
        config.update(
            generator=keras.saving.serialize_keras_object(self.generator),
            discriminator=keras.saving.serialize_keras_object(self.discriminator),
            ema_decay=self.ema_decay,
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
    import tensorflow as tf

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
