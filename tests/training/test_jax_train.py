"""The JAX training path: ``jax_data`` (split, decode, crops), ``jax_train`` (the loop), the
weights folder it writes (``colorize_tf.models.weights``), the recipe it shares with the
TensorFlow loop and ``gpu/`` (torchvision mapping, the device script's Python part).

This process runs Keras' default TensorFlow backend; the one training run happens in a
subprocess under ``KERAS_BACKEND=jax`` with TensorFlow made unimportable (the GPU machine has
none), and this process reloads what it wrote.
"""

import importlib.util
import itertools
import json
import math
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from helpers import smooth_photo
from PIL import Image

from colorize_tf.config import PhaseConfig, load_config
from colorize_tf.data import numpy_pipeline as jax_data
from colorize_tf.models import ResNet18Encoder, build_generator, load_encoder_weights
from colorize_tf.models import weights as weights_folder
from colorize_tf.training import jax_loop as jax_train
from colorize_tf.training import recipe

REPO_ROOT = Path(__file__).resolve().parents[2]
TINY_WIDTH = 0.0625


def _gpu_module(name: str):
    """Import ``gpu/<name>.py`` (a script folder, not a package)."""
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "gpu" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)
    spec.loader.exec_module(module)
    return module


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
    np.testing.assert_array_equal(
        jax_data.split_fractions(names), data.split_fractions(names).numpy()
    )
    for fraction in (0.0, 0.05, 0.1, 0.5, 0.9):
        assert jax_data.assign_splits(names, fraction) == data.assign_splits(names, fraction)
    for tiny in (["one.jpg"], ["a.jpg", "b.jpg"], names[:3]):  # the "lend one file" rule
        assert jax_data.assign_splits(tiny, 0.1) == data.assign_splits(tiny, 0.1)
    for split in ("train", "val", "all"):
        assert jax_data.split_files(str(photos), split) == data.list_images(str(photos), split)


def test_siphash_matches_the_reference_vectors():
    # SipHash-2-4 paper, appendix A: key 00..0f, message 00..0e.
    key = (int.from_bytes(bytes(range(8)), "little"), int.from_bytes(bytes(range(8, 16)), "little"))
    assert jax_data.siphash24(key, bytes(range(15))) == 0xA129CA6149BE45E5
    assert jax_data.siphash24(key, b"") == 0x726FDB47DD0E0E31


def test_bad_sources_fail_with_a_message(tmp_path):
    with pytest.raises(jax_data.DataSourceError, match="not 'samples' or an existing folder"):
        jax_data.split_files(str(tmp_path / "missing"), "train")
    with pytest.raises(jax_data.DataSourceError, match="no image files"):
        jax_data.split_files(str(tmp_path), "train")


# --- decoding and crops -------------------------------------------------------------------------


def test_decode_applies_exif_orientation_alpha_and_short_side(tmp_path):
    stored = np.zeros((40, 60, 3), np.uint8)
    stored[:, :30] = (255, 0, 0)  # left half red, right half blue as stored
    stored[:, 30:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise: the stored left becomes the top
    Image.fromarray(stored).save(tmp_path / "rotated.jpg", quality=95, exif=exif)
    image = jax_data.decode_photo(str(tmp_path / "rotated.jpg"), 20)
    assert image.size == (20, 30) and image.mode == "RGB"  # (width, height): upright portrait
    pixels = np.asarray(image).astype(int)
    assert pixels[2, 10, 0] > 200 and pixels[2, 10, 2] < 60  # top: red
    assert pixels[-3, 10, 2] > 200 and pixels[-3, 10, 0] < 60  # bottom: blue

    rgba = np.zeros((32, 32, 4), np.uint8)  # fully transparent black: shown as white
    Image.fromarray(rgba).save(tmp_path / "clear.png")
    assert np.asarray(jax_data.decode_photo(str(tmp_path / "clear.png"), 32)).min() == 255

    Image.fromarray(np.zeros((10, 100, 3), np.uint8)).save(tmp_path / "panorama.png")
    assert jax_data.decode_photo(str(tmp_path / "panorama.png"), 20).size == (80, 20)  # aspect <= 4

    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff not a photo")  # skipped, not fatal
    assert (
        len(jax_data.decode_photos([str(tmp_path / "broken.jpg"), str(tmp_path / "clear.png")], 8))
        == 1
    )
    with pytest.raises(jax_data.DataSourceError, match="none of 1 image files"):
        jax_data.decode_photos([str(tmp_path / "broken.jpg")], 8)


def test_train_batches_are_reproducible_epoch_permutations_with_flips():
    ramp = np.tile(
        np.linspace(0, 255, 80, dtype=np.uint8)[None, :, None], (60, 1, 3)
    )  # bright right
    images = [Image.fromarray(ramp) for _ in range(5)]
    batches = jax_data.TrainBatches(images, batch_size=4, crop_size=32, seed=3, workers=2)
    first = [b for b, _ in zip(batches, range(6), strict=False)]
    again = jax_data.TrainBatches(images, batch_size=4, crop_size=32, seed=3, workers=1)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=False))
    assert first[0].shape == (4, 32, 32, 3) and first[0].dtype == np.uint8
    other = next(iter(jax_data.TrainBatches(images, batch_size=4, crop_size=32, seed=4)))
    assert not np.array_equal(first[0], other)
    visits = [i for b in range(5) for i in batches._indices(b)]  # 20 draws = 4 epochs of 5
    assert all(sorted(visits[e * 5 : (e + 1) * 5]) == list(range(5)) for e in range(4))
    crops = np.concatenate(first).astype(int)
    flipped = crops[:, :, 0].mean(axis=(1, 2)) > crops[:, :, -1].mean(axis=(1, 2))
    assert 0 < flipped.sum() < len(flipped)  # some crops mirrored, some not
    assert jax_data.measure_throughput(batches, 0.2) > 0


