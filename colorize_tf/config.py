"""Typed run configuration: defaults -> YAML file -> ``--set a.b=c`` overrides, validated, dumped.

The merge order is fixed (dataclass defaults, then the file, then command-line overrides),
every key is checked against the dataclasses (a typo is an error naming the key and the keys
that exist), values are type-checked, and the resolved config is written beside the run's
outputs so the run can be repeated exactly.

Named configs (``quickstart``, ``coco_paper``, ``tpu``) live in the repository's ``configs/``
folder, which is installed with the package as ``colorize_tf/configs``. A config file may name
another one as its ``base:`` (e.g. ``tpu.yaml`` builds on ``coco_paper.yaml``).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# The one pixel limit of training, evaluation and colorize, checked from the file header before
# any pixel is decoded: a 12,000 x 8,000 scan (~3 GB of float tensors on colorize's way). Here,
# the lowest room, so that data, inference and every command share it; each takes its own
# limit too (data.max_pixels, --max-pixels).
DEFAULT_MAX_PIXELS = 100_000_000
# The evaluation protocol's crop side, as papers report it (``colorize_tf.evaluation``); also the
# default training crop, and the network input of a generator that records no size of its own.
PROTOCOL_SIZE = 256

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
DEFAULT_CONFIG = "quickstart"


class ConfigError(ValueError):
    """A config file or override that cannot be used; the message says which key and why."""


@dataclass
class DataConfig:
    """Where images come from and how they are cut (see ``colorize_tf.data.pipeline``)."""

    source: str = "samples"  # samples | a folder | tfrecord:PATTERN | tfds:NAME[:SPLIT]
    val_source: str = ""  # empty: the held-out split of `source`
    val_fraction: float = 0.1  # share of a folder held out, by a hash of each relative path
    crop_size: int = PROTOCOL_SIZE
    batch_size: int = 16  # global batch, split across replicas
    batch_per_replica: int = 0  # >0: the global batch is this times the replicas (TPU configs)
    val_batch_size: int = 8
    max_images: int = 0  # 0: all; the paper used 10,000 COCO images
    max_pixels: int = DEFAULT_MAX_PIXELS  # larger images are skipped with a message
    shuffle_buffer: int = 1024
    cache: bool = True  # cache decoded, resized images in memory
    max_zoom: float = (
        1.25  # training crops cover 1/max_zoom .. all of the short side (scale jitter)
    )


@dataclass
class ModelConfig:
    """Generator (ResNet-18 U-Net) and discriminator (PatchGAN) shapes and encoder weights."""

    encoder_weights: str = "none"  # none | imagenet | a local .weights.h5 / keras-hub preset dir
    width: float = 1.0  # multiplies every channel count; <1 shrinks the model for CPU runs
    # How the decoder doubles resolution: transpose (stride-2 transposed convs, the paper's) |
    # bilinear (bilinear x2 + 3x3 conv: no stripes of period 2 and 4 pixels in flat areas)
    upsample: str = "transpose"
    disc_filters: int = 64
    disc_downsamples: int = 3


@dataclass
class PhaseConfig:
    """One training phase: an epoch count and its Adam optimizer."""

    epochs: int = 1
    steps_per_epoch: int = 0  # 0: one pass over the data
    learning_rate: float = 2e-4
    beta_1: float = 0.5
    beta_2: float = 0.999


@dataclass
class TrainConfig:
    """The schedule: L1 pretraining of the generator, then adversarial fine-tuning."""

    pretrain: PhaseConfig = field(
        default_factory=lambda: PhaseConfig(epochs=20, learning_rate=1e-4, beta_1=0.9)
    )
    gan: PhaseConfig = field(default_factory=lambda: PhaseConfig(epochs=20))
    l1_weight: float = 100.0
    # >0: class-rebalanced L1: each pixel weighted by the rarity of its true ab bin over the
    # training split (core.losses.rebalance_weights; 0.5 is Zhang et al.'s). 0: plain L1.
    l1_rebalance: float = 0.0
    d_learning_rate: float = 0.0  # the discriminator's Adam rate; 0: the GAN phase's rate
    label_smoothing: float = 0.0  # the discriminator's real targets are 1 - this (0: the paper)
    ema_decay: float = 0.0  # >0: keep an exponential moving average of the generator's weights
    select_best: bool = False  # ship the epoch-end generator that scores best on validation
    select_metric: str = (
        "psnr"  # psnr | psnr_dcf (less 0.05 dB per point of colorfulness error) | psnr_color
        # (psnr_dcf, less 1 dB per point of colorfulness error above half the gray baseline's)
    )
    checkpoint_every: int = 500  # steps
    sample_images: int = 6  # colorizations drawn into TensorBoard each epoch
    seed: int = 0


@dataclass
class RuntimeConfig:
    """Where and how the steps run."""

    strategy: str = "auto"  # auto | cpu | mirrored | multi_worker | tpu
    tpu: str = ""  # TPU name or grpc:// address; empty: from the environment
    mixed_precision: str = "none"  # none | bf16 | fp16
    # XLA for the TensorFlow train step (TPUStrategy compiles anyway; JAX steps always compile)
    jit_compile: bool = False
    # BatchNormalization trains with one fused kernel per layer: the same maths, faster on a CPU
    fused_batch_norm: bool = False
    steps_per_execution: int = 1  # at most this many; the largest divisor of steps_per_epoch
    local_checkpoints: str = ""  # a local folder: checkpoints go there, the newest is mirrored
    mirror_minutes: float = 0.0  # refresh the workdir's mirror at most this often (0: each save)


@dataclass
class Config:
    """A whole run. ``name`` labels logs and names the default output folder."""

    name: str = "quickstart"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        """The resolved config as YAML text (``dump`` writes it, ``config_from_yaml`` reads it)."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def dump(self, path: str | Path) -> Path:
        """Write the resolved config as YAML (the file that repeats this run)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_yaml())
        return path


_CHOICES = {
    "runtime.strategy": {"auto", "cpu", "mirrored", "multi_worker", "tpu"},
    "runtime.mixed_precision": {"none", "bf16", "fp16"},
    "train.select_metric": {"psnr", "psnr_dcf", "psnr_color"},
    "model.upsample": {"transpose", "bilinear"},
}


# --- resolution: defaults -> file -> overrides ---------------------------------------------


def resolve_config_path(name_or_path: str) -> Path:
    """A path to a YAML file, or the name of a packaged config (``quickstart``)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    packaged = CONFIG_DIR / f"{name_or_path}.yaml"
    if packaged.is_file():
        return packaged
    known = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
    raise ConfigError(f"config {name_or_path!r} is neither a file nor a packaged config {known}")


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a config file, merging it over the file its ``base:`` key names."""
    if path.resolve() in seen:
        raise ConfigError(f"{path}: 'base' chain loops back to itself")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    base = raw.pop("base", None)
    if base is None:
        return raw
    base_path = (
        resolve_config_path(base) if not (path.parent / base).is_file() else path.parent / base
    )
    return _deep_merge(_read_yaml(base_path, (*seen, path.resolve())), raw)


def _deep_merge(base: dict, update: dict) -> dict:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.gan.epochs=5"`` -> (["train", "gan", "epochs"], 5); the value is read as YAML."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r} must look like key.sub=value")
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        parsed = value
    return key.strip().split("."), parsed


def _set_path(tree: dict, keys: list[str], value: Any) -> None:
    node = tree
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {'.'.join(keys)}: {key!r} is a value, not a section")
    node[keys[-1]] = value


def _build(cls: type, values: dict[str, Any], prefix: str) -> Any:
    """Instantiate dataclass ``cls`` from a mapping, checking every key and value type."""
    if not isinstance(values, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {values!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(names))
    if unknown:
        where = f"in section {prefix!r}" if prefix else "at the top level"
        raise ConfigError(f"unknown config key(s) {unknown} {where}; known keys: {names}")
    kwargs = {}
    for name, value in values.items():
        key = f"{prefix}.{name}" if prefix else name
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            default = getattr(cls(), name)
            kwargs[name] = _build(hint, _deep_merge(dataclasses.asdict(default), value or {}), key)
        else:
            kwargs[name] = _check_value(key, hint, value)
    return cls(**kwargs)


def _check_value(key: str, hint: Any, value: Any) -> Any:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        hint = next(h for h in typing.get_args(hint) if h is not type(None))
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if hint is str and value is None:
        value = ""
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise ConfigError(
            f"{key}: expected {hint.__name__}, got {value!r} ({type(value).__name__})"
        )
    if key in _CHOICES and value not in _CHOICES[key]:
        raise ConfigError(f"{key}: {value!r} is not one of {sorted(_CHOICES[key])}")
    return value


def validate(config: Config) -> Config:
    """Checks across fields that types alone cannot express."""
    problems = []
    if config.data.crop_size <= 0 or config.data.crop_size % 32:
        problems.append(
            f"data.crop_size must be a positive multiple of 32, got {config.data.crop_size}"
        )
    if config.data.batch_size < 1 or config.data.val_batch_size < 1:
        problems.append("data.batch_size and data.val_batch_size must be >= 1")
    if not 0.0 <= config.data.val_fraction < 1.0:
        problems.append(f"data.val_fraction must be in [0, 1), got {config.data.val_fraction}")
    if config.model.width <= 0:
        problems.append(f"model.width must be > 0, got {config.model.width}")
    for phase_name in ("pretrain", "gan"):
        phase = getattr(config.train, phase_name)
        if phase.epochs < 0 or phase.steps_per_epoch < 0:
            problems.append(f"train.{phase_name}: epochs and steps_per_epoch must be >= 0")
        if phase.learning_rate <= 0:
            problems.append(f"train.{phase_name}.learning_rate must be > 0")
    if config.data.max_zoom < 1.0:
        problems.append(f"data.max_zoom must be >= 1, got {config.data.max_zoom}")
    if not 0.0 <= config.train.ema_decay < 1.0:
        problems.append(f"train.ema_decay must be in [0, 1), got {config.train.ema_decay}")
    if not 0.0 <= config.train.label_smoothing < 0.5:
        problems.append(
            f"train.label_smoothing must be in [0, 0.5), got {config.train.label_smoothing}"
        )
    if not 0.0 <= config.train.l1_rebalance <= 1.0:
        problems.append(f"train.l1_rebalance must be in [0, 1], got {config.train.l1_rebalance}")
    if config.train.d_learning_rate < 0:
        problems.append("train.d_learning_rate must be >= 0 (0: the GAN phase's rate)")
    if config.train.checkpoint_every < 1:
        problems.append("train.checkpoint_every must be >= 1")
    if config.runtime.steps_per_execution < 1:
        problems.append("runtime.steps_per_execution must be >= 1")
    if config.data.batch_per_replica < 0 or config.runtime.mirror_minutes < 0:
        problems.append("data.batch_per_replica and runtime.mirror_minutes must be >= 0")
    if problems:
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems))
    return config


def config_from_yaml(text: str, source: str = "<yaml>") -> Config:
    """A config from YAML text with no ``base:`` key, e.g. a dumped one read from ``gs://``."""
    try:
        tree = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{source}: not valid YAML: {err}") from None
    if not isinstance(tree, dict) or "base" in tree:
        raise ConfigError(f"{source}: expected a mapping without a 'base' key")
    return validate(_build(Config, tree, ""))


def load_config(
    name_or_path: str | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> Config:
    """Resolve a run's config: defaults, then the file (default: quickstart), then overrides."""
    tree = _read_yaml(resolve_config_path(name_or_path or DEFAULT_CONFIG))
    for text in overrides:
        keys, value = parse_override(text)
        _set_path(tree, keys, value)
    return validate(_build(Config, tree, ""))
