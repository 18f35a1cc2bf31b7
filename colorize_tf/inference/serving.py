"""The one inference path: a uint8 image of any size in, a uint8 RGB image of the same size out.

Used by the SavedModel (``savedmodel.py``), the CLI (``colorize.py``) and evaluation. Steps:

1. L of every input pixel, at full resolution (gray, gray + alpha, RGB or RGBA; alpha is
   composited over white, as ``image_ops.decode_image`` does for training).
2. That L resized to the model's square input (``size``: by default the size the generator
   was trained at, which it records as ``input_size``; ``DEFAULT_SIZE`` for one that records
   none).
3. The network predicts normalized ab at ``size`` x ``size``.
4. ab is upsampled bilinearly to the full size and joined to the full-resolution L of step 1,
   then converted to RGB and rounded to uint8.

So the output keeps every detail of the input's lightness; only the chroma is predicted at
low resolution, which is what the eye forgives (chroma is band-limited in JPEG and TV alike).
The network sees the whole image squeezed to a square whatever its aspect ratio: a fixed input
gives a fixed cost and is the contract TFLite needs, and ab is smooth enough not to mind.

All Lab math comes from ``colorize_tf.core.color``. Full-resolution pixel math runs as XLA-fused
kernels on fixed-size chunks of pixels (``xla=True``): one fused pass instead of ~30 passes
over a 12-megapixel image (measured ~6x faster on CPU), compiled once per process rather than
once per image size. ``xla=False`` keeps plain ops, for graphs converted to TFLite.

Shapes: images are uint8 ``(batch, H, W, C)`` or ``(H, W, C)``, ``C`` in 1..4, H, W >=
:data:`MIN_SIDE`; normalized L is ``(batch, H, W, 1)`` in [-1, 1], normalized ab is
``(batch, size, size, 2)``.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from colorize_tf.config import PROTOCOL_SIZE
from colorize_tf.core import color
from colorize_tf.data.image_ops import over_white

DEFAULT_SIZE = PROTOCOL_SIZE  # the input size of a generator that does not record its own
MIN_SIDE = 8  # below this a side holds no structure to colorize (often a broken decode)
# Pixels per XLA chunk: big enough that per-chunk overhead vanishes (< 2% on 12 MP), small
# enough that a chunk's temporaries stay in cache and that tiny images pad little.
CHUNK_PIXELS = 1 << 16
NETWORK_SCOPE = "network"  # name scope of the network's ops inside the serving graph

PredictAB = Callable[[tf.Tensor], tf.Tensor]  # l_norm (B, S, S, 1) -> ab_norm (B, S, S, 2)


# --- the network's input size ----------------------------------------------------------------


def model_size(model, size: int | None = None) -> int:
    """The square size to feed ``model``: ``size`` when given, else the size the model records
    (a generator's ``input_size``: the crop size it was trained at; a TFLite file's input
    shape), else ``DEFAULT_SIZE``. Objects seen at another scale than in training get other
    colors, so the model's own size is the default everywhere."""
    if size is not None:
        return int(size)
    recorded = getattr(model, "input_size", None) or getattr(model, "size", None)
    return int(recorded) if recorded else DEFAULT_SIZE


# --- checks ----------------------------------------------------------------------------------


def check_image(image: np.ndarray | tf.Tensor, batched: bool = False) -> None:
    """Raise ValueError unless ``image`` is a uint8 image this module accepts.

    Args:
        image: ``(H, W)``, ``(H, W, C)`` or, with ``batched``, ``(B, H, W, C)``; C in 1..4.
        batched: whether a leading batch axis is expected.
    """
    shape = tuple(image.shape)
    dtype = image.dtype if isinstance(image, np.ndarray) else image.dtype.as_numpy_dtype
    if dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got dtype {np.dtype(dtype).name} {shape}")
    ranks = (4,) if batched else (2, 3)
    if len(shape) not in ranks:
        expected = "(B, H, W, C)" if batched else "(H, W) or (H, W, C)"
        raise ValueError(f"expected an image of shape {expected}, got shape {shape}")
    height, width = shape[-3:-1] if len(shape) >= 3 else shape
    channels = shape[-1] if len(shape) >= 3 else 1
    if not 1 <= channels <= 4:
        raise ValueError(
            f"expected 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA) channels, got shape {shape}"
        )
    if min(height, width) < MIN_SIDE:
        raise ValueError(
            f"image too small to colorize: {height}x{width} pixels; both sides must be >= "
            f"{MIN_SIDE}"
        )


