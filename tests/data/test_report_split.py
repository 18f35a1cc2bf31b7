"""The report split: a deterministic share that neither training nor its choice of epoch sees."""

import numpy as np
import pytest

from colorize_tf.data import sources, spec
from colorize_tf.data.numpy_pipeline import assign_splits as numpy_assign_splits

NAMES = [f"dir{i % 7}/photo_{i:04d}.jpg" for i in range(1000)]


def test_three_disjoint_parts_by_the_hash_with_val_unchanged():
    splits = sources.assign_splits(NAMES, 0.1)
    counts = {name: splits.count(name) for name in ("train", "val", "report")}
    assert sum(counts.values()) == 1000
    assert 70 <= counts["val"] <= 130 and 70 <= counts["report"] <= 130  # ~10 % each
    # val holds exactly the files it held before report existed (report_fraction 0).
    before = sources.assign_splits(NAMES, 0.1, report_fraction=0.0)
    assert set(before) == {"train", "val"}
    assert [s == "val" for s in splits] == [s == "val" for s in before]
    # report comes out of train only, from the top of the hash range.
    fractions = sources.split_fractions(NAMES).numpy()
    report = np.array(splits) == "report"
    assert fractions[report].min() >= np.float32(0.9) > fractions[~report].max()
    # Stable when files are added, and the same without TensorFlow.
    more = NAMES + [f"new/{i}.png" for i in range(300)]
    assert sources.assign_splits(more, 0.1)[:1000] == splits
    assert numpy_assign_splits(NAMES, 0.1) == splits


def test_report_and_val_split_names_select_files(tmp_path):
    for i in range(40):
        (tmp_path / f"{i:02d}.png").write_bytes(b"")  # listed only; list_images pre-scans
    names = [f"{i:02d}.png" for i in range(40)]
    tags = sources.assign_splits(names, 0.1)
    scan = sources.Scan(
        str(tmp_path), [sources.ImageFile(str(tmp_path / n), n, 8, 8, 1) for n in names], []
    )
    for split in ("train", "val", "report"):
        chosen = [im.name for im in sources.select_split(scan, split, 0.1)]
        assert chosen == [n for n, t in zip(names, tags, strict=True) if t == split]
    assert len(sources.select_split(scan, "all", 0.1)) == 40
    with pytest.raises(ValueError, match=r"split 'report' .* is empty .*report_fraction=0.0"):
        sources.select_split(scan, "report", 0.1, report_fraction=0.0)
    with pytest.raises(ValueError, match="split must be one of"):
        sources.select_split(scan, "test", 0.1)


def test_tiny_sources_still_get_train_and_val_and_bad_shares_fail():
    for count in (2, 3, 7):
        splits = sources.assign_splits([f"{i}.jpg" for i in range(count)], 0.1)
        assert splits.count("val") >= 1 and splits.count("train") >= 1, (count, splits)
    assert spec.splits_from_fractions([0.5, 0.95, 0.99], 0.1) == ["val", "report", "train"]
    with pytest.raises(ValueError, match=r"at most 1, got 0.6 \+ 0.5"):
        spec.splits_from_fractions([0.5], 0.6, 0.5)
    with pytest.raises(ValueError, match="report_fraction must be in"):
        spec.splits_from_fractions([0.5], 0.1, 1.0)
