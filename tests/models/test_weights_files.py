"""Weight files from elsewhere: the weights folder (what the project's former JAX-only loop wrote;
``colorize_tf.models.weights``, still loadable by every command) and the torchvision / timm
ResNet-18 ImageNet checkpoints mapped onto our encoder (``gpu/imagenet_resnet18.py``)."""

import importlib.util
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from colorize_tf.config import load_config
from colorize_tf.models import (
    ResNet18Encoder,
    build_generator,
    generator_spec,
    load_encoder_weights,
)
from colorize_tf.models import weights as weights_folder

REPO_ROOT = Path(__file__).resolve().parents[2]
TINY_WIDTH = 0.0625


def _gpu_module(name: str):
    """Import ``gpu/<name>.py`` (a script folder, not a package)."""
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "gpu" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)
    spec.loader.exec_module(module)
    return module


def test_weights_folder_round_trip(tmp_path):
    keras.utils.set_random_seed(0)
    spec = generator_spec(load_config(None, [f"model.width={TINY_WIDTH}"]))
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