def test_eval_crops_are_centered_squares(photos):
    paths = jax_data.split_files(str(photos), "all")[:3]
    crops = jax_data.eval_crops(jax_data.decode_photos(paths, 64), 64)
    assert crops.shape == (3, 64, 64, 3) and crops.dtype == np.uint8


# --- the recipe both loops share, the weights folder, the model mapping ---------------------------


def test_the_recipe_gives_both_loops_the_configured_optimizers_and_steps():
    config = load_config(
        None,
        [
            "train.pretrain.learning_rate=0.001",
            "train.pretrain.beta_1=0.8",
            "train.gan.learning_rate=0.0003",
            "train.gan.beta_1=0.4",
            "train.gan.beta_2=0.99",
            "train.d_learning_rate=0.00005",
        ],
    )
    optimizers = recipe.make_optimizers(config.train)
    expected = {
        "pretrain": (1e-3, 0.8, 0.999),
        "g_gan": (3e-4, 0.4, 0.99),
        "d_gan": (5e-5, 0.4, 0.99),
    }
    for name, (rate, beta_1, beta_2) in expected.items():
        opt = optimizers[name]
        assert (float(opt.learning_rate), opt.beta_1, opt.beta_2) == pytest.approx(
            (rate, beta_1, beta_2)
        ), name
    same_rate = recipe.make_optimizers(load_config(None, ["train.gan.learning_rate=0.0003"]).train)
    assert float(same_rate["d_gan"].learning_rate) == pytest.approx(3e-4)  # 0: the GAN phase's
    assert all(type(o) is keras.optimizers.Adam for o in optimizers.values())

    # Steps: the configured steps_per_epoch, else the whole batches the images fill.
    assert recipe.phase_steps(PhaseConfig(epochs=3), train_images=20, global_batch=8) == 3 * 2
    assert recipe.phase_steps(PhaseConfig(epochs=2, steps_per_epoch=5), 20, 8) == 2 * 5
    assert recipe.phase_steps(PhaseConfig(epochs=2, steps_per_epoch=5), None, 8) == 2 * 5
    with pytest.raises(ValueError, match="do not fill one global batch of 8"):
        recipe.phase_steps(PhaseConfig(epochs=1), 7, 8)
    with pytest.raises(ValueError, match="size is not known"):
        recipe.phase_steps(PhaseConfig(epochs=1), None, 8)
    assert jax_train.JAX_MIXED_PRECISION_POLICIES == {"none": "float32", "bf16": "mixed_bfloat16"}


def test_the_tensorflow_loop_plans_the_recipes_steps():
    loop = pytest.importorskip("colorize_tf.training.loop")  # imports TensorFlow
    for overrides, images in (
        ([], 100),
        (["data.batch_size=7"], 50),
        (["train.gan.steps_per_epoch=9"], 30),
    ):
        config = load_config(None, overrides)
        for phase in ("pretrain", "gan"):
            phase_cfg = getattr(config.train, phase)
            plan = loop.phase_plan(config, phase, images, replicas=1)
            assert plan.steps_per_epoch * phase_cfg.epochs == recipe.phase_steps(
                phase_cfg, images, config.data.batch_size
            )


