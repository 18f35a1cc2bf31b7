"""``python -m colorize_tf.train`` end to end on tiny images: artifacts, resume after SIGKILL,
config errors, multi-worker. Each test runs the real command in a subprocess, except the
``ram://`` workdir test (TensorFlow's in-memory filesystem lives inside one process)."""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import smooth_photo
from PIL import Image

# The marked tier: every test here runs a training (see conftest.py).
pytestmark = pytest.mark.integration

TINY = [
    "data.crop_size=64",
    "data.batch_size=2",
    "data.val_batch_size=2",
    "model.width=0.0625",
    "train.sample_images=2",
]


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Eight smooth, colorful 96x96 images (a learnable signal, not noise)."""
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray(smooth_photo(rng, i, 96, 96)).save(root / f"photo {i}.png")
    return root


def train_cmd(workdir: Path, source: Path, *overrides: str) -> list[str]:
    sets = [f"data.source={source}", *TINY, *overrides]
    return [sys.executable, "-m", "colorize_tf.train", "--workdir", str(workdir)] + [
        arg for s in sets for arg in ("--set", s)
    ]


def run(cmd, timeout=600, env=None):
    env = {**os.environ, "CI": "true", "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def last_step(workdir: Path) -> int:
    records = sorted((workdir / "checkpoints").glob("ckpt-*.json"))
    return json.loads(records[-1].read_text())["step"] if records else 0


PRESET_FILES = ["config.json", "metadata.json", "model.weights.h5"]


def preset_files(folder: Path) -> list[str]:
    """The files of a preset folder (the run's product), sorted; [] when there is none."""
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_training_writes_every_artifact(tmp_path, photos):
    workdir = tmp_path / "run"
    phases = [
        "train.pretrain.epochs=2",
        "train.pretrain.steps_per_epoch=3",
        "train.gan.epochs=1",
        "train.gan.steps_per_epoch=3",
        "train.checkpoint_every=2",
        "train.ema_decay=0.5",
        "train.select_best=true",
        "train.select_metric=psnr",
    ]
    out = run(train_cmd(workdir, photos, *phases))
    assert out.returncode == 0, out.stderr[-3000:]
    for name in ("config.yaml", "summary.json", "history_pretrain.csv"):
        assert (workdir / name).is_file(), name
    assert preset_files(workdir / "model") == PRESET_FILES  # the product, a preset folder
    assert preset_files(workdir / "best") == PRESET_FILES  # the best epoch so far
    assert last_step(workdir) == 9  # 2 x 3 pretrain + 1 x 3 gan
    pretrain = list(csv.DictReader((workdir / "history_pretrain.csv").open()))
    gan = list(csv.DictReader((workdir / "history_gan.csv").open()))
    assert [r["epoch"] for r in pretrain] == ["0", "1"] and [r["epoch"] for r in gan] == ["0"]
    assert "val_psnr" in pretrain[0] and "val_gray_psnr" in pretrain[0] and "d_loss" in gan[0]
    assert "val_dcf" in pretrain[0] and "val_gray_cf" in pretrain[0]
    summary = json.loads((workdir / "summary.json").read_text())
    assert set(summary["val"]) >= {"psnr", "gray_psnr", "ssim", "gray_ssim", "l1", "gray_l1"}
    assert set(summary["val"]) >= {"cf", "dcf", "gray_cf", "gray_dcf"}
    assert all(np.isfinite(v) for v in summary["val"].values())
    assert "gray (a=b=0)" in out.stdout

    # Selection: each epoch's averaged generator is scored (psnr here); the product is the best.
    scores = [
        (float(row["selection_score"]), phase, int(row["epoch"]) + 1)
        for phase, rows in (("pretrain", pretrain), ("gan", gan))
        for row in rows
    ]
    for row in pretrain + gan:
        assert float(row["selection_score"]) == pytest.approx(float(row["ema_psnr"]), abs=1e-4)
    best = max(scores)
    product = summary["product"]
    assert (product["phase"], product["epoch"]) == best[1:]
    assert product["score"] == pytest.approx(best[0], abs=1e-4)
    assert product["ema"] is True and product["ema_decay"] == 0.5
    assert product["select_metric"] == "psnr" and product["criterion"] == "psnr"
    selection = json.loads((workdir / "best" / "metadata.json").read_text())["selection"]
    assert (selection["phase"], selection["epoch"]) == best[1:]
    metadata = json.loads((workdir / "model" / "metadata.json").read_text())
    assert metadata["step"] == 9 and metadata["product"] == product
    assert metadata["val"] == pytest.approx(summary["val"])
    assert metadata["config"] == "quickstart" and "tensorflow" in metadata["backend"]
    assert sorted(p.name for p in (workdir / "samples").glob("*.png")) == [
        "gan-epoch-001.png",
        "pretrain-epoch-001.png",
        "pretrain-epoch-002.png",
    ]
    assert list((workdir / "logs" / "gan" / "train").glob("events.out.tfevents.*"))
    assert list((workdir / "logs" / "samples").glob("events.out.tfevents.*"))

    from colorize_tf.models import presets

    generator = presets.load_preset(workdir / "model")
    assert generator(np.zeros((1, 64, 64, 1), np.float32)).shape == (1, 64, 64, 2)
    assert generator.input_size == 64  # the crop size it trained at
    # The product is the best epoch's generator: the same weights as best/ (both float16).
    best_generator = presets.load_preset(workdir / "best")
    for mine, theirs in zip(generator.weights, best_generator.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(mine), np.asarray(theirs))

    # Rerunning a finished run changes nothing and trains no further step.
    again = run(train_cmd(workdir, photos, *phases))
    assert again.returncode == 0 and last_step(workdir) == 9
    assert "resumed from ckpt-000000009" in again.stdout


def test_sigkill_then_rerun_resumes_from_the_last_checkpoint(tmp_path, photos):
    workdir = tmp_path / "run"
    phases = [
        "train.pretrain.epochs=1",
        "train.pretrain.steps_per_epoch=40",
        "train.gan.epochs=1",
        "train.gan.steps_per_epoch=4",
        "train.checkpoint_every=5",
    ]
    cmd = train_cmd(workdir, photos, *phases)
    env = {**os.environ, "CI": "true", "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 300
    while last_step(workdir) < 10 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = last_step(workdir)
    assert 10 <= killed_at < 40, (
        f"process was not killed mid-phase (checkpoint at step {killed_at})"
    )

    out = run(cmd)
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"resumed from ckpt-{killed_at:09d}" in out.stdout
    assert f"{killed_at} step(s) done" in out.stdout or "step(s) done" in out.stdout
    assert last_step(workdir) == 44  # the step count continues; nothing is trained twice
    progress = json.loads(sorted((workdir / "checkpoints").glob("*.json"))[-1].read_text())
    assert progress["phase"] == "gan" and progress["epochs_done"] == 1


def test_resume_with_another_model_is_refused(tmp_path, photos):
    workdir = tmp_path / "run"
    phases = ["train.pretrain.epochs=1", "train.pretrain.steps_per_epoch=1", "train.gan.epochs=0"]
    assert run(train_cmd(workdir, photos, *phases)).returncode == 0
    out = run(train_cmd(workdir, photos, *phases, "model.width=0.125"))
    assert out.returncode == 2
    assert "resuming would not fit the saved weights" in out.stderr
    assert preset_files(workdir / "model") == PRESET_FILES  # nothing the user had is lost


def test_config_typo_names_the_key(tmp_path, photos):
    out = run(train_cmd(tmp_path / "run", photos, "train.gan.epoch=3"))
    assert out.returncode == 2
    assert "unknown config key(s) ['epoch'] in section 'train.gan'" in out.stderr
    assert "Traceback" not in out.stderr


def test_tpu_without_a_tpu_is_a_clear_error(tmp_path, photos):
    out = run(train_cmd(tmp_path / "run", photos, "runtime.strategy=tpu"), timeout=120)
    assert out.returncode == 2
    assert "no TPU is named" in out.stderr and "Traceback" not in out.stderr


def test_two_worker_multi_worker_mirrored_run(tmp_path, photos):
    """A real 2-process MultiWorkerMirroredStrategy cluster on 127.0.0.1, 2 steps (1 per phase)."""
    import socket

    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    phases = [
        "train.pretrain.epochs=1",
        "train.pretrain.steps_per_epoch=1",
        "train.gan.epochs=1",
        "train.gan.steps_per_epoch=1",
        "runtime.strategy=multi_worker",
        "data.batch_size=4",
    ]
    procs = []
    for index in range(2):
        tf_config = {
            "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
            "task": {"type": "worker", "index": index},
        }
        env = {
            **os.environ,
            "CI": "true",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "TF_CONFIG": json.dumps(tf_config),
        }
        cmd = train_cmd(tmp_path / f"worker{index}", photos, *phases)
        procs.append(
            subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
            )
        )
    outs = [p.communicate(timeout=600) for p in procs]
    for proc, (stdout, stderr) in zip(procs, outs, strict=True):
        assert proc.returncode == 0, stderr[-3000:]
        assert "CollectiveAllReduceStrategy with 2 replica(s)" in stdout
    assert last_step(tmp_path / "worker0") == 2  # the chief checkpoints
    assert preset_files(tmp_path / "worker0" / "model") == PRESET_FILES
    assert not (tmp_path / "worker1" / "model").exists()


def test_workdir_on_a_gfile_filesystem(tmp_path, photos, monkeypatch, capsys):
    """``--workdir ram://...`` (TensorFlow's in-memory filesystem, standing in for ``gs://``):
    every artifact lands there, nothing in the local cwd, and a second run resumes from it."""
    import tensorflow as tf

    from colorize_tf.cli import train

    workdir = "ram://runs/t"
    if tf.io.gfile.exists(workdir):
        tf.io.gfile.rmtree(workdir)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("CI", "true")
    phases = [
        "train.pretrain.epochs=1",
        "train.pretrain.steps_per_epoch=2",
        "train.gan.epochs=1",
        "train.gan.steps_per_epoch=2",
        "train.checkpoint_every=100",
    ]
    argv = ["--workdir", workdir] + [
        a for s in [f"data.source={photos}", *TINY, *phases] for a in ("--set", s)
    ]

    def ram_step() -> int:
        records = sorted(tf.io.gfile.glob(f"{workdir}/checkpoints/ckpt-*.json"))
        return json.loads(tf.io.gfile.GFile(records[-1]).read())["step"]

    try:
        assert train.main(argv) == 0
        for name in (
            "config.yaml",
            "model/config.json",
            "model/model.weights.h5",
            "model/metadata.json",
            "summary.json",
            "history_pretrain.csv",
            "history_gan.csv",
        ):
            assert tf.io.gfile.exists(f"{workdir}/{name}"), name
        assert not tf.io.gfile.exists(f"{workdir}/best")  # no selection asked for
        assert ram_step() == 4
        assert sorted(tf.io.gfile.listdir(f"{workdir}/samples")) == [
            "gan-epoch-001.png",
            "pretrain-epoch-001.png",
        ]
        assert tf.io.gfile.glob(f"{workdir}/logs/gan/train/events.out.tfevents.*")
        assert tf.io.gfile.glob(f"{workdir}/logs/samples/events.out.tfevents.*")
        assert not tf.io.gfile.glob(f"{workdir}/checkpoints/*.tmp.*")
        assert list(cwd.iterdir()) == []  # nothing written locally (no "gs:"/"ram:" folder either)
        summary = json.loads(tf.io.gfile.GFile(f"{workdir}/summary.json").read())
        assert summary["step"] == 4
        # Without selection the product is the last generator (no average kept).
        assert summary["product"] == {
            "phase": "gan",
            "epoch": "last",
            "ema": False,
            "ema_decay": 0.0,
            "select_metric": "",
        }

        # One more GAN epoch: resumes from the ram:// checkpoint and the step count continues.
        capsys.readouterr()
        assert train.main([*argv, "--set", "train.gan.epochs=2"]) == 0
        assert "resumed from ckpt-000000004" in capsys.readouterr().out
        assert ram_step() == 6
        gan_rows = list(
            csv.DictReader(tf.io.gfile.GFile(f"{workdir}/history_gan.csv").read().splitlines())
        )
        assert [r["epoch"] for r in gan_rows] == ["0", "1"]
        assert list(cwd.iterdir()) == []

        assert train.main([*argv, "--set", "train.gan.epochs=2", "--set", "model.width=0.125"]) == 2
        assert "resuming would not fit the saved weights" in capsys.readouterr().err
    finally:
        if tf.io.gfile.exists(workdir):
            tf.io.gfile.rmtree(workdir)


def test_local_checkpoints_mirror_only_the_newest_into_the_workdir(tmp_path, photos):
    """``runtime.local_checkpoints``: saves go to local disk (the newest two kept), the workdir
    (e.g. on Drive, whose trash keeps every deleted file) holds one copy of the newest, and a
    fresh machine without the local disk resumes from that copy, across the phase boundary."""
    import shutil

    workdir, local = tmp_path / "run", tmp_path / "local"
    phases = [
        "train.pretrain.epochs=1",
        "train.pretrain.steps_per_epoch=4",
        "train.gan.epochs=1",
        "train.gan.steps_per_epoch=2",
        "train.checkpoint_every=2",
        f"runtime.local_checkpoints={local}",
    ]
    out = run(train_cmd(workdir, photos, *phases))
    assert out.returncode == 0, out.stderr[-3000:]
    (local_dir,) = local.iterdir()  # one folder per workdir, named after it
    assert local_dir.name.startswith("run-")
    assert sorted(p.name for p in local_dir.iterdir()) == [
        "ckpt-000000004.json",
        "ckpt-000000004.npz",
        "ckpt-000000006.json",
        "ckpt-000000006.npz",
    ]
    mirror = workdir / "checkpoints"
    assert sorted(p.name for p in mirror.iterdir()) == ["ckpt-000000006.json", "ckpt-000000006.npz"]
    assert (mirror / "ckpt-000000006.npz").read_bytes() == (
        local_dir / "ckpt-000000006.npz"
    ).read_bytes()
    with np.load(mirror / "ckpt-000000006.npz") as stored:  # a GAN-phase checkpoint
        assert {k.split("/", 1)[0] for k in stored.files} == {
            "generator",
            "discriminator",
            "optimizer_g_gan",
            "optimizer_d_gan",
        }

    shutil.rmtree(local)  # a new runtime: the local disk is gone, the workdir is not
    out = run(train_cmd(workdir, photos, *phases, "train.gan.epochs=2"))
    assert out.returncode == 0, out.stderr[-3000:]
    assert "resumed from ckpt-000000006" in out.stdout
    assert sorted(p.name for p in mirror.iterdir()) == ["ckpt-000000008.json", "ckpt-000000008.npz"]


def test_saves_inside_a_resumed_epoch_record_the_steps_before_the_interruption(tmp_path, photos):
    """A run stopped after step 4 of a 6-step epoch resumes with 2 steps to go; a save after
    step 5 must record step 5 of that epoch (not step 1 of the resumed fit), or a second
    interruption would train steps twice and shift the epoch ends."""
    workdir = tmp_path / "run"
    phases = ["train.pretrain.epochs=1", "train.pretrain.steps_per_epoch=6", "train.gan.epochs=0"]
    out = run(train_cmd(workdir, photos, *phases, "train.checkpoint_every=2"))
    assert out.returncode == 0, out.stderr[-3000:]
    for suffix in (".npz", ".json"):  # as if killed between steps 4 and 6
        (workdir / "checkpoints" / f"ckpt-000000006{suffix}").unlink()
    shutil.rmtree(workdir / "model")
    out = run(train_cmd(workdir, photos, *phases, "train.checkpoint_every=1"))
    assert out.returncode == 0, out.stderr[-3000:]
    assert "first epoch resumes after step 4" in out.stdout
    record = json.loads((workdir / "checkpoints" / "ckpt-000000005.json").read_text())
    assert (record["epochs_done"], record["step_in_epoch"], record["step"]) == (0, 5, 5)
    assert last_step(workdir) == 6


def test_tpu_config_on_a_cpu_fails_at_once_naming_the_tpu_build(tmp_path, photos):
    """``--config tpu`` (runtime.tpu=local) where there is no TPU: an error within the connect
    timeout that says how TensorFlow reaches a TPU VM, not a traceback or a CPU run."""
    cmd = [
        sys.executable,
        "-m",
        "colorize_tf.train",
        "--config",
        "tpu",
        "--workdir",
        str(tmp_path / "run"),
        "--set",
        f"data.source={photos}",
        "--set",
        "model.encoder_weights=none",
    ]
    started = time.time()
    out = run(cmd, timeout=300)
    assert out.returncode == 2, out.stderr[-3000:]
    assert "no TPU at 'local'" in out.stderr and "tensorflow-tpu" in out.stderr
    assert "Traceback" not in out.stderr
    assert time.time() - started < 200
