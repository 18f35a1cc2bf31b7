"""ImageNet ResNet-18 weights from a PyTorch cache (torchvision or timm) onto our encoder.

The GPU machine has PyTorch, torchvision and timm but no keras-hub and no network, so the
encoder's ImageNet start comes from whatever ResNet-18 checkpoint its caches hold, if any.

Name mapping, torchvision / timm -> ``ResNet18Encoder`` (keras-hub layer names)::

    conv1                      -> conv1_conv          stem 7x7 / 2
    bn1                        -> conv1_bn
    layer{s+1}.{b}.conv1 / bn1 -> stack{s}_block{b}_1_conv / _1_bn
    layer{s+1}.{b}.conv2 / bn2 -> stack{s}_block{b}_2_conv / _2_bn
    layer{s+1}.0.downsample.0  -> stack{s}_block0_0_conv   projection shortcut, s = 1, 2, 3
    layer{s+1}.0.downsample.1  -> stack{s}_block0_0_bn
    fc.*, *.num_batches_tracked: unused

Values: conv weights ``(out, in, kh, kw)`` -> Keras kernels ``(kh, kw, in, out)``; BN ``weight,
bias, running_mean, running_var`` -> ``gamma, beta, moving_mean, moving_variance``. Both
frameworks use BN epsilon 1e-5 here and the same paddings (``resnet.py`` pads explicitly like
PyTorch), so the mapped encoder computes what the PyTorch network computes (tests: a
hand-written PyTorch twin, to float32 rounding).

The mapped 3-channel encoder is saved as a ``.weights.h5``; ``build_generator(encoder_weights=
that file)`` then sums the stem over RGB for the 1-channel L input (``adapt_stem_kernel``).

    python gpu/imagenet_resnet18.py find               # print the checkpoint found, if any
    python gpu/imagenet_resnet18.py to-npz CKPT OUT.npz  # torch/safetensors -> numpy (no JAX)
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

BN_FIELDS = ("weight", "bias", "running_mean", "running_var")  # Keras BN weights order
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")


def layer_mapping() -> dict[str, str]:
    """Our encoder's layer name -> the torchvision / timm module prefix."""
    names = {"conv1_conv": "conv1", "conv1_bn": "bn1"}
    for stage in range(4):
        for block in range(2):
            ours, theirs = f"stack{stage}_block{block}", f"layer{stage + 1}.{block}"
            for index in (1, 2):
                names[f"{ours}_{index}_conv"] = f"{theirs}.conv{index}"
                names[f"{ours}_{index}_bn"] = f"{theirs}.bn{index}"
        if stage > 0:  # stages 2-4 start with a strided 1x1 projection shortcut
            names[f"stack{stage}_block0_0_conv"] = f"layer{stage + 1}.0.downsample.0"
            names[f"stack{stage}_block0_0_bn"] = f"layer{stage + 1}.0.downsample.1"
    return names


def encoder_weights(state: Mapping[str, np.ndarray]) -> dict[str, list[np.ndarray]]:
    """torchvision-layout state dict (numpy values) -> {our layer name: Keras weight list}.

    Raises ValueError naming missing keys, or leftover ones (another depth, e.g. ResNet-34).
    """
    used, out, missing = set(), {}, []
    for ours, theirs in layer_mapping().items():
        fields = ("weight",) if ours.endswith("_conv") else BN_FIELDS
        keys = [f"{theirs}.{field}" for field in fields]
        missing += [key for key in keys if key not in state]
        if any(key not in state for key in keys):
            continue
        values = [np.asarray(state[key], np.float32) for key in keys]
        if ours.endswith("_conv"):
            values = [values[0].transpose(2, 3, 1, 0)]  # (out, in, kh, kw) -> (kh, kw, in, out)
        out[ours] = values
        used.update(keys)
    leftover = sorted(k for k in state if k not in used and not k.startswith("fc.")
                      and not k.endswith("num_batches_tracked"))  # fmt: skip
    if missing or leftover:
        raise ValueError(f"not a torchvision-layout ResNet-18 state dict: missing {missing[:5]}, "
                         f"unexpected {leftover[:5]}")  # fmt: skip
    return out