def test_weights_folder_round_trip(tmp_path):
    keras.utils.set_random_seed(0)
    spec = jax_train.generator_spec(load_config(None, [f"model.width={TINY_WIDTH}"]))
    generator = build_generator(**spec)
    written = weights_folder.save_weights_folder(generator, spec, tmp_path, float16=True)
    assert [p.name for p in written] == [
        weights_folder.WEIGHTS_FILE,
        weights_folder.SPEC_FILE,
        weights_folder.FLOAT16_FILE,
    ]
    assert weights_folder.is_weights_folder(tmp_path)
    full_bytes = (tmp_path / weights_folder.WEIGHTS_FILE).stat().st_size
    assert (tmp_path / weights_folder.FLOAT16_FILE).stat().st_size < 0.8 * full_bytes
    x = np.random.default_rng(0).uniform(-1, 1, (2, 64, 64, 1)).astype("float32")
    expected = keras.ops.convert_to_numpy(generator(x))
    full = weights_folder.load_weights_folder(tmp_path)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(full(x)), expected)
    half = weights_folder.load_weights_folder(tmp_path, prefer_float16=True)
    # Measured: max |difference| 0.0097 on outputs in [-1, 1] (float16 keeps ~3 digits; this
    # untrained generator's unit-variance BN statistics amplify the rounding more than most).
    np.testing.assert_allclose(keras.ops.convert_to_numpy(half(x)), expected, atol=3e-2)
    (tmp_path / weights_folder.WEIGHTS_FILE).unlink()  # the float16 copy alone is enough
    alone = weights_folder.load_weights_folder(tmp_path)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(alone(x)), keras.ops.convert_to_numpy(half(x))
    )
    (tmp_path / weights_folder.FLOAT16_FILE).unlink()
    with pytest.raises(FileNotFoundError, match="neither"):
        weights_folder.load_weights_folder(tmp_path)


def _torch_resnet18():
    """A hand-written twin of torchvision's resnet18 (same module names), random BN statistics."""
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class BasicBlock(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.downsample = None
            if stride != 1 or cin != cout:
                self.downsample = nn.Sequential(
                    nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
                )

        def forward(self, x):
            shortcut = x if self.downsample is None else self.downsample(x)
            y = torch.relu(self.bn1(self.conv1(x)))
            return torch.relu(self.bn2(self.conv2(y)) + shortcut)

    class ResNet18(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            cin = 64
            for index, cout in enumerate((64, 128, 256, 512)):
                stride = 1 if index == 0 else 2
                setattr(
                    self,
                    f"layer{index + 1}",
                    nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)),
                )
                cin = cout
            self.fc = nn.Linear(512, 1000)

        def forward(self, x):  # the features our encoder returns (P5), no pooling / fc
            x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
            return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    torch.manual_seed(0)
    net = ResNet18()
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):
            for tensor, low, high in (
                (module.weight, 0.5, 1.5),
                (module.bias, -0.1, 0.1),
                (module.running_mean, -0.1, 0.1),
                (module.running_var, 0.5, 1.5),
            ):
                tensor.data.uniform_(low, high)
    return torch, net.eval()


