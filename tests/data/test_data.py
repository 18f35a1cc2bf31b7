"""The input pipeline on small images made here: shapes, the eval protocol, augmentation, every
real-world file defect, the split, sharding, TFRecord and TFDS sources, and the commands.

Images are tens of pixels and crops 32 px so that the whole file runs in well under a minute.
"""

import logging
import os
import socket
import time

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image, ImageOps
from skimage import color as skcolor

from colorize_tf.cli import data as data_cli
from colorize_tf.data import image_ops, sources
from colorize_tf.data import pipeline as data
from colorize_tf.data import tfrecords as prepare
from colorize_tf.data.image_files import ImageFileError, over_white, read_rgb
from colorize_tf.data.listing import relative_name, walk_files
from colorize_tf.data.samples import SAMPLE_PHOTOS

CROP = 32
RED, GREEN, BLUE, WHITE = (230, 20, 20), (20, 200, 40), (30, 40, 220), (255, 255, 255)


# --- helpers -------------------------------------------------------------------------------


def photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth color image (uint8, (h, w, 3)) that survives JPEG: gradients plus a tint."""
    y, x = np.mgrid[0:height, 0:width]
    rng = np.random.default_rng(seed)
    tint = rng.uniform(0.2, 0.8, 3)
    rgb = np.stack([x / max(width - 1, 1), y / max(height - 1, 1), 1 - x / max(width - 1, 1)], -1)
    return np.clip(255 * (0.6 * rgb + 0.4 * tint), 0, 255).astype(np.uint8)


def quadrants(height: int, width: int) -> np.ndarray:
    """Red top-left, green top-right, blue bottom-left, white bottom-right: shows orientation."""
    image = np.empty((height, width, 3), np.uint8)
    h, w = height // 2, width // 2
    image[:h, :w], image[:h, w:], image[h:, :w], image[h:, w:] = RED, GREEN, BLUE, WHITE
    return image


def save(path, array: np.ndarray, **kwargs) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)
    return str(path)


def folder_of(tmp_path, count: int, size=(48, 64), name="img") -> str:
    root = tmp_path / "photos"
    for i in range(count):
        save(root / f"{name}{i:02d}.jpg", photo(*size, seed=i), quality=95)
    return str(root)


def paths_of(ds: tf.data.Dataset) -> list[str]:
    return [p.decode() for batch in ds for p in batch["path"].numpy()]


def decode_file(path: str, orientation: int = 1) -> np.ndarray:
    return image_ops.decode_image(tf.io.read_file(path), orientation).numpy()


# --- sources -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, kind, location, tfds_split",
    [
        ("tfds:coco/2017", "tfds", "coco/2017", None),
        ("tfds:coco/2017:validation[:500]", "tfds", "coco/2017", "validation[:500]"),
        ("tfds:coco/2017:1.1.0:train", "tfds", "coco/2017:1.1.0", "train"),
        ("tfrecord:gs://bucket/x/train-*", "tfrecord", "gs://bucket/x/train-*", None),
        ("gs://bucket/x/train-*.tfrecord", "tfrecord", "gs://bucket/x/train-*.tfrecord", None),
        ("/data/shards/*.TFREC", "tfrecord", "/data/shards/*.TFREC", None),
    ],
)
def test_source_grammar(text, kind, location, tfds_split):
    assert sources.parse_source(text) == sources.Source(kind, location, tfds_split)


def test_unknown_source_says_what_is_accepted(tmp_path):
    with pytest.raises(ValueError, match="not an existing directory.*tfds:NAME"):
        sources.parse_source(str(tmp_path / "missing"))


def test_embedded_samples_yield_batches_and_split_both_ways():
    train = sources.list_images("samples", "train")
    val = sources.list_images("samples", "val")
    assert len(train) >= 1 and len(val) >= 1 and not set(train) & set(val)
    assert sorted(os.path.basename(p) for p in train + val) == sorted(SAMPLE_PHOTOS)
    ds = data.build_dataset("samples", split="train", training=True, batch_size=2, crop_size=64)
    l_norm, ab_norm = next(iter(ds))
    assert l_norm.shape == (2, 64, 64, 1) and ab_norm.shape == (2, 64, 64, 2)
    assert float(tf.math.reduce_std(ab_norm)) > 0.02  # real color photos, not gray


# --- shapes, ranges and the protocol -------------------------------------------------------


@pytest.mark.parametrize("training", [True, False])
def test_static_shapes_and_value_ranges(tmp_path, training):
    root = folder_of(tmp_path, 5)
    ds = data.build_dataset(
        root, split="all", training=training, batch_size=2, crop_size=CROP, drop_remainder=True
    )
    l_spec, ab_spec = ds.element_spec
    assert l_spec.shape == (2, CROP, CROP, 1) and ab_spec.shape == (2, CROP, CROP, 2)
    assert l_spec.dtype == ab_spec.dtype == tf.float32
    batches = list(ds)
    assert len(batches) == 2  # 5 images, remainder dropped
    for l_norm, ab_norm in batches:
        assert -1.0 <= float(tf.reduce_min(l_norm)) and float(tf.reduce_max(l_norm)) <= 1.0
        assert -1.0 <= float(tf.reduce_min(ab_norm)) and float(tf.reduce_max(ab_norm)) <= 1.0
    # Without drop_remainder only the batch dimension is dynamic.
    ds = data.build_dataset(root, split="all", training=training, batch_size=2, crop_size=CROP)
    assert ds.element_spec[0].shape.as_list() == [None, CROP, CROP, 1]
    assert sum(int(b[0].shape[0]) for b in ds) == 5


def test_eval_crop_is_short_side_resize_then_center_crop():
    # 64 x 128: a red center square between blue sides; short side -> 32 gives 32 x 64 whose
    # center 32 x 32 is exactly the red square.
    image = np.zeros((64, 128, 3), np.uint8)
    image[:, :32], image[:, 32:96], image[:, 96:] = BLUE, RED, BLUE
    rgb = image_ops.eval_crop(tf.constant(image), CROP).numpy()
    assert rgb.shape == (CROP, CROP, 3)
    inner = rgb[:, 1:-1]  # the outermost columns blend with blue through the resize filter
    np.testing.assert_allclose(inner, np.broadcast_to(np.array(RED) / 255, inner.shape), atol=1e-6)
    # Portrait: the crop is taken from the vertical center.
    portrait = image_ops.eval_crop(tf.constant(np.transpose(image, (1, 0, 2))), CROP).numpy()
    np.testing.assert_allclose(portrait[1:-1], np.array(RED) / 255 + 0 * portrait[1:-1], atol=1e-6)


def test_lab_of_flat_colors_matches_scikit_image(tmp_path):
    colors = [RED, GREEN, BLUE, (128, 128, 128), (250, 200, 30)]
    for i, c in enumerate(colors):
        save(tmp_path / "flat" / f"{i}.png", np.full((40, 90, 3), c, np.uint8))
    ds = data.build_eval_rgb_dataset(
        str(tmp_path / "flat"), split="all", crop_size=CROP, batch_size=5
    )
    batch = next(iter(ds))
    lab = skcolor.rgb2lab(np.array(colors, np.float64)[:, None, None, :] / 255.0)  # (5, 1, 1, 3)
    expected_l = lab[..., :1] / 50.0 - 1.0
    expected_ab = lab[..., 1:] / 110.0
    assert batch["l_norm"].shape == (5, CROP, CROP, 1)
    np.testing.assert_allclose(
        batch["l_norm"].numpy(), np.broadcast_to(expected_l, (5, CROP, CROP, 1)), atol=1e-4
    )
    np.testing.assert_allclose(
        batch["ab_norm"].numpy(), np.broadcast_to(expected_ab, (5, CROP, CROP, 2)), atol=1e-4
    )


def test_preprocessing_agrees_eagerly_and_inside_a_dataset_map(tmp_path):
    path = save(tmp_path / "a.jpg", photo(45, 70, seed=3), quality=90)
    encoded = tf.io.read_file(path)
    seed = tf.constant([7, 11], tf.int64)

    def preprocess(encoded, seed):
        image = image_ops.resize_short_side(image_ops.decode_image(encoded, 1, 40), 40)
        eval_l, eval_ab = image_ops.to_l_ab(image_ops.eval_crop(image, CROP))
        train_l, train_ab = image_ops.to_l_ab(image_ops.train_crop(image, CROP, seed))
        return eval_l, eval_ab, train_l, train_ab

    eager = preprocess(encoded, seed)
    mapped = next(iter(tf.data.Dataset.from_tensors((encoded, seed)).map(preprocess)))
    for a, b in zip(eager, mapped, strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)
    # And the whole eval pipeline (cache, batching, XLA-compiled Lab) gives the same crop as
    # its steps run eagerly.
    image = image_ops.resize_short_side(image_ops.decode_image(encoded, 1, CROP), CROP)
    eager_l, eager_ab = image_ops.to_l_ab(image_ops.eval_crop(image, CROP))
    batch = next(iter(data.build_eval_rgb_dataset(str(tmp_path), split="all", crop_size=CROP)))
    np.testing.assert_allclose(batch["l_norm"][0].numpy(), eager_l.numpy(), atol=1e-5)
    np.testing.assert_allclose(batch["ab_norm"][0].numpy(), eager_ab.numpy(), atol=1e-5)


def test_train_crops_jitter_scale_and_flip():
    # Red encodes the column: a crop's first and last red values give the span it covered.
    width = 60
    image = np.zeros((40, width, 3), np.uint8)
    image[..., 0] = np.round(np.linspace(0, 255, width))[None, :]
    spans, flips = [], 0
    for i in range(60):
        rgb = image_ops.train_crop(
            tf.constant(image), CROP, tf.constant([i, 5], tf.int64), 1.25
        ).numpy()
        first, last = rgb[:, 0, 0].mean() * 255, rgb[:, -1, 0].mean() * 255
        flips += int(last < first)
        spans.append(abs(last - first) / 255 * (width - 1) * CROP / (CROP - 1))
    # Short side 40, zoom 1.25: crop sides 32..40 pixels (a pixel of slack for the resize).
    assert 31 <= min(spans) < 34 and 38 < max(spans) <= 41, (min(spans), max(spans))
    assert 15 <= flips <= 45  # ~half of 60 flipped
    # Equal seeds, equal crops.
    seed = tf.constant([3, 4], tf.int64)
    a, b = (image_ops.train_crop(tf.constant(image), CROP, seed).numpy() for _ in range(2))
    np.testing.assert_array_equal(a, b)


def test_cached_lab_planes_and_uncached_rgb_crops_agree(tmp_path):
    # Cached training crops resample Lab planes, uncached ones RGB: with the same seed (same
    # geometry) they may differ only by that resampling.
    save(tmp_path / "one" / "a.png", photo(60, 80, seed=4))
    root = str(tmp_path / "one")

    def batch(seed: int, **kwargs):
        ds = data.build_dataset(
            root, split="all", training=True, batch_size=1, crop_size=CROP, seed=seed, **kwargs
        )
        l_norm, ab_norm = next(iter(ds))
        return l_norm.numpy() * 50, ab_norm.numpy() * 110  # Lab units

    cached, uncached, other = batch(3), batch(3, cache_limit_bytes=0), batch(4)
    assert (
        np.abs(cached[0] - uncached[0]).mean() < 0.1
        and np.abs(cached[1] - uncached[1]).mean() < 0.2
    )
    assert np.abs(cached[0] - uncached[0]).max() < 2 and np.abs(cached[1] - uncached[1]).max() < 3
    assert np.abs(cached[1] - other[1]).mean() > 1  # another crop: far apart


def test_training_batches_repeat_with_a_seed_and_vary_without_repeating(tmp_path):
    root = folder_of(tmp_path, 4)

    def first_epoch(seed):
        ds = data.build_dataset(
            root, split="all", training=True, batch_size=4, crop_size=CROP, seed=seed
        )
        return next(iter(ds))[1].numpy()

    np.testing.assert_array_equal(first_epoch(5), first_epoch(5))
    ds = data.build_dataset(root, split="all", training=True, batch_size=4, crop_size=CROP, seed=5)
    one, two = (next(iter(ds))[1].numpy() for _ in range(2))  # two epochs: new crops
    assert np.abs(one - two).max() > 0.01


# --- real-world files ----------------------------------------------------------------------


def test_rgb_mode_variants_decode_like_pil(tmp_path):
    base = photo(30, 40, seed=1)
    gray = save(tmp_path / "gray.png", np.asarray(Image.fromarray(base).convert("L")))
    got = decode_file(gray)
    assert got.shape == (30, 40, 3) and (got == got[..., :1]).all()
    np.testing.assert_array_equal(got[..., 0], np.asarray(Image.open(gray)))

    palette = save(tmp_path / "palette.png", np.zeros((1, 1, 3), np.uint8))
    Image.fromarray(base).convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(palette)
    np.testing.assert_array_equal(
        decode_file(palette), np.asarray(Image.open(palette).convert("RGB"))
    )

    rgba = base.copy()
    alpha = np.full((30, 40), 255, np.uint8)
    alpha[:, 20:] = 0  # right half transparent -> white
    alpha[:, 10:20] = 128
    rgba_path = str(tmp_path / "rgba.png")
    Image.fromarray(np.dstack([rgba, alpha])).save(rgba_path)
    got = decode_file(rgba_path).astype(int)
    np.testing.assert_array_equal(got[:, :10], base[:, :10])
    np.testing.assert_array_equal(got[:, 20:], 255)
    expected = np.round(base[:, 10:20] * (128 / 255) + 255 * (1 - 128 / 255))
    assert np.abs(got[:, 10:20] - expected).max() <= 1

    cmyk = save(tmp_path / "cmyk.jpg", np.zeros((1, 1, 3), np.uint8))
    Image.fromarray(base).convert("CMYK").save(cmyk, quality=95)
    assert Image.open(cmyk).mode == "CMYK"
    reference = np.asarray(Image.open(cmyk).convert("RGB")).astype(int)
    assert np.abs(decode_file(cmyk).astype(int) - reference).mean() < 1.5  # measured ~0.5


def test_16_bit_png_keeps_its_high_precision(tmp_path):
    # 511 / 65535 is 1.99 / 255: rounding gives 2, keeping only the high byte would give 1.
    values = np.array([[0, 511, 32767, 33023, 65535]], np.uint16)
    expected = np.round(values / 257.0)
    rgb16 = np.dstack([values, values[:, ::-1], np.full_like(values, 257 * 77)])
    path = str(tmp_path / "rgb16.png")
    tf.io.write_file(path, tf.io.encode_png(tf.constant(rgb16)))
    got = decode_file(path)
    np.testing.assert_array_equal(got[..., 0], expected)
    np.testing.assert_array_equal(got[..., 1], expected[:, ::-1])
    np.testing.assert_array_equal(got[..., 2], 77)
    gray_path = str(tmp_path / "gray16.png")
    Image.fromarray(values.astype(np.int32), mode="I").convert("I;16").save(gray_path)
    assert Image.open(gray_path).mode == "I;16"
    np.testing.assert_array_equal(decode_file(gray_path)[..., 1], expected)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_honoured(tmp_path, orientation):
    path = str(tmp_path / f"o{orientation}.jpg")
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(quadrants(32, 48)).save(path, exif=exif, quality=95)
    [found] = sources.scan_source(str(tmp_path)).images
    assert found.orientation == orientation
    got = decode_file(path, found.orientation).astype(int)
    upright = np.asarray(ImageOps.exif_transpose(Image.open(path))).astype(int)
    assert got.shape == upright.shape
    # Both decode with libjpeg, in slightly different ways (measured: max 3, mean < 0.1); a
    # wrong orientation would differ by ~200 over whole quadrants.
    assert np.abs(got - upright).max() <= 8 and np.abs(got - upright).mean() < 1
    if orientation == 6:  # "rotate 90 clockwise to view": red moves from top-left to top-right
        assert got.shape == (48, 32, 3)
        np.testing.assert_allclose(got[4, -4], RED, atol=12)
        np.testing.assert_allclose(got[-4, 4], WHITE, atol=12)


def test_bad_files_are_skipped_counted_and_named(tmp_path, caplog):
    root = tmp_path / "mixed"
    good = {
        "ok.jpg": save(root / "ok.jpg", photo(40, 50)),
        "tiny.png": save(root / "tiny.png", photo(5, 7)),
        "sub dir/ünïcode 名前 spaced.png": save(
            root / "sub dir" / "ünïcode 名前 spaced.png", photo(40, 40)
        ),
        "UPPER.JPEG": save(root / "UPPER.JPEG", photo(40, 44)),
    }
    save(root / "huge.png", photo(300, 300))  # 90,000 pixels > max_pixels below
    (root / "empty.jpg").write_bytes(b"")
    (root / "notes.jpg").write_text("not a picture, just a name")
    full = (root / "ok.jpg").read_bytes()
    (root / "cut.jpg").write_bytes(full[: len(full) // 2])
    save(root / "whole.png", photo(40, 40))
    png = (root / "whole.png").read_bytes()
    (root / "whole.png").unlink()
    (root / "cut.png").write_bytes(png[: len(png) // 2])
    (root / "readme.txt").write_text("ignored: not an image extension")

    with caplog.at_level(logging.WARNING, logger="colorize_tf.data.sources"):
        scan = sources.scan_source(str(root), max_pixels=50_000)
    assert sorted(im.name for im in scan.images) == sorted(good)
    reasons = {os.path.basename(p): r for p, r in scan.skipped}
    assert sorted(reasons) == ["cut.jpg", "cut.png", "empty.jpg", "huge.png", "notes.jpg"]
    assert "empty file" in reasons["empty.jpg"]
    assert "not an image" in reasons["notes.jpg"]
    assert "truncated" in reasons["cut.jpg"].lower() and "truncated" in reasons["cut.png"].lower()
    assert "300x300" in reasons["huge.png"] and "max_pixels=50,000" in reasons["huge.png"]
    assert "skipped 5 of 9" in caplog.text
    for name in reasons:
        assert name in caplog.text

    ds = data.build_eval_rgb_dataset(
        str(root), split="all", crop_size=CROP, batch_size=8, max_pixels=50_000
    )
    batch = next(iter(ds))
    assert batch["rgb"].shape == (4, CROP, CROP, 3)  # tiny.png upscaled to the crop
    assert sorted(paths_of(ds)) == sorted(good.values())
    train = data.build_dataset(
        str(root), split="all", training=True, batch_size=2, crop_size=CROP, max_pixels=50_000
    )
    assert sum(int(b[0].shape[0]) for b in train) == 4


def test_a_folder_without_usable_images_fails_before_training(tmp_path):
    root = tmp_path / "bad"
    root.mkdir()
    (root / "a.jpg").write_bytes(b"")
    (root / "b.png").write_text("text")
    with pytest.raises(ValueError, match=f"no usable images in {root}.*2 skipped") as info:
        data.build_dataset(str(root), training=True, batch_size=2)
    assert "a.jpg: empty file" in str(info.value)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match=f"no usable images in {empty}.*0 candidate"):
        sources.list_images(str(empty))


def test_panoramas_are_capped_so_memory_stays_bounded():
    image = tf.zeros((10, 400, 3), tf.uint8)  # 40:1
    assert image_ops.resize_short_side(image, 20).shape == (20, 80, 3)  # center 4:1 kept


# --- the split and sharding ----------------------------------------------------------------


def test_split_is_deterministic_disjoint_and_stable_when_files_are_added():
    names = [f"dir{i % 7}/photo_{i:04d}.jpg" for i in range(1000)]
    splits = sources.assign_splits(names, 0.1)
    assert splits == sources.assign_splits(list(names), 0.1)
    val = {n for n, s in zip(names, splits, strict=True) if s == "val"}
    assert 70 <= len(val) <= 130  # ~10% of 1000 (binomial sd ~ 9.5)
    more = names + [f"new/{i}.png" for i in range(500)]
    assert sources.assign_splits(more, 0.1)[:1000] == splits
    assert sources.assign_splits(list(reversed(names)), 0.1) == list(reversed(splits))


def test_tiny_sources_get_a_train_and_a_val_image():
    for count in (2, 3, 7):
        names = [f"{i}.jpg" for i in range(count)]
        splits = sources.assign_splits(names, 0.1)
        assert splits.count("val") >= 1 and splits.count("train") >= 1, (count, splits)
    assert sources.assign_splits(["a.jpg", "b.jpg"], 0.9).count("train") == 1


def test_list_images_follows_the_split_and_max_images(tmp_path):
    root = folder_of(tmp_path, 12)
    everything = sources.list_images(root)
    train, val = (
        sources.list_images(root, "train", val_fraction=0.3),
        sources.list_images(root, "val", val_fraction=0.3),
    )
    assert sorted(train + val) == everything and not set(train) & set(val) and val
    names = [os.path.basename(p) for p in everything]
    tags = sources.assign_splits(names, 0.3)
    assert [os.path.basename(p) for p in val] == [
        n for n, t in zip(names, tags, strict=True) if t == "val"
    ]
    assert sources.list_images(root, max_images=5) == everything[:5]


def test_input_context_shards_files_and_sets_the_per_replica_batch(tmp_path):
    root = folder_of(tmp_path, 9)
    shards = []
    for pipeline in range(2):
        context = tf.distribute.InputContext(2, pipeline, 2)
        eval_ds = data.build_eval_rgb_dataset(
            root, split="all", crop_size=CROP, batch_size=4, input_context=context
        )
        shards.append(set(paths_of(eval_ds)))
        train = data.build_dataset(
            root, split="all", training=True, batch_size=4, crop_size=CROP,
            input_context=context, drop_remainder=True,
        )  # fmt: skip
        assert train.element_spec[0].shape == (2, CROP, CROP, 1)  # global 4 over 2 replicas
    assert not shards[0] & shards[1]
    assert shards[0] | shards[1] == set(sources.list_images(root)) and len(shards[0]) == 5


def test_cache_limit_only_decides_caching(tmp_path, caplog):
    root = folder_of(tmp_path, 3)
    with caplog.at_level(logging.INFO, logger="colorize_tf.data.pipeline"):
        ds = data.build_dataset(
            root, split="all", training=False, batch_size=3, crop_size=CROP, cache_limit_bytes=0
        )
    assert "not caching" in caplog.text
    assert next(iter(ds))[0].shape == (3, CROP, CROP, 1)


# --- TFRecord ------------------------------------------------------------------------------


def test_prepare_then_read_tfrecords(tmp_path):
    root = tmp_path / "photos"
    for i in range(6):
        save(root / f"p{i}.jpg", photo(60, 80, seed=i), quality=95)
    exif = Image.Exif()
    exif[0x0112] = 8
    save(root / "odd name é.jpg", quadrants(48, 64), exif=exif, quality=95)
    out = tmp_path / "shards"
    paths = prepare.prepare_tfrecords(
        str(root), str(out), num_shards=3, short_side=40, progress=False
    )
    assert [os.path.basename(p) for p in paths] == [
        f"all-0000{i}-of-00003.tfrecord" for i in range(3)
    ]
    assert not list(out.glob("*.partial"))

    records = {}
    for raw in tf.data.TFRecordDataset(paths):
        example = tf.train.Example.FromString(raw.numpy())
        feature = example.features.feature
        name = feature["image/filename"].bytes_list.value[0].decode()
        image = tf.io.decode_jpeg(feature["image/encoded"].bytes_list.value[0]).numpy()
        assert (
            feature["image/height"].int64_list.value[0],
            feature["image/width"].int64_list.value[0],
        ) == image.shape[:2]
        records[name] = (image, feature["image/split"].bytes_list.value[0].decode())
    assert sorted(records) == sorted(
        sources.scan_source(str(root)).images[i].name for i in range(7)
    )
    tags = dict(zip(sorted(records), sources.assign_splits(sorted(records), 0.1), strict=True))
    assert {n: s for n, (_, s) in records.items()} == tags
    rotated, _ = records["odd name é.jpg"]
    assert rotated.shape == (53, 40, 3)  # orientation 8 applied: portrait, short side 40
    np.testing.assert_allclose(rotated[-4, 4], RED, atol=16)  # 90 deg counter-clockwise:
    np.testing.assert_allclose(rotated[4, 4], GREEN, atol=16)  # top-left went bottom-left

    # Read back through both spellings; the records' split equals the folder's split.
    for source in (f"tfrecord:{out}/all-*", f"{out}/*.tfrecord"):
        val = data.build_eval_rgb_dataset(source, split="val", crop_size=CROP, batch_size=8)
        assert sorted(os.path.basename(p) for p in paths_of(val)) == sorted(
            os.path.basename(p) for p in sources.list_images(str(root), "val")
        )
    from_records = next(
        iter(
            data.build_eval_rgb_dataset(
                f"{out}/*.tfrecord", split="all", crop_size=CROP, batch_size=7
            )
        )
    )
    from_folder = next(
        iter(data.build_eval_rgb_dataset(str(root), split="all", crop_size=CROP, batch_size=7))
    )
    assert np.abs(from_records["rgb"].numpy() - from_folder["rgb"].numpy()).mean() < 0.02
    train = data.build_dataset(
        f"{out}/*.tfrecord", split="train", training=True, batch_size=2, crop_size=CROP
    )
    assert train.element_spec[1].shape.as_list() == [None, CROP, CROP, 2]
    assert sum(int(b[0].shape[0]) for b in train) == len(records) - len(paths_of(val))

    with pytest.raises(FileExistsError, match="--overwrite"):
        prepare.prepare_tfrecords(str(root), str(out), num_shards=2, progress=False)
    assert data_cli.main(["prepare", str(root), str(out), "--shards", "2"]) == 2
    assert (
        data_cli.main(
            ["prepare", str(root), str(out), "--shards", "2", "--overwrite", "--short-side", "32"]
        )
        == 0
    )
    assert sorted(p.name for p in out.iterdir()) == [
        "all-00000-of-00002.tfrecord",
        "all-00001-of-00002.tfrecord",
    ]


def test_corrupt_records_are_dropped_not_fatal(tmp_path):
    path = str(tmp_path / "mixed.tfrecord")
    good = tf.io.encode_jpeg(tf.constant(photo(40, 40))).numpy()
    with tf.io.TFRecordWriter(path) as writer:
        for i, payload in enumerate([good, b"\xff\xd8\xff garbage", good, good[: len(good) // 3]]):
            writer.write(prepare._example(payload, f"{i}.jpg".encode(), b"train", 40, 40))
    ds = data.build_dataset(path, split="all", training=False, batch_size=4, crop_size=CROP)
    assert sum(int(b[0].shape[0]) for b in ds) == 2


def test_tfrecord_source_with_no_match_fails_early(tmp_path):
    with pytest.raises(ValueError, match="no TFRecord files match"):
        data.build_dataset(f"tfrecord:{tmp_path}/none-*", training=True, batch_size=2)


# --- TFDS ----------------------------------------------------------------------------------


class ColorizeTfTinyPhotos(tfds.core.GeneratorBasedBuilder):
    """A real TFDS data set, built on local disk by the test: 6 train and 3 validation images."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        features = tfds.features.FeaturesDict(
            {
                "image": tfds.features.Image(shape=(None, None, 3)),
                "image/filename": tfds.features.Text(),
            }
        )
        return tfds.core.DatasetInfo(builder=self, features=features)

    def _split_generators(self, dl_manager):
        return {
            "train": self._generate_examples(6, 0),
            "validation": self._generate_examples(3, 100),
        }

    def _generate_examples(self, count, offset):
        for i in range(count):
            yield (
                i,
                {"image": photo(40, 50, seed=offset + i), "image/filename": f"img{offset + i}.png"},
            )


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
    data_dir = str(tmp_path_factory.mktemp("tfds"))
    ColorizeTfTinyPhotos(data_dir=data_dir).download_and_prepare()
    return data_dir


