"""sRGB <-> CIE Lab and the network's L / ab normalization: the only place the convention lives.

Everything is written with ``keras.ops`` so that the same code runs eagerly, inside
``tf.data.Dataset.map``, inside a Keras model, under XLA, in a TFLite graph and under
any Keras backend (JAX included).

Conventions
-----------
* RGB is float in [0, 1], sRGB-encoded (the standard transfer curve), D65 white.
* Lab is CIE 1976 L*a*b* with L in [0, 100] and a, b roughly in [-128, 128].
  The constants (matrix, white point, 0.008856 / 7.787 knee) are the ones scikit-image
  uses, so the two agree to float32 rounding.
* The networks see ``L / 50 - 1`` and predict ``ab / 110``; both lie in [-1, 1] for
  every sRGB color (|a|, |b| <= 108 over the sRGB gamut). This is the reference
  tutorial's convention.

Shapes: every function takes any leading dimensions with channels last,
e.g. ``(batch, height, width, 3)`` or ``(n, 3)``.
"""

from __future__ import annotations

import keras
from keras.src.utils import backend_utils


class _Ops:
    """``keras.ops``, except inside a ``tf.data`` graph while Keras runs another backend (JAX,
    with ``tf.data`` feeding it on the host): there the same ops come from Keras' TensorFlow
    implementation, as Keras' own preprocessing layers switch (``tf.data`` only runs
    TensorFlow). One Lab implementation for the pipeline, the networks and serving."""

    def __getattr__(self, name: str):
        if keras.backend.backend() != "tensorflow" and backend_utils.in_tf_graph():
            from keras.src.backend.tensorflow import core, numpy

            return getattr(numpy, name, None) or getattr(core, name)
        return getattr(keras.ops, name)


ops = _Ops()

L_SCALE = 50.0  # L in [0, 100]   -> L / 50 - 1 in [-1, 1]
AB_SCALE = 110.0  # a, b in ~[-108, 108] over sRGB -> ab / 110 in [-1, 1]

# sRGB (linear) -> CIE XYZ, D65 (IEC 61966-2-1; same numbers as scikit-image).
_XYZ_FROM_RGB = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
_D65_WHITE = (0.95047, 1.0, 1.08883)
_EPSILON = 0.008856  # (6/29)^3, rounded as in the CIE recommendation
_KAPPA = 7.787  # slope of the linear segment of f(t) below the knee
_OFFSET = 16.0 / 116.0


def _inverse_3x3(m: tuple) -> tuple:
    """Exact inverse of a 3x3 matrix in Python floats (float64): both directions stay consistent."""
    (a, b, c), (d, e, f), (g, h, i) = m
    det = a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)
    return (
        ((e * i - f * h) / det, (c * h - b * i) / det, (b * f - c * e) / det),
        ((f * g - d * i) / det, (a * i - c * g) / det, (c * d - a * f) / det),
        ((d * h - e * g) / det, (b * g - a * h) / det, (a * e - b * d) / det),
    )


_RGB_FROM_XYZ = _inverse_3x3(_XYZ_FROM_RGB)


def _matmul_channels(x, matrix: tuple):
    """``x @ matrix.T`` over the last axis: (..., 3) -> (..., 3)."""
    m = ops.transpose(ops.convert_to_tensor(matrix, dtype="float32"))
    return ops.matmul(x, m)


def _srgb_to_linear(c):
    # max() keeps the power's argument positive so neither branch yields NaN (or NaN grads).
    high = ops.power((ops.maximum(c, 0.04045) + 0.055) / 1.055, 2.4)
    return ops.where(c > 0.04045, high, c / 12.92)


def _linear_to_srgb(c):
    high = 1.055 * ops.power(ops.maximum(c, 0.0031308), 1.0 / 2.4) - 0.055
    return ops.where(c > 0.0031308, high, c * 12.92)


def _lab_f(t):
    cube_root = ops.power(ops.maximum(t, _EPSILON), 1.0 / 3.0)
    return ops.where(t > _EPSILON, cube_root, _KAPPA * t + _OFFSET)


def _lab_f_inverse(f):
    cube = f * f * f
    return ops.where(cube > _EPSILON, cube, (f - _OFFSET) / _KAPPA)


def rgb_to_lab(rgb):
    """sRGB in [0, 1] (..., 3) -> CIE Lab (..., 3) float32, L in [0, 100]."""
    rgb = ops.cast(rgb, "float32")
    xyz = _matmul_channels(_srgb_to_linear(rgb), _XYZ_FROM_RGB)  # (..., 3)
    xyz = xyz / ops.convert_to_tensor(_D65_WHITE, dtype="float32")
    f = _lab_f(xyz)
    fx, fy, fz = f[..., 0], f[..., 1], f[..., 2]
    lightness = 116.0 * fy - 16.0
    a = 500.0 * (fx - fy)
    b = 200.0 * (fy - fz)
    return ops.stack([lightness, a, b], axis=-1)


def lab_to_rgb(lab):
    """CIE Lab (..., 3) -> sRGB (..., 3) float32, out-of-gamut values clipped to [0, 1]."""
    lab = ops.cast(lab, "float32")
    lightness, a, b = lab[..., 0], lab[..., 1], lab[..., 2]
    fy = (lightness + 16.0) / 116.0
    fx = fy + a / 500.0
    fz = ops.maximum(fy - b / 200.0, 0.0)  # z < 0 is not a color; scikit-image clips here too
    xyz = _lab_f_inverse(ops.stack([fx, fy, fz], axis=-1))
    xyz = xyz * ops.convert_to_tensor(_D65_WHITE, dtype="float32")
    linear = _matmul_channels(xyz, _RGB_FROM_XYZ)
    return ops.clip(_linear_to_srgb(linear), 0.0, 1.0)


# --- the network's normalization ----------------------------------------------------------


def normalize_l(lightness):
    """L in [0, 100] -> [-1, 1]."""
    return ops.cast(lightness, "float32") / L_SCALE - 1.0


def denormalize_l(l_norm):
    """[-1, 1] -> L in [0, 100]."""
    return (ops.cast(l_norm, "float32") + 1.0) * L_SCALE


def normalize_ab(ab):
    """a, b -> ab / 110 (within [-1, 1] for sRGB colors)."""
    return ops.cast(ab, "float32") / AB_SCALE


def denormalize_ab(ab_norm):
    """ab / 110 -> a, b."""
    return ops.cast(ab_norm, "float32") * AB_SCALE


def rgb_to_l_ab(rgb):
    """sRGB in [0, 1] (..., 3) -> (L_norm (..., 1), ab_norm (..., 2)): the networks' input and
    target."""
    lab = rgb_to_lab(rgb)
    return normalize_l(lab[..., :1]), normalize_ab(lab[..., 1:])


def l_ab_to_rgb(l_norm, ab_norm):
    """(L_norm (..., 1), ab_norm (..., 2)) -> sRGB in [0, 1] (..., 3), clipped to the gamut."""
    lab = ops.concatenate([denormalize_l(l_norm), denormalize_ab(ab_norm)], axis=-1)
    return lab_to_rgb(lab)
