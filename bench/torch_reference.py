"""PyTorch twin of our generator and discriminator, and the reference tutorial's GAN step.

Used by ``bench/train_step.py`` as the yardstick; not part of the package. Layer by layer it
mirrors ``colorize_tf.models`` (same widths, kernel sizes, strides, paddings, biases,
BatchNormalization, activations), in PyTorch's NCHW layout, so its trainable parameter count
equals ``count_params(build_generator())`` / ``count_params(build_discriminator())`` exactly
(the benchmark checks it). BN momentum 0.1 here is Keras' 0.9 (PyTorch counts the other way).

Shapes below are NCHW: ``(batch, channels, H, W)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

# Mirrors of colorize_tf.models.generator.DEFAULT_DECODER_FILTERS and the ResNet-18 widths;
# the benchmark passes the Keras values in, these are only the defaults.
DECODER_FILTERS = (512, 384, 256, 96, 32)
STAGE_FILTERS = (64, 128, 256, 512)
_BN = {"eps": 1e-5, "momentum": 0.1}


def conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    """3x3 'same' conv (no bias) + BN + ReLU, as in our decoder stages."""
    return [
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out, **_BN),
        nn.ReLU(inplace=True),
    ]


class BasicBlock(nn.Module):
    """ResNet v1 basic block: two 3x3 conv-BN, 1x1 conv-BN shortcut when the shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: int, conv_shortcut: bool):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out, **_BN)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out, **_BN)
        self.shortcut = (
            nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out, **_BN)
            )
            if conv_shortcut
            else nn.Identity()
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(self.shortcut(x) + y)