def test_torchvision_mapping_reproduces_the_torch_network(tmp_path):
    torch, net = _torch_resnet18()
    mapping = _gpu_module("imagenet_resnet18")
    state = {k: v.numpy() for k, v in net.state_dict().items()}
    weights = mapping.encoder_weights(state)
    assert len(weights) == 40  # stem conv + BN, 8 blocks x 2 (conv + BN), 3 shortcuts x (conv + BN)
    encoder = ResNet18Encoder(image_shape=(None, None, 3))
    assert {layer.name for layer in encoder.layers if layer.weights} == set(weights)
    assert all(
        layer.epsilon == net.bn1.eps
        for layer in encoder.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    )
    mapping.load_into_encoder(encoder, weights)
    x = np.random.default_rng(0).normal(size=(2, 64, 64, 3)).astype("float32")
    with torch.no_grad():
        expected = net(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy().transpose(0, 2, 3, 1)
    got = keras.ops.convert_to_numpy(encoder(x))
    # Measured: max |difference| / max |value| 5.9e-7 (float32 summation order).
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 * np.abs(expected).max())

    bad = dict(
        state, **{"layer1.2.conv1.weight": state["layer1.0.conv1.weight"]}
    )  # a ResNet-34 key
    with pytest.raises(ValueError, match="unexpected"):
        mapping.encoder_weights(bad)
    with pytest.raises(ValueError, match="missing"):
        mapping.encoder_weights({k: v for k, v in state.items() if k != "bn1.running_var"})

    # The device script's path: a cached .pth -> numpy (to-npz) -> encoder file -> generator.
    checkpoint = tmp_path / "torch" / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    checkpoint.parent.mkdir(parents=True)
    torch.save(net.state_dict(), checkpoint)
    assert mapping.main(["to-npz", str(checkpoint), str(tmp_path / "state.npz")]) == 0
    with np.load(tmp_path / "state.npz") as stored:
        path = mapping.save_encoder_file(dict(stored), tmp_path / "encoder.weights.h5")
    gray = ResNet18Encoder()  # the generator's: 1 input channel, the RGB stem summed
    load_encoder_weights(gray, str(path))  # what build_generator(encoder_weights=path) calls
    stem = gray.get_layer("conv1_conv").get_weights()[0]
    np.testing.assert_allclose(stem, weights["conv1_conv"][0].sum(axis=2, keepdims=True), rtol=1e-6)
    np.testing.assert_array_equal(
        gray.get_layer("stack3_block1_2_bn").get_weights()[3], state["layer4.1.bn2.running_var"]
    )


def test_checkpoint_search_prefers_torchvision_and_costs_little(tmp_path):
    mapping = _gpu_module("imagenet_resnet18")
    assert mapping.find_checkpoint([tmp_path]) is None
    timm = (
        tmp_path
        / "hub"
        / "models--timm--resnet18.a1_in1k"
        / "snapshots"
        / "abc"
        / "model.safetensors"
    )
    deep_stem = (
        tmp_path
        / "hub"
        / "models--timm--resnet18d.ra2_in1k"
        / "snapshots"
        / "abc"
        / "model.safetensors"
    )
    torchvision = tmp_path / "torch" / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    for path in (timm, deep_stem):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"")
    assert mapping.find_checkpoint([tmp_path]) == timm
    torchvision.parent.mkdir(parents=True)
    torchvision.write_bytes(b"")
    started = time.monotonic()
    assert (
        mapping.find_checkpoint([tmp_path / "hub", tmp_path / "torch", tmp_path / "nowhere"])
        == torchvision
    )
    assert time.monotonic() - started < 1.0


# --- the training loop ---------------------------------------------------------------------------


def test_train_phase_stops_at_a_non_finite_loss_and_at_its_deadline():
    pytest.importorskip("jax")
    seen = []

    def step(state, batch):
        loss = math.nan if state["n"] == 4 else 0.5
        return {"n": state["n"] + 1}, {"g_l1": np.float32(loss)}

    def validate(phase, done, state):
        seen.append((phase, done))

    stream = itertools.repeat(np.zeros((2, 8, 8, 3), np.uint8))
    with pytest.raises(
        jax_train.NonFiniteLossError, match=r"phase 'pretrain', step 6: non-finite \['g_l1'\]"
    ):
        jax_train.train_phase(
            "pretrain",
            step,
            {"n": 0},
            stream,
            steps=10,
            deadline=None,
            log_every=3,
            eval_every_s=0.0,
            validate=validate,
        )
    assert seen == [("pretrain", 3)]  # validated at the first log point, before the bad window

    # A deadline already past still runs (and so compiles) one step, then ends with a validation.
    state, record = jax_train.train_phase(
        "gan",
        step,
        {"n": 10},
        stream,
        steps=math.inf,
        deadline=time.perf_counter() - 1,
        log_every=3,
        eval_every_s=1e9,
        validate=validate,
    )
    assert state == {"n": 11} and record["steps"] == 1 and seen[-1] == ("gan", 1)
    assert jax_train.NonFiniteLossError is recipe.NonFiniteLossError  # one error, both loops


