"""The evaluation's stripe bookkeeping: period and margin in crop pixels, the smooth gradients."""

import numpy as np

from colorize_tf.evaluation import protocol


def test_period_and_margin_follow_the_network_size():
    assert protocol.stripe_period(256, 128) == 8  # the shipped preset: 2x upsampled
    assert protocol.stripe_period(256, 256) == 4
    assert protocol.stripe_period(256, None) == 4
    assert protocol.stripe_period(64, 256) is None  # below 2 pixels: not measured
    assert protocol.stripe_period(256, 96) is None  # not a whole number of pixels
    assert protocol.stripe_margin(256, 8) == 32
    assert protocol.stripe_margin(64, 8) == 12  # shrunk so that one 32-pixel tile fits
    assert protocol.stripe_margin(32, 8) is None


def test_gradients_are_smooth_gray_and_clean_outputs_score_zero():
    images = protocol.gradient_images(128)
    assert images.shape == (4, 128, 128, 3) and images.dtype == np.uint8
    assert (images[..., 0] == images[..., 2]).all() and images.min() == 40 and images.max() == 220
    # A "colorizer" that returns its gray input: no chroma, no stripes.
    result = protocol.gradient_stripes(lambda image: image, 128, 4)
    assert len(result["each"]) == 4 and result["max"] < 0.05
    # NaN, not an error, where the crop is too small to measure.
    assert np.isnan(protocol._rgb_stripes(images[:, :16, :16], 4)).all()


def test_a_model_size_without_a_whole_period_reports_no_stripes_and_strict_json(tmp_path):
    import json

    rng = np.random.default_rng(0)
    dataset = [{"rgb": rng.uniform(0, 1, (2, 64, 64, 3)), "path": np.array([b"a.png", b"b.png"])}]
    period = protocol.stripe_period(256, 96)  # None: 4 * 256 / 96 is not whole
    rows, samples, _ = protocol.score_batches(lambda image: image, dataset, period=period)
    assert len(rows) == 2 and "ours_stripes" not in rows[0] and "ours_psnr" in rows[0]
    summary = protocol.write_report(tmp_path, rows, samples, {"model": "m", "data": "d",
                                    "split": "val", "size": 64}, [])  # fmt: skip

    def refuse(constant):
        raise AssertionError(f"{constant} in metrics.json")

    stored = json.loads((tmp_path / "metrics.json").read_text(), parse_constant=refuse)
    assert "stripes" not in stored["ours"] and stored["ours"]["psnr"]["mean"] == 100.0
    table = (tmp_path / "report.md").read_text()
    assert "nan" not in table and "| ours | 100.00 (100.00) |" in table and " - |" in table
    assert summary["count"] == 2