class DecoderBlock(nn.Module):
    """Upsample x2 (no bias) + BN + ReLU, concat skip, two conv-BN-ReLU.

    ``upsample="transpose"``: transposed conv 4x4 stride 2 (the paper's); ``"bilinear"``:
    bilinear x2 (half-pixel centers, as Keras' ``UpSampling2D``) then a 3x3 conv.
    """

    def __init__(
        self,
        c_in: int,
        c_skip: int,
        c_out: int,
        kernel_size: int | None = None,
        upsample: str = "transpose",
    ):
        super().__init__()
        if upsample == "transpose":
            kernel_size = kernel_size or 4
            # padding (k - 2) / 2 doubles the size exactly, like Keras' "same" for stride 2.
            up = [
                nn.ConvTranspose2d(
                    c_in, c_out, kernel_size, 2, padding=(kernel_size - 2) // 2, bias=False
                )
            ]
        elif upsample == "bilinear":
            kernel_size = kernel_size or 3
            up = [
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                nn.Conv2d(c_in, c_out, kernel_size, padding=kernel_size // 2, bias=False),
            ]
        else:
            raise ValueError(f"upsample must be 'transpose' or 'bilinear', got {upsample!r}")
        self.up = nn.Sequential(*up, nn.BatchNorm2d(c_out, **_BN), nn.ReLU(inplace=True))
        self.convs = nn.Sequential(
            *conv_bn_relu(c_out + c_skip, c_out), *conv_bn_relu(c_out, c_out)
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)  # (b, c_out, 2h, 2w)
        return self.convs(torch.cat([x, skip], dim=1))


class UNetGenerator(nn.Module):
    """ResNet-18 encoder, 5 decoder stages with skips (P4, P3, P2, P1, input), 1x1 conv + tanh.

    ``upsample``: the decoder's ``"transpose"`` or ``"bilinear"``, as Keras' ``upsample``.

    ``(b, 1, H, W)`` normalized L -> ``(b, 2, H, W)`` normalized ab; H, W multiples of 32.
    """

    def __init__(
        self,
        input_channels: int = 1,
        output_channels: int = 2,
        stage_filters: Sequence[int] = STAGE_FILTERS,
        decoder_filters: Sequence[int] = DECODER_FILTERS,
        upsample: str = "transpose",
    ):
        super().__init__()
        stem = stage_filters[0]
        self.stem = nn.Sequential(
            nn.Conv2d(input_channels, stem, 7, 2, padding=3, bias=False),
            nn.BatchNorm2d(stem, **_BN),
            nn.ReLU(inplace=True),
        )
        self.pool = nn.MaxPool2d(3, 2, padding=1)
        stages, c_in = [], stem
        for index, filters in enumerate(stage_filters):
            stride = 1 if index == 0 else 2
            stages.append(
                nn.Sequential(
                    BasicBlock(c_in, filters, stride, conv_shortcut=index > 0),
                    BasicBlock(filters, filters, 1, conv_shortcut=False),
                )
            )
            c_in = filters
        self.stages = nn.ModuleList(stages)
        # Skip widths, deepest first: P4, P3, P2, P1 (the stem), the input itself.
        skips = [stage_filters[2], stage_filters[1], stage_filters[0], stem, input_channels]
        decoders, c_in = [], stage_filters[3]
        for c_skip, filters in zip(skips, decoder_filters, strict=True):
            decoders.append(DecoderBlock(c_in, c_skip, filters, upsample=upsample))
            c_in = filters
        self.decoders = nn.ModuleList(decoders)
        self.head = nn.Conv2d(c_in, output_channels, 1)

    def forward(self, l_norm: torch.Tensor) -> torch.Tensor:
        p1 = self.stem(l_norm)  # (b, 64, H/2, W/2)
        x = self.pool(p1)  # (b, 64, H/4, W/4)
        pyramid = []
        for stage in self.stages:
            x = stage(x)
            pyramid.append(x)  # P2 .. P5
        skips = [pyramid[2], pyramid[1], pyramid[0], p1, l_norm]
        x = pyramid[3]  # (b, 512, H/32, W/32)
        for decoder, skip in zip(self.decoders, skips, strict=True):
            x = decoder(x, skip)
        return torch.tanh(self.head(x))  # (b, 2, H, W)


class PatchDiscriminator(nn.Module):
    """Conditional PatchGAN: 4x4 convs padding 1; 64 (s2, no BN), 128, 256 (s2), 512 (s1), 1."""

    def __init__(self, input_channels: int = 3, base_filters: int = 64, num_downsamples: int = 3):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = input_channels
        for index in range(num_downsamples + 1):
            filters = base_filters * 2**index
            stride = 1 if index == num_downsamples else 2
            use_norm = index > 0
            layers.append(nn.Conv2d(c_in, filters, 4, stride, padding=1, bias=not use_norm))
            if use_norm:
                layers.append(nn.BatchNorm2d(filters, **_BN))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            c_in = filters
        layers.append(nn.Conv2d(c_in, 1, 4, 1, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, pair: torch.Tensor) -> torch.Tensor:
        return self.model(pair)  # (b, 1, H/8 - 2, W/8 - 2) logits


def count_params(module: nn.Module) -> tuple[int, int]:
    """(parameters, BN running mean + var): the split Keras' ``count_params`` makes.

    Every parameter counts, whatever its ``requires_grad`` (the GAN step toggles D's).
    """
    trainable = sum(p.numel() for p in module.parameters())
    stats = sum(
        b.numel()
        for name, b in module.named_buffers()
        if name.endswith(("running_mean", "running_var"))
    )
    return trainable, stats


class TutorialGAN:
    """The reference tutorial's ``MainModel.optimize``: Adam 2e-4 (0.5, 0.999), lambda 100.

    One G forward per step, shared by both updates: D on real and on the detached fake,
    BCE-with-logits halved; then (D frozen) G on BCE(D(fake), real) + lambda * L1.

    ``autocast``: ``torch.bfloat16`` runs the forward passes and losses under
    ``torch.autocast("cpu", dtype=torch.bfloat16)`` (weights, gradients and Adam stay float32),
    as a PyTorch user trains in mixed precision on a CPU; ``None``: plain float32.
    Channels-last is the caller's choice: convert the modules and the inputs before the step.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        l1_weight: float = 100.0,
        autocast: torch.dtype | None = None,
    ):
        self.net_g, self.net_d, self.l1_weight = generator, discriminator, l1_weight
        self.autocast = autocast
        self.opt_g = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.bce = nn.BCEWithLogitsLoss()
        self.l1 = nn.L1Loss()

    def _autocast(self):
        return torch.autocast(
            "cpu", dtype=self.autocast or torch.bfloat16, enabled=bool(self.autocast)
        )

    def _set_d_trainable(self, flag: bool) -> None:
        for p in self.net_d.parameters():
            p.requires_grad = flag

    def step(self, l_norm: torch.Tensor, ab: torch.Tensor) -> dict[str, float]:
        """One D update then one G update on ``l_norm`` (b, 1, H, W) and ``ab`` (b, 2, H, W)."""
        self.net_g.train()
        self.net_d.train()
        with self._autocast():
            fake_ab = self.net_g(l_norm)  # (b, 2, H, W)

        self._set_d_trainable(True)
        self.opt_d.zero_grad()
        with self._autocast():
            fake_preds = self.net_d(torch.cat([l_norm, fake_ab], 1).detach())
            real_preds = self.net_d(torch.cat([l_norm, ab], 1))
            loss_d = 0.5 * (
                self.bce(fake_preds, torch.zeros_like(fake_preds))
                + self.bce(real_preds, torch.ones_like(real_preds))
            )
        loss_d.backward()
        self.opt_d.step()

        self._set_d_trainable(False)
        self.opt_g.zero_grad()
        with self._autocast():
            fake_preds = self.net_d(torch.cat([l_norm, fake_ab], 1))
            loss_g = self.bce(fake_preds, torch.ones_like(fake_preds)) + self.l1_weight * self.l1(
                fake_ab, ab
            )
        loss_g.backward()
        self.opt_g.step()
        return {"d_loss": loss_d.item(), "g_loss": loss_g.item()}  # waits for the step