@pytest.mark.integration
def test_tfds_source_reads_a_locally_built_dataset(tfds_dir):
    source = "tfds:colorize_tf_tiny_photos"
    counts = {}
    for split in ("train", "val", "all"):
        ds = data.build_eval_rgb_dataset(
            source, split=split, crop_size=CROP, batch_size=16, tfds_data_dir=tfds_dir
        )
        counts[split] = sorted(paths_of(ds))
    assert counts["train"] == [f"img{i}.png" for i in range(6)]
    assert counts["val"] == [f"img{i}.png" for i in range(100, 103)]
    assert counts["all"] == sorted(counts["train"] + counts["val"])
    # An explicit TFDS split is one pool, split by name hash like a folder.
    names = [f"img{i}.png" for i in range(6)]
    tags = sources.assign_splits(names, 0.5)
    explicit = data.build_eval_rgb_dataset(
        f"{source}:train",
        split="val",
        val_fraction=0.5,
        crop_size=CROP,
        batch_size=16,
        tfds_data_dir=tfds_dir,
    )
    # The in-graph hash agrees with the eager one (the tiny-source fallback is for file lists).
    assert sorted(paths_of(explicit)) == [n for n, t in zip(names, tags, strict=True) if t == "val"]
    train = data.build_dataset(
        source,
        split="train",
        training=True,
        batch_size=4,
        crop_size=CROP,
        tfds_data_dir=tfds_dir,
        max_images=4,
    )
    assert [int(b[0].shape[0]) for b in train] == [4]