_ROUND_TRIP = textwrap.dedent(
    """
    import runpy, sys
    sys.modules["tensorflow"] = None  # the GPU machine has no TensorFlow: prove none is needed
    import numpy as np
    import keras
    assert keras.backend.backend() == "jax"
    sys.argv = ["train_jax.py", *{args!r}]
    try:
        runpy.run_path({script!r}, run_name="__main__")
    except SystemExit as exit:
        assert exit.code == 0, exit.code
    from colorize_tf.models.weights import load_weights_folder
    x = np.load({x!r})
    generator = load_weights_folder({out!r})  # float32 weights
    np.save({workdir!r} + "/y32.npy", np.asarray(generator(x, training=False)))
    generator = load_weights_folder({out!r}, prefer_float16=True)
    np.save({out!r} + "/y16.npy", np.asarray(generator(x, training=False)))  # float16 copy
    print("jax round trip ok")
    """
)


@pytest.mark.integration
def test_jax_training_round_trip_reloads_under_tensorflow(tmp_path, photos):
    """The device script's Python part on CPU (tiny model, a 3 s budget: one step per phase,
    since compiling takes longer) under JAX; then the weights it wrote give this
    (TensorFlow) process the same colorizations. Mostly XLA compile time: measured 52 s to
    131 s on 2 cores shared with other work."""
    pytest.importorskip("jax")
    out, workdir = tmp_path / "out", tmp_path / "work"  # the script's results; this test's files
    workdir.mkdir()
    x = np.random.default_rng(0).uniform(-1, 1, (2, 64, 64, 1)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    args = [
        "--photos",
        str(photos),
        "--out",
        str(out),
        "--minutes",
        "0.05",
        "--width",
        str(TINY_WIDTH),
        "--size",
        "64",
        "--batch",
        "4",
        "--imagenet",
        "none",
        "--log-every",
        "2",
        "--eval-every",
        "3",
        "--loader-bench",
        "0.5",
    ]
    script = _ROUND_TRIP.format(
        args=args,
        script=str(REPO_ROOT / "gpu" / "train_jax.py"),
        x=str(tmp_path / "x.npy"),
        workdir=str(workdir),
        out=str(out),
    )
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2")
    # XLA's CPU optimizations cost more compile time than they save in a dozen steps.
    env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_backend_optimization_level=0".strip()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "jax round trip ok" in result.stdout

    log = json.loads((out / recipe.LOG_FILE).read_text())
    assert log["stopped"] is None and log["precision"] == "mixed_bfloat16"
    assert log["imagenet_encoder"] == "not asked for" and log["data"]["loader_crops_per_s"] > 0
    assert all(log["phases"][p]["steps"] >= 1 for p in ("pretrain", "gan"))
    assert {v["phase"] for v in log["val"]} == {"pretrain", "gan"}
    assert all(
        math.isfinite(x) for v in log["val"] for k, x in v.items() if k not in ("phase", "step")
    )
    assert log["files"] == [
        weights_folder.WEIGHTS_FILE,
        weights_folder.SPEC_FILE,
        weights_folder.FLOAT16_FILE,
    ]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [*log["files"], recipe.LOG_FILE, "y16.npy"]
    )

    # Same weights, other backend: float32 weights to float32 rounding, the float16 copy likewise.
    tf_full = keras.ops.convert_to_numpy(weights_folder.load_weights_folder(out)(x))
    tf_half = keras.ops.convert_to_numpy(
        weights_folder.load_weights_folder(out, prefer_float16=True)(x)
    )
    np.testing.assert_allclose(tf_full, np.load(workdir / "y32.npy"), rtol=0, atol=1e-4)
    np.testing.assert_allclose(tf_half, np.load(out / "y16.npy"), rtol=0, atol=1e-4)
    np.testing.assert_allclose(tf_half, tf_full, rtol=0, atol=3e-2)  # float16 weights vs float32