def _assert_image(images: tf.Tensor) -> list[tf.Operation]:
    """The same checks as ``check_image`` inside a graph (SavedModel callers skip Python)."""
    shape = tf.shape(images)
    return [
        tf.debugging.assert_greater_equal(
            tf.minimum(shape[-3], shape[-2]),
            MIN_SIDE,
            message=f"image too small to colorize: both sides must be >= {MIN_SIDE} pixels",
        ),
        tf.debugging.assert_less_equal(
            shape[-1], 4, message="expected 1, 2, 3 or 4 channels (gray, gray+alpha, RGB, RGBA)"
        ),
        tf.debugging.assert_greater_equal(shape[-1], 1, message="expected at least 1 channel"),
    ]


# --- full-resolution pixel math --------------------------------------------------------------


def _l_of_rgb(rgb_uint8: tf.Tensor) -> tf.Tensor:
    """uint8 RGB (..., 3) -> normalized L (..., 1)."""
    rgb = tf.cast(rgb_uint8, tf.float32) / 255.0
    return tf.convert_to_tensor(color.normalize_l(color.rgb_to_lab(rgb)[..., :1]))


def _rgb_of_l_ab(l_norm: tf.Tensor, ab_norm: tf.Tensor) -> tf.Tensor:
    """Normalized L (..., 1) and ab (..., 2) -> uint8 RGB (..., 3), out-of-gamut clipped."""
    rgb = color.l_ab_to_rgb(l_norm, ab_norm)
    return tf.cast(tf.round(rgb * 255.0), tf.uint8)


_l_of_rgb_chunk = tf.function(
    _l_of_rgb,
    input_signature=[tf.TensorSpec([CHUNK_PIXELS, 3], tf.uint8)],
    jit_compile=True,
)


@tf.function(
    input_signature=[
        tf.TensorSpec([CHUNK_PIXELS, 1], tf.float32),
        tf.TensorSpec([CHUNK_PIXELS, 2], tf.float32),
    ],
    jit_compile=True,
)
def _rgb_of_l_ab_chunk(l_norm: tf.Tensor, ab_norm: tf.Tensor) -> tf.Tensor:
    return _rgb_of_l_ab(l_norm, ab_norm)


def _chunked(fn, inputs: list[tf.Tensor], out_channels: int, out_dtype: tf.DType) -> tf.Tensor:
    """Apply a per-pixel ``fn`` over chunks of CHUNK_PIXELS pixels.

    ``fn`` is a ``tf.function`` whose ``input_signature`` gives each input's channel count;
    ``inputs`` share their leading dims ``(...)``; the result is ``(..., out_channels)``.
    Pixels are flattened and zero-padded to whole chunks, so ``fn`` always sees the same
    static shape and XLA compiles it once per process, whatever the image sizes.
    """
    leading = tf.shape(inputs[0])[:-1]
    count = tf.reduce_prod(leading)
    padding = (-count) % CHUNK_PIXELS
    chunks = []
    for x, spec in zip(inputs, fn.input_signature, strict=True):
        channels = spec.shape[-1]
        flat = tf.reshape(x, [-1, channels])  # (pixels, c)
        flat = tf.pad(flat, [[0, padding], [0, 0]])
        chunks.append(tf.reshape(flat, [-1, CHUNK_PIXELS, channels]))  # (chunks, CHUNK, c)
    out = tf.map_fn(
        lambda xs: fn(*xs),
        tuple(chunks),
        fn_output_signature=tf.TensorSpec([CHUNK_PIXELS, out_channels], out_dtype),
        # Two chunks in flight keep both cores of a small CPU busy (graph mode only).
        parallel_iterations=None if tf.executing_eagerly() else 2,
    )  # (chunks, CHUNK, out_channels)
    out = tf.reshape(out, [-1, out_channels])[:count]
    return tf.reshape(out, tf.concat([leading, [out_channels]], axis=0))


def _gray_l_table() -> tf.Tensor:
    """(256,) normalized L of the gray levels R = G = B = 0..255, through ``color.py``."""
    levels = tf.range(256, dtype=tf.int32)
    gray = tf.cast(tf.stack([levels] * 3, axis=-1), tf.uint8)  # (256, 3)
    return _l_of_rgb(gray)[:, 0]