def test_tfds_offline_fails_fast_with_a_clear_message(tmp_path, monkeypatch):
    with socket.socket() as probe:  # a local port nobody listens on: the connection is refused
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    monkeypatch.setattr(sources, "TFDS_PROBE_ADDRESS", ("127.0.0.1", closed_port))
    start = time.monotonic()
    with pytest.raises(
        ValueError, match=r"'coco/2017' is not prepared under .*unreachable \(offline\?\)"
    ):
        data.build_dataset(
            "tfds:coco/2017", training=True, batch_size=2, tfds_data_dir=str(tmp_path)
        )
    assert time.monotonic() - start < 30
    with pytest.raises(ValueError, match="download is off"):
        data.build_dataset(
            "tfds:coco/2017",
            training=True,
            batch_size=2,
            tfds_data_dir=str(tmp_path),
            tfds_download=False,
        )


# --- preview -------------------------------------------------------------------------------


def test_preview_command_draws_a_grid(tmp_path, capsys):
    out = tmp_path / "runs" / "preview.png"
    assert (
        data_cli.main(
            ["preview", "samples", "--out", str(out), "--count", "3", "--crop-size", "64"]
        )
        == 0
    )
    assert f"wrote {out}" in capsys.readouterr().out
    with Image.open(out) as grid:
        assert grid.width > 400 and grid.height > 500  # 3 columns x 3 rows of images
        pixels = np.asarray(grid.convert("RGB")).astype(int)
    assert np.abs(pixels[..., 0] - pixels[..., 2]).mean() > 2  # the ab and RGB rows have color
    train_out = tmp_path / "train.png"
    assert data.preview("samples", str(train_out), count=2, crop_size=64, training=True) == str(
        train_out
    )
    assert train_out.stat().st_size > 10_000