_STEP_PARITY = textwrap.dedent(
    """
    import sys
    sys.modules["tensorflow"] = None
    import json, keras, numpy as np
    from colorize_tf.config import load_config
    from colorize_tf.models import build_models
    from colorize_tf.training import jax_loop as jax_train, recipe
    config = load_config(None, {overrides!r})
    generator, discriminator = build_models(config)
    generator.load_weights({g0!r}); discriminator.load_weights({d0!r})
    optimizers = list(recipe.make_optimizers(config.train).values())  # pretrain, g_gan, d_gan
    for optimizer, model in zip(optimizers, (generator, generator, discriminator)):
        optimizer.build(model.trainable_variables)
    values = lambda vs: [v.value for v in vs]
    state = {{}}
    for name, model in (("g", generator), ("d", discriminator)):
        state[name] = values(model.trainable_variables)
        state[name + "_nt"] = values(model.non_trainable_variables)
    rgb = np.load({rgb!r})
    pre = jax_train.make_pretrain_step(generator, optimizers[0])
    g_opt = values(optimizers[0].variables)
    out, logs = pre({{"g": state["g"], "g_nt": state["g_nt"], "g_opt": g_opt}}, rgb)
    state.update(g=out["g"], g_nt=out["g_nt"])
    gan = jax_train.make_gan_step(
        generator, discriminator, optimizers[1], optimizers[2], config.train.l1_weight
    )
    opts = {{"g_opt": values(optimizers[1].variables), "d_opt": values(optimizers[2].variables)}}
    out, gan_logs = gan({{**state, **opts}}, rgb)
    for model, keys in ((generator, ("g", "g_nt")), (discriminator, ("d", "d_nt"))):
        for variables, key in zip((model.trainable_variables, model.non_trainable_variables), keys):
            for variable, value in zip(variables, out[key]):
                variable.assign(value)
    generator.save_weights({g1!r}); discriminator.save_weights({d1!r})
    logs.update(gan_logs)
    print(json.dumps({{k: float(v) for k, v in logs.items()}}))
    """
)


@pytest.mark.integration
def test_jax_steps_update_like_the_tensorflow_train_step(tmp_path, photos):
    """One pretrain step then one GAN step from the same weights on the same batch: the JAX
    steps and ``ColorizationGAN.train_step`` (TensorFlow) report the same losses and leave the
    same weights."""
    pytest.importorskip("jax")
    from colorize_tf.core import color
    from colorize_tf.training.gan import ColorizationGAN

    overrides = [f"model.width={TINY_WIDTH}"]
    config = load_config(None, overrides)
    keras.utils.set_random_seed(0)
    generator, discriminator = jax_train.build_models(config)
    files = {name: str(tmp_path / f"{name}.weights.h5") for name in ("g0", "d0", "g1", "d1")}
    generator.save_weights(files["g0"])
    discriminator.save_weights(files["d0"])
    rgb = jax_data.eval_crops(
        jax_data.decode_photos(jax_data.split_files(str(photos), "all")[:4], 64), 64
    )
    np.save(tmp_path / "rgb.npy", rgb)

    gan = ColorizationGAN(generator, discriminator)
    optimizers = recipe.make_optimizers(config.train)  # what both loops train with
    p, g = config.train.pretrain, config.train.gan
    batch = color.rgb_to_l_ab(rgb.astype("float32") / 255.0)
    gan.compile(optimizers["pretrain"], phase="pretrain")
    expected = {k: float(v) for k, v in gan.train_step(batch).items()}
    gan.compile(
        optimizers["g_gan"], optimizers["d_gan"], l1_weight=config.train.l1_weight, phase="gan"
    )
    for metric in gan.metrics:
        metric.reset_state()
    expected.update({k: float(v) for k, v in gan.train_step(batch).items()})

    script = _STEP_PARITY.format(overrides=overrides, rgb=str(tmp_path / "rgb.npy"), **files)
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=600, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    got = json.loads(result.stdout.strip().splitlines()[-1])  # measured: equal to ~2e-7 relative
    for key, value in got.items():
        assert value == pytest.approx(expected[key], rel=1e-4, abs=1e-6), key

    # Adam's first steps move each weight by about +-lr whatever the gradient's size, so where
    # a gradient is ~0 float32 rounding can flip its sign: a few weights then differ by up to
    # 2 * (1e-4 + 2e-4). Measured: 99.4% of the generator's weights (99.9% of the
    # discriminator's) equal to float32 rounding, the largest difference 4.0e-4.
    bound = 2 * (p.learning_rate + g.learning_rate) + 1e-6
    reloaded = (
        build_generator(**jax_train.generator_spec(config)),
        jax_train.build_models(config)[1],
    )
    for jax_model, path, tf_model in zip(
        reloaded, (files["g1"], files["d1"]), (generator, discriminator), strict=True
    ):
        jax_model.load_weights(path)
        ours = np.concatenate([keras.ops.convert_to_numpy(w).ravel() for w in jax_model.weights])
        theirs = np.concatenate([keras.ops.convert_to_numpy(w).ravel() for w in tf_model.weights])
        assert np.abs(ours - theirs).max() <= bound, tf_model.name
        assert np.isclose(ours, theirs, rtol=1e-5, atol=1e-6).mean() >= 0.99, tf_model.name