def luminance(images: tf.Tensor, xla: bool = True) -> tf.Tensor:
    """uint8 images (..., H, W, C) -> normalized L (..., H, W, 1), float32 in [-1, 1].

    C = 1 (gray) and 2 (gray + alpha) read L from a 256-entry table of the gray levels (the
    exact values ``color.rgb_to_lab`` gives for R = G = B, at the cost of one lookup per
    pixel); C = 3 and 4 go through ``color.rgb_to_lab`` per pixel. Alpha is composited over
    white first. C may be unknown until run time (a SavedModel signature).
    """
    images = tf.convert_to_tensor(images, tf.uint8)

    def gray(values: tf.Tensor) -> tf.Tensor:
        return tf.gather(_gray_l_table(), tf.cast(values, tf.int32))  # (..., H, W, 1)

    def rgb(values: tf.Tensor) -> tf.Tensor:
        if xla:
            return _chunked(_l_of_rgb_chunk, [values], 1, tf.float32)
        return _l_of_rgb(values)

    branches = [
        lambda: gray(images[..., :1]),
        lambda: gray(over_white(images[..., :1], images[..., 1:2])),
        lambda: rgb(images[..., :3]),
        lambda: rgb(over_white(images[..., :3], images[..., 3:4])),
    ]
    channels = images.shape[-1]
    if channels is not None:
        return branches[channels - 1]()
    return tf.switch_case(tf.shape(images)[-1] - 1, branches)


def _resize_ab(ab_norm: tf.Tensor, full_size: tf.Tensor) -> tf.Tensor:
    """Bilinear ab to ``full_size``; antialiased only where a side shrinks (a small image).

    Upsampling needs no low-pass filter, and the plain bilinear kernel is the faster one
    (measured ~0.12 s less on a 12-MP photo).
    """
    shrinks = tf.reduce_any(full_size < tf.shape(ab_norm)[1:3])
    return tf.cond(
        shrinks,
        lambda: tf.image.resize(ab_norm, full_size, method="bilinear", antialias=True),
        lambda: tf.image.resize(ab_norm, full_size, method="bilinear"),
    )


def compose(l_norm: tf.Tensor, ab_norm: tf.Tensor, xla: bool = True) -> tf.Tensor:
    """Full-size L and low-resolution ab -> uint8 RGB at the size of L.

    Args:
        l_norm: (B, H, W, 1) normalized L.
        ab_norm: (B, h, w, 2) normalized ab at any resolution (the model's).
        xla: chunked XLA kernels for the per-pixel math (else plain ops).

    Returns:
        (B, H, W, 3) uint8 RGB.
    """
    l_norm = tf.convert_to_tensor(l_norm, tf.float32)
    ab_norm = tf.convert_to_tensor(ab_norm, tf.float32)
    full_size = tf.shape(l_norm)[1:3]
    same = ab_norm.shape[1:3].as_list() == l_norm.shape[1:3].as_list()
    if not same or None in l_norm.shape[1:3].as_list():
        ab_norm = _resize_ab(ab_norm, full_size)  # (B, H, W, 2)
    if xla:
        return _chunked(_rgb_of_l_ab_chunk, [l_norm, ab_norm], 3, tf.uint8)
    return _rgb_of_l_ab(l_norm, ab_norm)


def model_input(l_norm: tf.Tensor, size: int = DEFAULT_SIZE) -> tf.Tensor:
    """Full-size normalized L (B, H, W, 1) -> the network's input (B, size, size, 1)."""
    l_norm = tf.convert_to_tensor(l_norm, tf.float32)
    if l_norm.shape[1:3].as_list() == [size, size]:
        return l_norm  # nothing to do, and TFLite has no kernel for the antialiased resize
    # Antialiased bilinear: a 12-MP photo shrinks ~12x, and without a low-pass filter the
    # network would see aliased texture (training crops were resized the same way).
    return tf.image.resize(l_norm, [size, size], method="bilinear", antialias=True)


# --- the pipeline -----------------------------------------------------------------------------


def colorize_batch(
    images: tf.Tensor, predict_ab: PredictAB, size: int = DEFAULT_SIZE, xla: bool = True
) -> tf.Tensor:
    """Colorize a batch of same-size uint8 images; traceable inside ``tf.function``.

    Args:
        images: uint8 (B, H, W, C), C in 1..4, H and W >= MIN_SIDE.
        predict_ab: normalized L (B, size, size, 1) -> normalized ab (B, size, size, 2);
            a Keras generator or any callable (a TFLite interpreter wrapped in Python works
            eagerly).
        size: the network's square input size (a multiple of 32 for the U-Net).
        xla: chunked XLA kernels for the full-resolution pixel math (False for TFLite graphs).

    Returns:
        uint8 (B, H, W, 3) RGB.
    """
    images = tf.convert_to_tensor(images, tf.uint8)
    with tf.control_dependencies(_assert_image(images)):
        l_norm = luminance(images, xla=xla)  # (B, H, W, 1)
    l_small = model_input(l_norm, size)  # (B, size, size, 1)
    # The scope names the network's ops apart from the Lab math: tflite.py quantizes only
    # ops under NETWORK_SCOPE to int8 (8-bit linear light would wreck the dark tones).
    with tf.name_scope(NETWORK_SCOPE):
        ab_small = predict_ab(l_small)  # (B, size, size, 2)
    return compose(l_norm, tf.cast(ab_small, tf.float32), xla=xla)  # (B, H, W, 3)