# --- one walk, one reader, one alpha-over-white, one pixel limit ----------------------------


def test_one_folder_walk_serves_training_the_numpy_path_and_colorize(tmp_path):
    from colorize_tf.data import numpy_pipeline
    from colorize_tf.inference import files

    root = tmp_path / "walk"
    names = ["b.jpg", "A.PNG", "a/z.jpeg", "a/b/c.webp", "c/x.gif", "c/y.bmp", "top.JPE"]
    for name in names:
        save(root / name, photo(12, 12), format="PNG" if name.lower().endswith("png") else None)
    (root / "notes.txt").write_text("not an image")
    save(root / "scan.tif", photo(12, 12))  # PIL reads TIFF, TensorFlow does not
    out = root / "c" / "out"  # colorize's --out inside the input folder: not walked
    save(out / "old.png", photo(12, 12))

    walked = [relative_name(p, str(root)) for p in walk_files(str(root))]
    # A folder's own files (sorted) first, then its subfolders in order; case kept, matched in any.
    assert walked == [
        "A.PNG", "b.jpg", "top.JPE", "a/z.jpeg", "a/b/c.webp", "c/x.gif", "c/y.bmp",
        "c/out/old.png",
    ]  # fmt: skip
    scanned = [im.name for im in sources.scan_source(str(root)).images]
    assert scanned == walked  # 8 files, all readable
    _, numpy_paths = numpy_pipeline.list_image_files(str(root))
    assert [relative_name(p, str(root)) for p in numpy_paths] == walked
    jobs, problems = files.find_inputs([str(root)], out)
    assert problems == []
    colorize_names = [str(job.name) for job in jobs]
    # colorize: the same walk with TIFF added and its own --out left out.
    assert colorize_names == ["A", "b", "scan", "top", "a/z", "a/b/c", "c/x", "c/y"]


