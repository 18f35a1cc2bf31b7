"""The input path without TensorFlow (``colorize_tf.data.numpy_pipeline``, what the training loop
feeds where TensorFlow is absent): the split shared with the tf.data pipeline, decoding, training
batches and validation crops."""

from pathlib import Path

import numpy as np
import pytest
from helpers import smooth_photo
from PIL import Image

from colorize_tf.data import numpy_pipeline as npd


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Twelve smooth, colorful photos in nested folders: PNG and JPEG, one EXIF-rotated."""
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(12):
        image = Image.fromarray(smooth_photo(rng, i, 96, 128))
        folder = root / ("a" if i % 2 else "b/c")
        folder.mkdir(parents=True, exist_ok=True)
        if i % 3:
            image.save(folder / f"photo {i}.png")
        else:
            exif = Image.Exif()
            exif[0x0112] = 6 if i == 0 else 1
            image.save(folder / f"photo {i}.jpg", quality=95, exif=exif)
    return root


# --- the split shared with the TF pipeline ------------------------------------------------------


def test_split_is_identical_to_the_tensorflow_pipeline(photos):
    data = pytest.importorskip("colorize_tf.data.sources")  # the reference needs TensorFlow
    rng = np.random.default_rng(1)
    names = [
        "",
        "a",
        "abcdefg",
        "abcdefgh",
        "abcdefghi",
        "x" * 300,
        "über/ß é.jpg",
        "日本/写真.png",
    ]
    names += [f"dir{rng.integers(100)}/img_{rng.integers(1 << 40)}.jpg" for _ in range(400)]
    np.testing.assert_array_equal(npd.split_fractions(names), data.split_fractions(names).numpy())
    for fraction in (0.0, 0.05, 0.1, 0.5, 0.9):
        assert npd.assign_splits(names, fraction) == data.assign_splits(names, fraction)
    for tiny in (["one.jpg"], ["a.jpg", "b.jpg"], names[:3]):  # the "lend one file" rule
        assert npd.assign_splits(tiny, 0.1) == data.assign_splits(tiny, 0.1)
    for split in ("train", "val", "all"):
        assert npd.split_files(str(photos), split) == data.list_images(str(photos), split)


def test_siphash_matches_the_reference_vectors():
    # SipHash-2-4 paper, appendix A: key 00..0f, message 00..0e.
    key = (int.from_bytes(bytes(range(8)), "little"), int.from_bytes(bytes(range(8, 16)), "little"))
    assert npd.siphash24(key, bytes(range(15))) == 0xA129CA6149BE45E5
    assert npd.siphash24(key, b"") == 0x726FDB47DD0E0E31


def test_bad_sources_fail_with_a_message(tmp_path):
    with pytest.raises(npd.DataSourceError, match="not 'samples' or an existing folder"):
        npd.split_files(str(tmp_path / "missing"), "train")
    with pytest.raises(npd.DataSourceError, match="no image files"):
        npd.split_files(str(tmp_path), "train")


# --- decoding and crops -------------------------------------------------------------------------


def test_decode_applies_exif_orientation_alpha_and_short_side(tmp_path):
    stored = np.zeros((40, 60, 3), np.uint8)
    stored[:, :30] = (255, 0, 0)  # left half red, right half blue as stored
    stored[:, 30:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise: the stored left becomes the top
    Image.fromarray(stored).save(tmp_path / "rotated.jpg", quality=95, exif=exif)
    image = npd.decode_photo(str(tmp_path / "rotated.jpg"), 20)
    assert image.size == (20, 30) and image.mode == "RGB"  # (width, height): upright portrait
    pixels = np.asarray(image).astype(int)
    assert pixels[2, 10, 0] > 200 and pixels[2, 10, 2] < 60  # top: red
    assert pixels[-3, 10, 2] > 200 and pixels[-3, 10, 0] < 60  # bottom: blue

    rgba = np.zeros((32, 32, 4), np.uint8)  # fully transparent black: shown as white
    Image.fromarray(rgba).save(tmp_path / "clear.png")
    assert np.asarray(npd.decode_photo(str(tmp_path / "clear.png"), 32)).min() == 255

    Image.fromarray(np.zeros((10, 100, 3), np.uint8)).save(tmp_path / "panorama.png")
    assert npd.decode_photo(str(tmp_path / "panorama.png"), 20).size == (80, 20)  # aspect <= 4

    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff not a photo")  # skipped, not fatal
    assert (
        len(npd.decode_photos([str(tmp_path / "broken.jpg"), str(tmp_path / "clear.png")], 8)) == 1
    )
    with pytest.raises(npd.DataSourceError, match="none of 1 image files"):
        npd.decode_photos([str(tmp_path / "broken.jpg")], 8)


def test_train_batches_are_reproducible_epoch_permutations_with_flips():
    ramp = np.tile(
        np.linspace(0, 255, 80, dtype=np.uint8)[None, :, None], (60, 1, 3)
    )  # bright right
    images = [Image.fromarray(ramp) for _ in range(5)]
    batches = npd.TrainBatches(images, batch_size=4, crop_size=32, seed=3, workers=2)
    first = [b for b, _ in zip(batches, range(6), strict=False)]
    again = npd.TrainBatches(images, batch_size=4, crop_size=32, seed=3, workers=1)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=False))
    assert first[0].shape == (4, 32, 32, 3) and first[0].dtype == np.uint8
    other = next(iter(npd.TrainBatches(images, batch_size=4, crop_size=32, seed=4)))
    assert not np.array_equal(first[0], other)
    visits = [i for b in range(5) for i in batches._indices(b)]  # 20 draws = 4 epochs of 5
    assert all(sorted(visits[e * 5 : (e + 1) * 5]) == list(range(5)) for e in range(4))
    crops = np.concatenate(first).astype(int)
    flipped = crops[:, :, 0].mean(axis=(1, 2)) > crops[:, :, -1].mean(axis=(1, 2))
    assert 0 < flipped.sum() < len(flipped)  # some crops mirrored, some not
    assert npd.measure_throughput(batches, 0.2) > 0


def test_eval_crops_are_centered_squares(photos):
    paths = npd.split_files(str(photos), "all")[:3]
    crops = npd.eval_crops(npd.decode_photos(paths, 64), 64)
    assert crops.shape == (3, 64, 64, 3) and crops.dtype == np.uint8