def keras_predict_ab(generator: keras.Model) -> PredictAB:
    """The generator as a ``PredictAB`` in inference mode (BatchNorm uses moving statistics)."""

    def predict(l_norm: tf.Tensor) -> tf.Tensor:
        return generator(l_norm, training=False)

    return predict


class ServingModule(tf.Module):
    """The serving graph around a generator, in process: the same graph the SavedModel holds
    (users load a model with ``loader.load_colorizer``, which builds this for the Keras forms).

    Args:
        generator: normalized L (B, size, size, 1) -> normalized ab (B, size, size, 2).
        size: the network's square input size (None: the generator's own, ``model_size``).
        xla: see ``colorize_batch``.

    Methods (all ``tf.function``s with fixed signatures, so one trace serves every size):
        ``colorize(image)``: uint8 (H, W, C) -> uint8 (H, W, 3).
        ``colorize_batch(images)``: uint8 (B, H, W, C) -> uint8 (B, H, W, 3).
        ``predict_ab(l_norm)``: float32 (B, size, size, 1) -> float32 (B, size, size, 2).
    """

    def __init__(self, generator: keras.Model, size: int | None = None, xla: bool = True):
        super().__init__(name="serving")
        size = model_size(generator, size)
        if size < 32 or size % 32:
            raise ValueError(
                f"size must be a positive multiple of 32 (the U-Net stride), got {size}"
            )
        self.generator = generator
        self.size = size
        self.xla = xla
        self._predict = keras_predict_ab(generator)
        self.colorize = tf.function(
            self._colorize,
            autograph=False,
            input_signature=[tf.TensorSpec([None, None, None], tf.uint8)],
        )
        self.colorize_batch = tf.function(
            self._colorize_batch,
            autograph=False,
            input_signature=[tf.TensorSpec([None, None, None, None], tf.uint8)],
        )
        self.predict_ab = tf.function(
            self._predict,
            autograph=False,
            input_signature=[tf.TensorSpec([None, size, size, 1], tf.float32)],
        )

    def _colorize_batch(self, images: tf.Tensor) -> tf.Tensor:
        return colorize_batch(images, self._predict, self.size, self.xla)

    def _colorize(self, image: tf.Tensor) -> tf.Tensor:
        return self._colorize_batch(image[tf.newaxis])[0]


# One ServingModule per (generator, size): its graphs trace once (seconds), so a caller looping
# over images with `colorize_image` pays that once. Weak keys let generators be freed.
_serving_modules: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def serving_module_for(generator: keras.Model, size: int | None = None) -> ServingModule:
    """The cached ``ServingModule`` of ``generator`` at ``size`` (None: its own)."""
    size = model_size(generator, size)
    per_size = _serving_modules.setdefault(generator, {})
    if size not in per_size:
        per_size[size] = ServingModule(generator, size)
    return per_size[size]


def colorize_image(
    model: keras.Model | PredictAB, image: np.ndarray, size: int | None = None
) -> np.ndarray:
    """Colorize one image of any size.

    Args:
        model: a generator (``keras.Model``, run through a cached ``ServingModule``) or any
            ``PredictAB`` callable, run eagerly (e.g. a TFLite interpreter wrapper).
        image: uint8 (H, W) or (H, W, C): gray, gray + alpha, RGB or RGBA; H, W >= MIN_SIDE.
        size: the network's square input size (None: the model's own, ``model_size``).

    Returns:
        uint8 (H, W, 3) RGB, same H and W as the input.

    Raises:
        ValueError: for anything but a uint8 image of 1..4 channels and sides >= MIN_SIDE.
    """
    image = np.asarray(image)
    check_image(image)
    if image.ndim == 2:
        image = image[..., np.newaxis]
    if isinstance(model, keras.Model):
        return serving_module_for(model, size).colorize(tf.constant(image)).numpy()
    return _colorize_eager(image[np.newaxis], model, model_size(model, size))[0].numpy()


@tf.function(reduce_retracing=True, autograph=False)
def _luminance_graph(images: tf.Tensor) -> tf.Tensor:
    return luminance(images)


