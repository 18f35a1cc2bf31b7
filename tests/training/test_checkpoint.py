"""Checkpoints hold the running phase's state only, restore across the phase boundary, and
mirror the newest one into a second directory (local disk -> Drive / bucket)."""

import io
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from colorize_tf.models import build_discriminator, build_generator
from colorize_tf.training import checkpoint
from colorize_tf.training.gan import ColorizationGAN

SIZE = 32


def trained_gan(seed: int = 0, ema_decay: float = 0.0):
    """A tiny GAN and its three optimizers after one real step of each phase (Adam moments set;
    with ``ema_decay`` the generator's average moved too).

    Keys hold Keras' auto-generated optimizer names ("adam_2/..."): like ``train.run``, start
    them afresh, as a new process would."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    generator = build_generator(encoder_filters=4, decoder_filters=[8, 8, 8, 8, 8])
    discriminator = build_discriminator(base_filters=4)
    gan = ColorizationGAN(generator, discriminator, ema_decay=ema_decay)
    optimizers = {k: keras.optimizers.Adam(1e-3) for k in ("pretrain", "g_gan", "d_gan")}
    rng = np.random.default_rng(seed)
    batch = (
        tf.constant(rng.uniform(-1, 1, (2, SIZE, SIZE, 1)), tf.float32),
        tf.constant(rng.uniform(-0.3, 0.3, (2, SIZE, SIZE, 2)), tf.float32),
    )
    gan.compile(optimizers["pretrain"], phase="pretrain")
    gan.train_step(batch)
    gan.compile(optimizers["g_gan"], optimizers["d_gan"], phase="gan")
    gan.train_step(batch)
    return gan, optimizers


def trained(seed: int = 0):
    """``trained_gan``'s networks and optimizers: (generator, discriminator, optimizers)."""
    gan, optimizers = trained_gan(seed)
    return gan.generator, gan.discriminator, optimizers


def values(groups: dict) -> list[np.ndarray]:
    return [np.array(v.numpy()) for _, v in checkpoint._named_variables(groups)]


def stored_groups(path) -> set[str]:
    with np.load(path) as stored:
        return {key.split("/", 1)[0] for key in stored.files}


def test_each_phase_stores_only_its_networks_and_optimizers(tmp_path):
    generator, discriminator, optimizers = trained()
    pretrain = checkpoint.save(
        tmp_path / "p",
        1,
        checkpoint.phase_groups("pretrain", generator, discriminator, optimizers),
        {"phase": "pretrain"},
    )
    gan = checkpoint.save(
        tmp_path / "g",
        2,
        checkpoint.phase_groups("gan", generator, discriminator, optimizers),
        {"phase": "gan"},
    )
    assert stored_groups(pretrain) == {"generator", "optimizer_pretrain"}
    assert stored_groups(gan) == {
        "generator",
        "discriminator",
        "optimizer_g_gan",
        "optimizer_d_gan",
    }
    # Adam keeps two moments per trainable variable: a pretraining checkpoint is the generator's
    # weights plus about twice its trainable ones, with no GAN optimizer in it.
    n_g = sum(int(np.prod(v.shape)) for v in generator.trainable_variables)
    with np.load(pretrain) as stored:
        floats = sum(stored[k].size for k in stored.files)
    assert floats == generator.count_params() + 2 * n_g + 2  # + iteration count, learning rate
    with pytest.raises(ValueError, match="unknown phase 'warmup'"):
        checkpoint.phase_groups("warmup", generator, discriminator, optimizers)


def test_resume_across_the_phase_boundary_and_from_the_old_layout(tmp_path):
    generator, discriminator, optimizers = trained(0)
    gan_groups = checkpoint.phase_groups("gan", generator, discriminator, optimizers)
    path = checkpoint.save(tmp_path, 7, gan_groups, {"phase": "gan"})
    everything = {
        "generator": generator,
        "discriminator": discriminator,
        **{f"optimizer_{k}": v for k, v in optimizers.items()},
    }
    old = checkpoint.save(tmp_path / "old", 7, everything, {"phase": "gan"})

    for source in (path, old):  # a fresh process's models and optimizers, then restore
        g2, d2, o2 = trained(1)
        fresh = checkpoint.phase_groups("gan", g2, d2, o2)
        assert any(
            not np.array_equal(a, b) for a, b in zip(values(fresh), values(gan_groups), strict=True)
        )
        checkpoint.restore(source, fresh)  # no pretraining optimizer needed
        for a, b in zip(values(fresh), values(gan_groups), strict=True):
            np.testing.assert_array_equal(a, b)
        assert (
            int(o2["g_gan"].iterations.numpy()) == int(optimizers["g_gan"].iterations.numpy()) == 1
        )

    # A GAN checkpoint cannot stand in for a pretraining one: it lacks that optimizer.
    with pytest.raises(ValueError, match="missing e.g."):
        checkpoint.restore(path, checkpoint.phase_groups("pretrain", *trained(1)))


