"""Run-directory I/O through tf.io.gfile: path joining that keeps ``scheme://``, and checkpoints on
TensorFlow's in-memory ``ram://`` filesystem (a stand-in for ``gs://`` that needs no network)."""

import json
import uuid

import keras
import numpy as np
import pytest
import tensorflow as tf

from colorize_tf.training import checkpoint, fileio


@pytest.fixture
def ram_dir():
    path = f"ram://test-fileio-{uuid.uuid4().hex}"
    yield path
    if tf.io.gfile.exists(path):
        tf.io.gfile.rmtree(path)


def test_join_keeps_the_scheme_and_local_paths_unchanged(tmp_path):
    assert (
        fileio.join("gs://bucket/runs/x", "checkpoints", "ckpt.npz")
        == "gs://bucket/runs/x/checkpoints/ckpt.npz"
    )
    assert fileio.join("gs://bucket/runs/x/", "logs") == "gs://bucket/runs/x/logs"
    assert fileio.join("ram://runs/t", "a") == "ram://runs/t/a"
    assert fileio.join("runs/quickstart", "generator.keras") == "runs/quickstart/generator.keras"
    assert fileio.join(tmp_path, "a") == str(tmp_path / "a")
    assert (
        fileio.is_remote("gs://b")
        and fileio.is_remote("ram://x")
        and not fileio.is_remote("/tmp/gs:/x")
    )
    assert fileio.basename("gs://bucket/runs/x/ckpt-000000001.npz") == "ckpt-000000001.npz"


def test_text_bytes_rename_remove_on_ram(ram_dir):
    path = fileio.join(ram_dir, "sub", "a.txt")
    assert fileio.listdir(fileio.join(ram_dir, "sub")) == [] and not fileio.isfile(path)
    fileio.makedirs(fileio.join(ram_dir, "sub"))
    fileio.write_text(path + ".tmp", "héllo")
    fileio.rename(path + ".tmp", path)
    fileio.write_text(path + ".tmp", "again")
    fileio.rename(path + ".tmp", path)  # over an existing file
    assert fileio.read_text(path) == "again" and fileio.isfile(path)
    assert fileio.listdir(fileio.join(ram_dir, "sub")) == ["a.txt"]
    fileio.remove(path)
    fileio.remove(path)  # already gone: no error
    assert not fileio.isfile(path)


def _groups(seed: int) -> dict:
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="dense")], name="g")
    return {"generator": model, "discriminator": None}


def test_checkpoints_save_prune_and_restore_on_ram(ram_dir):
    directory = fileio.join(ram_dir, "checkpoints")
    assert checkpoint.latest(directory) is None
    groups = _groups(0)
    for step in (1, 2, 3):
        written = checkpoint.save(
            directory, step, groups, {"phase": "pretrain", "epochs_done": step}, keep=2
        )
        assert written == f"{directory}/ckpt-{step:09d}.npz"
    assert sorted(tf.io.gfile.listdir(directory)) == [
        "ckpt-000000002.json",
        "ckpt-000000002.npz",
        "ckpt-000000003.json",
        "ckpt-000000003.npz",
    ]
    path, progress = checkpoint.latest(directory)
    assert path == f"{directory}/ckpt-000000003.npz" and progress == {
        "phase": "pretrain",
        "epochs_done": 3,
        "step": 3,
    }
    assert json.loads(fileio.read_text(f"{directory}/ckpt-000000003.json"))["step"] == 3

    other = _groups(1)
    before = [np.array(v.numpy()) for v in other["generator"].variables]
    checkpoint.restore(path, other)
    after = [np.array(v.numpy()) for v in other["generator"].variables]
    assert any(not np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    for mine, theirs in zip(
        groups["generator"].variables, other["generator"].variables, strict=True
    ):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())


def test_an_unfinished_checkpoint_is_ignored(ram_dir):
    directory = fileio.join(ram_dir, "checkpoints")
    checkpoint.save(directory, 1, _groups(0), {"phase": "pretrain"})
    fileio.write_bytes(
        fileio.join(directory, "ckpt-000000002.npz"), b"arrays without a progress record"
    )
    assert checkpoint.latest(directory)[1]["step"] == 1