def test_alpha_over_white_in_numpy_and_in_the_graph_agree():
    rng = np.random.default_rng(7)
    color = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    alpha = rng.integers(0, 256, (64, 64, 1), dtype=np.uint8)
    alpha[0, 0], alpha[0, 1] = 0, 255  # fully transparent -> white, opaque -> unchanged
    composited = over_white(color, alpha)
    np.testing.assert_array_equal(composited[0, 0], [255, 255, 255])
    np.testing.assert_array_equal(composited[0, 1], color[0, 1])
    in_graph = image_ops.over_white(tf.constant(color), tf.constant(alpha)).numpy()
    np.testing.assert_array_equal(in_graph, composited)  # uint8: identical
    as_float = image_ops.over_white(tf.constant(color / 255.0), tf.constant(alpha / 255.0))
    assert np.abs(np.round(as_float.numpy() * 255.0) - composited).max() <= 1


def test_one_reader_gives_the_tf_decode_of_alpha_and_names_the_file(tmp_path):
    rng = np.random.default_rng(3)
    rgba = rng.integers(0, 256, (24, 40, 4), dtype=np.uint8)
    path = save(tmp_path / "clear.png", rgba)
    from_pil = np.asarray(read_rgb(path)).astype(int)
    from_tf = decode_file(path).astype(int)
    assert from_pil.shape == from_tf.shape == (24, 40, 3)
    assert np.abs(from_pil - from_tf).max() <= 1  # float32 in TF, float32 in numpy: rounding
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageFileError, match=r"empty\.jpg: empty file"):
        read_rgb(str(tmp_path / "empty.jpg"))
    (tmp_path / "notes.jpg").write_text("text")
    with pytest.raises(ImageFileError, match=r"notes\.jpg: not an image"):
        read_rgb(str(tmp_path / "notes.jpg"))
    with pytest.raises(ImageFileError, match=r"clear\.png: too large: 40x24 .* max_pixels=959"):
        read_rgb(path, max_pixels=959)
    assert np.asarray(read_rgb(path, max_pixels=960)).shape == (24, 40, 3)


def test_one_pixel_limit_for_training_evaluation_and_colorize():
    import inspect

    from colorize_tf import config
    from colorize_tf.data import numpy_pipeline, tfrecords
    from colorize_tf.evaluation import protocol
    from colorize_tf.inference import files, images

    assert config.DEFAULT_MAX_PIXELS == 100_000_000
    assert config.DataConfig().max_pixels == config.DEFAULT_MAX_PIXELS  # training
    defaults = {
        f.__qualname__: inspect.signature(f).parameters["max_pixels"].default
        for f in (
            sources.scan_source, sources.list_images, data.decoded_images, data.build_dataset,
            data.build_eval_rgb_dataset, tfrecords.prepare_tfrecords, numpy_pipeline.decode_photo,
            images.read_image, files.colorize_files,
        )
    }  # fmt: skip
    assert set(defaults.values()) == {config.DEFAULT_MAX_PIXELS}, defaults
    # evaluation: None means the same default as training
    assert inspect.signature(protocol.evaluate).parameters["max_pixels"].default is None