def test_mirror_keeps_only_the_newest_and_latest_looks_in_both(tmp_path):
    generator, discriminator, optimizers = trained()
    groups = checkpoint.phase_groups("pretrain", generator, discriminator, optimizers)
    local, remote = tmp_path / "local", tmp_path / "remote"
    remote.mkdir()
    (remote / "ckpt-000000001.tmp.npz").write_bytes(b"half a copy killed mid-write")
    for step in (1, 2, 3):
        written = checkpoint.save(local, step, groups, {"phase": "pretrain", "epochs_done": step})
        mirrored = checkpoint.mirror(written, remote)
    assert sorted(p.name for p in local.iterdir()) == [
        "ckpt-000000002.json",
        "ckpt-000000002.npz",
        "ckpt-000000003.json",
        "ckpt-000000003.npz",
    ]
    assert sorted(p.name for p in remote.iterdir()) == ["ckpt-000000003.json", "ckpt-000000003.npz"]
    assert mirrored == str(remote / "ckpt-000000003.npz")
    assert (remote / "ckpt-000000003.npz").read_bytes() == (
        local / "ckpt-000000003.npz"
    ).read_bytes()
    assert json.loads((remote / "ckpt-000000003.json").read_text())["epochs_done"] == 3

    checkpoint.save(local, 4, groups, {"phase": "pretrain"})  # not mirrored yet
    assert checkpoint.latest(local, remote)[0] == str(local / "ckpt-000000004.npz")
    assert checkpoint.latest(remote, local)[0] == str(local / "ckpt-000000004.npz")
    assert checkpoint.latest(tmp_path / "gone", remote)[0] == str(remote / "ckpt-000000003.npz")
    assert checkpoint.latest(tmp_path / "gone") is None


def test_uncompressed_arrays_round_trip_bit_for_bit(tmp_path):
    generator, discriminator, optimizers = trained()
    groups = checkpoint.phase_groups("gan", generator, discriminator, optimizers)
    path = checkpoint.save(tmp_path, 1, groups, {"phase": "gan"})
    with np.load(io.BytesIO(open(path, "rb").read())) as stored:
        assert all(stored[k].dtype != object for k in stored.files)
        assert len(stored.files) == len(values(groups))


def test_the_generators_average_is_held_by_both_phases_and_restored(tmp_path):
    gan, optimizers = trained_gan(0, ema_decay=0.9)
    nets = (gan.generator, gan.discriminator, optimizers)
    raw = [np.array(v.numpy()) for v in gan.generator.variables]
    averaged = gan.averaged_generator_weights()
    assert len(averaged) == len(gan.generator.variables)
    assert any(not np.array_equal(a, b) for a, b in zip(raw, averaged, strict=True))
    paths = {}
    for step, phase in enumerate(("pretrain", "gan"), 1):
        groups = checkpoint.phase_groups(phase, *nets, gan)
        paths[phase] = checkpoint.save(tmp_path / phase, step, groups, {"phase": phase})
    assert stored_groups(paths["pretrain"]) == {"generator", "optimizer_pretrain", "average"}
    assert stored_groups(paths["gan"]) == {
        "generator",
        "discriminator",
        "optimizer_g_gan",
        "optimizer_d_gan",
        "average",
    }
    with np.load(paths["gan"]) as stored:
        kept = [stored[k] for k in sorted(stored.files) if k.startswith("average/")]
    assert len(kept) == len(averaged)

    for phase, path in paths.items():  # a fresh process restores the average, not the weights
        fresh, fresh_optimizers = trained_gan(1, ema_decay=0.9)
        groups = checkpoint.phase_groups(
            phase, fresh.generator, fresh.discriminator, fresh_optimizers, fresh
        )
        checkpoint.restore(path, groups)
        for got, expected in zip(fresh.averaged_generator_weights(), averaged, strict=True):
            np.testing.assert_array_equal(got, expected)

    # A GAN keeping no average adds no group: the checkpoints of such runs stay as they were.
    plain, plain_optimizers = trained_gan(0)
    groups = checkpoint.phase_groups(
        "gan", plain.generator, plain.discriminator, plain_optimizers, plain
    )
    assert "average" not in groups
    # A checkpoint without the average cannot restore a run that keeps one.
    plain_path = checkpoint.save(tmp_path / "plain", 1, groups, {"phase": "gan"})
    fresh, fresh_optimizers = trained_gan(1, ema_decay=0.9)
    groups = checkpoint.phase_groups(
        "gan", fresh.generator, fresh.discriminator, fresh_optimizers, fresh
    )
    with pytest.raises(ValueError, match="missing e.g."):
        checkpoint.restore(plain_path, groups)
