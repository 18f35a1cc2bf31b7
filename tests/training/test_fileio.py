"""Run-directory I/O through tf.io.gfile: path joining that keeps ``scheme://``, and checkpoints on
TensorFlow's in-memory ``ram://`` filesystem (a stand-in for ``gs://`` that needs no network);
without TensorFlow, local files through ``os`` and a clear error for a remote path."""

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

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
    assert fileio.join("runs/quickstart", "model") == "runs/quickstart/model"
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


_WITHOUT_TENSORFLOW = textwrap.dedent(
    """
    import json, sys
    sys.modules["tensorflow"] = None  # a JAX machine without TensorFlow
    import keras, numpy as np
    from colorize_tf.training import checkpoint, fileio
    assert fileio.tf is None and keras.backend.backend() == "jax"
    root = sys.argv[1]
    directory = fileio.join(root, "checkpoints")
    fileio.makedirs(directory)
    fileio.write_text(fileio.join(root, "a.tmp"), "héllo")
    fileio.rename(fileio.join(root, "a.tmp"), fileio.join(root, "a.txt"))
    found = {"text": fileio.read_text(fileio.join(root, "a.txt"))}
    fileio.remove(fileio.join(root, "a.txt"))
    fileio.remove(fileio.join(root, "a.txt"))  # already gone: no error
    found["listed"] = sorted(fileio.listdir(root))
    found["missing"] = fileio.listdir(fileio.join(root, "nowhere"))

    def groups(seed):
        keras.utils.set_random_seed(seed)
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="dense")], name="g")
        return {"generator": model}

    mine = groups(0)
    for step in (1, 2, 3):
        checkpoint.save(directory, step, mine, {"phase": "pretrain"}, keep=2)
    path, progress = checkpoint.latest(directory)
    other = groups(1)
    found["differed"] = any(
        not np.array_equal(np.asarray(a), np.asarray(b))
        for a, b in zip(mine["generator"].variables, other["generator"].variables)
    )
    checkpoint.restore(path, other)
    found["files"] = sorted(fileio.listdir(directory))
    found["progress"] = progress
    found["equal"] = all(
        np.array_equal(np.asarray(a), np.asarray(b))
        for a, b in zip(mine["generator"].variables, other["generator"].variables)
    )
    try:
        fileio.makedirs("gs://bucket/run")
    except OSError as err:
        found["remote"] = str(err)
    print(json.dumps(found))
    """
)


def test_without_tensorflow_local_files_and_checkpoints_work(tmp_path):
    """Keras on JAX where TensorFlow is not installed: the workdir's files go through ``os``,
    checkpoints save, prune and restore, and a ``gs://`` path says what it needs."""
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_TENSORFLOW, str(tmp_path)],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["text"] == "héllo"
    assert found["listed"] == ["checkpoints"] and found["missing"] == []
    assert found["files"] == [
        "ckpt-000000002.json",
        "ckpt-000000002.npz",
        "ckpt-000000003.json",
        "ckpt-000000003.npz",
    ]
    assert found["progress"] == {"phase": "pretrain", "step": 3}
    assert found["differed"] and found["equal"]  # another seed's weights, then the stored ones
    assert found["remote"] == "gs://bucket/run: a gs:// path needs TensorFlow (tf.io.gfile)"