def load_into_encoder(encoder, weights: Mapping[str, list[np.ndarray]]) -> None:
    """Set ``weights`` (``encoder_weights``) on a ``ResNet18Encoder`` of full ResNet-18 width."""
    from colorize_tf.models import adapt_stem_kernel

    for name, values in weights.items():
        layer = encoder.get_layer(name)
        if name == "conv1_conv":
            values = [adapt_stem_kernel(values[0], layer.kernel.shape[2])]
        layer.set_weights(values)


def save_encoder_file(state: Mapping[str, np.ndarray], path: str | Path) -> Path:
    """Map ``state`` onto a 3-channel ``ResNet18Encoder`` and save it as ``path`` (.weights.h5).

    The file is what ``build_generator(encoder_weights=path)`` accepts.
    """
    from colorize_tf.models import ResNet18Encoder

    encoder = ResNet18Encoder(image_shape=(None, None, 3))
    load_into_encoder(encoder, encoder_weights(state))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    encoder.save_weights(str(path))
    return path


# --- finding and reading a checkpoint ----------------------------------------------------------


def cache_dirs() -> list[Path]:
    """Where torch.hub, torchvision and timm (Hugging Face hub) keep downloaded weights."""
    home = Path.home()
    xdg = Path(os.environ.get("XDG_CACHE_HOME", home / ".cache"))
    torch_home = Path(os.environ.get("TORCH_HOME", xdg / "torch"))
    hf_home = Path(os.environ.get("HF_HOME", xdg / "huggingface"))
    hf_hub = Path(
        os.environ.get("HF_HUB_CACHE", os.environ.get("HUGGINGFACE_HUB_CACHE", hf_home / "hub"))
    )
    return [torch_home / "hub" / "checkpoints", hf_hub, xdg / "timm"]


def _is_resnet18(path: Path) -> bool:
    text = str(path).lower()
    named = "resnet18" in text or "resnet-18" in text
    # timm's resnet18d has a deep (three-conv) stem: other names, other shapes.
    return path.suffix in CHECKPOINT_SUFFIXES and named and "resnet18d" not in text


def find_checkpoint(roots: Iterable[str | Path] | None = None, budget_s: float = 15.0,
                    max_depth: int = 8) -> Path | None:  # fmt: skip
    """The first ResNet-18 checkpoint under ``roots`` (default: ``cache_dirs()``), or None.

    A bounded walk: at most ``max_depth`` folders down and ``budget_s`` seconds in all, so an
    empty machine costs seconds. torchvision's files come first (``resnet18-*.pth``).
    """
    deadline = time.monotonic() + budget_s
    found: list[Path] = []
    for root in [Path(r) for r in (roots if roots is not None else cache_dirs())]:
        if not root.is_dir():
            continue
        base = len(root.parts)
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
            if time.monotonic() > deadline:
                break
            if len(Path(dirpath).parts) - base >= max_depth:
                dirnames.clear()
            found += [Path(dirpath, f) for f in sorted(filenames) if _is_resnet18(Path(dirpath, f))]
    found.sort(key=lambda p: (not p.name.startswith("resnet18-"), str(p)))
    return found[0] if found else None


def load_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """A ``.pth`` / ``.pt`` / ``.bin`` (PyTorch) or ``.safetensors`` checkpoint -> numpy arrays.

    Imports torch for PyTorch files: run it in its own process beside JAX (``to-npz``), so the
    two frameworks' CUDA libraries never share one.
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.numpy import load_file

        return dict(load_file(str(path)))
    import torch

    state = torch.load(str(path), map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):  # training checkpoints wrap the weights
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    return {k.removeprefix("module."): v.detach().float().numpy() for k, v in state.items()
            if hasattr(v, "numpy")}  # fmt: skip


def main(argv: list[str]) -> int:
    if argv[:1] == ["find"]:
        print(find_checkpoint() or "none")
        return 0
    if argv[:1] == ["to-npz"] and len(argv) == 3:
        np.savez(argv[2], **load_state_dict(argv[1]))
        return 0
    print(__doc__.rsplit("\n\n", 1)[-1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