@tf.function(reduce_retracing=True, autograph=False)
def _compose_graph(l_norm: tf.Tensor, ab_norm: tf.Tensor) -> tf.Tensor:
    return compose(l_norm, ab_norm)


def _colorize_eager(images: np.ndarray, predict_ab: PredictAB, size: int) -> tf.Tensor:
    """``colorize_batch`` for a Python ``predict_ab``: graph pre- and post-processing around it."""
    l_norm = _luminance_graph(tf.constant(images))  # (B, H, W, 1)
    ab = predict_ab(model_input(l_norm, size))  # (B, size, size, 2)
    return _compose_graph(l_norm, tf.cast(ab, tf.float32))


# --- TFLite files ------------------------------------------------------------------------------


def litert_interpreter(**kwargs):
    """``ai_edge_litert.interpreter.Interpreter(**kwargs)``, or an ImportError saying how to
    install it (it is an optional dependency: no wheels for every platform TF supports)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as e:
        raise ImportError(
            "running TFLite files needs the LiteRT interpreter: pip install 'colorize-tf[tflite]' "
            "(or pip install ai-edge-litert)"
        ) from e
    return Interpreter(**kwargs)


class TFLitePredictAB:
    """A ``.tflite`` file written by ``export.py`` as a ``PredictAB``, run with LiteRT.

    Either contract works (``tflite.py`` documents both): ``predict_ab`` (float32 normalized L
    (1, S, S, 1) -> float32 normalized ab (1, S, S, 2)) is called directly; ``colorize_rgb``
    (uint8 RGB (1, S, S, 3) -> uint8 RGB) is fed the gray image of L and its output's ab is
    read back through ``color.py``. Either way ``colorize_image`` then keeps the full-size L,
    so any export colorizes any size. A file of several signatures (``export/web.py``'s
    ``colorize_web.tflite``) is run through its ``predict_ab``.

    Args:
        model: path of the ``.tflite`` file, or its bytes.
        num_threads: interpreter threads (None: LiteRT's default).

    Attributes:
        contract: ``"predict_ab"`` or ``"colorize_rgb"``.
        size: the square input size S.
    """

    def __init__(self, model: str | bytes, num_threads: int | None = None):
        source = {"model_content": model} if isinstance(model, bytes) else {"model_path": model}
        self.interpreter = litert_interpreter(**source, num_threads=num_threads)
        signatures = list(self.interpreter.get_signature_list())
        if len(signatures) > 1 and "predict_ab" in signatures:
            signatures = ["predict_ab"]  # the web file's network (export/web.py)
        if len(signatures) != 1:
            raise ValueError(f"expected one signature in the TFLite model, got {signatures}")
        self.runner = self.interpreter.get_signature_runner(signatures[0])
        (self.input_name,) = self.runner.get_input_details()
        (self.output_name,) = self.runner.get_output_details()
        spec = self.runner.get_input_details()[self.input_name]
        shape, dtype = tuple(int(d) for d in spec["shape"]), spec["dtype"]
        if len(shape) != 4 or shape[0] != 1 or shape[1] != shape[2]:
            raise ValueError(f"expected a (1, S, S, C) input, got {shape}")
        if dtype == np.uint8 and shape[3] == 3:
            self.contract = "colorize_rgb"
        elif dtype == np.float32 and shape[3] == 1:
            self.contract = "predict_ab"
        else:
            raise ValueError(
                f"input {np.dtype(dtype).name} {shape} is neither contract: uint8 (1, S, S, 3) "
                "RGB or float32 (1, S, S, 1) normalized L"
            )
        self.size = shape[1]

    def invoke(self, x: np.ndarray) -> np.ndarray:
        """Run the file's own contract on one input of batch 1."""
        return self.runner(**{self.input_name: x})[self.output_name]

    def __call__(self, l_norm: tf.Tensor) -> np.ndarray:
        """Normalized L (B, S, S, 1) -> normalized ab (B, S, S, 2), one image at a time (eager)."""
        l_norm = np.asarray(l_norm, np.float32)
        outputs = []
        for one in np.split(l_norm, l_norm.shape[0]):  # (1, S, S, 1) each
            if self.contract == "predict_ab":
                outputs.append(self.invoke(one))
                continue
            zero_ab = np.zeros(one.shape[:-1] + (2,), np.float32)
            gray = np.round(np.asarray(color.l_ab_to_rgb(one, zero_ab)) * 255.0).astype(np.uint8)
            rgb = self.invoke(gray).astype(np.float32) / 255.0  # (1, S, S, 3)
            outputs.append(np.asarray(color.rgb_to_l_ab(rgb)[1]))
        return np.concatenate(outputs, axis=0)
