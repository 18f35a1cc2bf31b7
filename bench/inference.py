"""Inference latency, side by side in one run: Keras fp32 / bf16, SavedModel, TFLite fp32 / fp16 /
int8, and end-to-end ``colorize`` of one 12-megapixel photo.

    python bench/inference.py --photos PHOTOS            # random-weight generator
    python bench/inference.py --photos DIR --model runs/x/model

Latency rows time the network on one 256 x 256 image (batch 1): the median of ``--rounds``
blocks of ``--runs`` calls (each block after one warm-up call), on ``--threads`` CPU threads
for TensorFlow and LiteRT alike. Ratios
are to Keras fp32. The full-size generator (``build_generator()`` defaults, ~31 M parameters)
is used; weights do not change the time.

Quality rows: PSNR of each variant's RGB output against the Keras fp32 output, and against
the true photo, on the evaluation crops of the ``val`` split of ``--photos`` (int8 is
calibrated on the ``train`` split). Only a trained generator (``--model``) makes them mean
something: random weights saturate tanh (colors at +-110, ~9 dB against the truth), and a few
hundred CPU steps (``--train-steps``) leave BatchNorm statistics that blow some photos'
activations up to ~10^3, which min/max int8 calibration cannot follow (measured: 100 steps
at 96 px gave 17.6 dB against the truth; 300 steps at 64 px, 13.6 dB).

``--work DIR`` keeps the generator and the converted files there and reuses them next time.

End to end: one photo of ``--photos`` upscaled to 4000 x 3000 (12 MP) and saved as JPEG in a
temporary folder (never in the repository), then ``colorize_files`` (decode, EXIF, serving,
encode, write) with the ``.keras`` generator and with the int8 TFLite file; cold (first
call: graph tracing, XLA compiles) and warm.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def _median_ms(fn, runs: int) -> float:
    fn()
    fn()  # warm-up: traces, allocations, XNNPACK packing
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000.0 * float(np.median(times))


def _torch_variants(l_norm: np.ndarray, generator, threads: int) -> dict:
    """The PyTorch twin of the generator (``bench/torch_reference.py``) at batch 1, eval mode,
    ``torch.inference_mode``: fp32, bf16 autocast, and channels-last + bf16 autocast, on
    ``threads`` threads (PyTorch's own default is one per physical core). Empty without torch.
    """
    try:
        import torch
    except ImportError:
        print("torch is not installed: no PyTorch rows (pip install torch)")
        return {}
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from torch_reference import UNetGenerator

    print(f"PyTorch {torch.__version__}: {threads} threads (its default here: "
          f"{torch.get_num_threads()})")  # fmt: skip
    torch.set_num_threads(threads)
    net = UNetGenerator(
        stage_filters=generator.encoder.stage_filters,
        decoder_filters=generator.decoder_filters,
        upsample=generator.upsample,
    ).eval()
    from colorize_tf.models import count_params

    ours, twin = count_params(generator)[0], sum(p.numel() for p in net.parameters())
    print(
        f"PyTorch twin: {twin:,} parameters ({'=' if twin == ours else 'MISMATCH:'} ours {ours:,})"
    )
    x = torch.from_numpy(l_norm.transpose(0, 3, 1, 2).copy())  # (1, 1, 256, 256)
    variants = {}
    for label, layout, bf16 in [
        ("PyTorch twin fp32", torch.contiguous_format, False),
        ("PyTorch twin bf16 autocast", torch.contiguous_format, True),
        ("PyTorch twin channels-last + bf16 autocast", torch.channels_last, True),
    ]:  # fmt: skip
        model = copy.deepcopy(net).to(memory_format=layout)
        inputs = x.contiguous(memory_format=layout)

        def run(model=model, inputs=inputs, bf16=bf16):
            with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
                return model(inputs).float().numpy()

        variants[label] = run
    return variants


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    from colorize_tf.core import metrics

    return float(np.mean(metrics.psnr(a, b)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", required=True, help="folder of real photos (read only)")
    parser.add_argument(
        "--model",
        help="generator .keras (default: random weights, seed 0, trained --train-steps L1 steps)",
    )
    parser.add_argument(
        "--train-steps", type=int, default=0, help="L1 steps on train crops first (no --model)"
    )
    parser.add_argument("--train-size", type=int, default=96, help="training crop size")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-torch", action="store_true", help="leave out the PyTorch twin's rows")
    parser.add_argument("--runs", type=int, default=5, help="timed calls per block")
    parser.add_argument("--rounds", type=int, default=3, help="blocks per variant")
    parser.add_argument("--calibration-images", type=int, default=64)
    parser.add_argument("--eval-images", type=int, default=24)
    parser.add_argument(
        "--work",
        help="folder for the converted files; reused when present "
        "(default: a new temporary folder)",
    )
    args = parser.parse_args(argv)

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    import keras

    from colorize_tf.data import pipeline as data
    from colorize_tf.export import savedmodel  # after the thread settings
    from colorize_tf.export import tflite as tflite_export
    from colorize_tf.inference import files as colorize
    from colorize_tf.inference import images, loader, serving
    from colorize_tf.models import build_generator, count_params

    size = serving.DEFAULT_SIZE
    work = Path(args.work or tempfile.mkdtemp(prefix="colorize_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    keras_path = work / "generator.keras"
    if args.model:
        generator = loader.load_generator(args.model)
    elif keras_path.exists():
        generator = loader.load_generator(keras_path)
        print(f"reusing {keras_path} and the files converted from it")
    else:
        keras.utils.set_random_seed(0)
        generator = build_generator()
        if args.train_steps:
            # See the module docstring: a few steps do not make the quality rows meaningful.
            start = time.perf_counter()
            generator.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mae")
            crops = data.build_dataset(
                args.photos, split="train", training=True, batch_size=8,
                crop_size=args.train_size, seed=0, repeat=True,
            )  # fmt: skip
            history = generator.fit(crops, steps_per_epoch=args.train_steps, epochs=1, verbose=0)
            print(
                f"trained {args.train_steps} L1 steps on {args.train_size} px crops of the "
                f"train split: L1 {history.history['loss'][-1]:.3f} "
                f"({time.perf_counter() - start:.0f} s)"
            )
        generator.save(keras_path)
    print(
        f"generator: {count_params(generator)}; {args.threads} threads; "
        f"{os.cpu_count()} CPUs visible; TF {tf.__version__}, Keras {keras.__version__}"
    )

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (1, size, size, 3), dtype=np.uint8)
    l_norm = serving.luminance(image, xla=False).numpy()  # (1, 256, 256, 1)

    # --- the variants ---
    variants: dict[str, object] = {}
    keras_fp32 = tf.function(lambda x: generator(x, training=False))
    variants["Keras fp32"] = lambda: keras_fp32(l_norm).numpy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    generator_bf16 = build_generator(
        encoder_filters=generator.encoder.stem_filters,
        decoder_filters=generator.decoder_filters,
        upsample=generator.upsample,
    )
    keras.config.set_dtype_policy("float32")
    generator_bf16.set_weights(generator.get_weights())
    keras_bf16 = tf.function(lambda x: generator_bf16(x, training=False))
    variants["Keras bf16 (mixed_bfloat16)"] = lambda: keras_bf16(l_norm).numpy()

    saved_model = work / "saved_model"
    if not saved_model.exists():
        savedmodel.export_savedmodel(generator, saved_model, size)
    loaded = tf.saved_model.load(str(saved_model))
    predict_ab = loaded.signatures["predict_ab"]
    serve = loaded.signatures["serving_default"]
    variants["SavedModel predict_ab"] = lambda: predict_ab(l_norm=tf.constant(l_norm))[
        "ab_norm"
    ].numpy()
    variants["SavedModel serving_default (uint8 in/out)"] = lambda: serve(
        image=tf.constant(image[0])
    )["rgb"].numpy()

    calibration = None
    tflite = {}
    for contract, precision in [
        ("predict_ab", "fp32"), ("predict_ab", "fp16"), ("predict_ab", "int8"),
        ("colorize_rgb", "fp32"), ("colorize_rgb", "int8"),
    ]:  # fmt: skip
        path = work / tflite_export.tflite_name(contract, precision)
        if not path.exists():  # --work reuses files converted by an earlier run
            if precision == "int8" and calibration is None:
                calibration = tflite_export.calibration_images(
                    args.photos, size, args.calibration_images, split="train"
                )
            start = time.perf_counter()
            path.write_bytes(
                tflite_export.convert_tflite(generator, contract, precision, size, calibration)
            )
            print(f"{path.name}: converted in {time.perf_counter() - start:.1f} s")
        print(f"{path.name}: {path.stat().st_size / 1e6:.1f} MB")
        runner = serving.TFLitePredictAB(str(path), args.threads)
        tflite[contract, precision] = runner
        x = l_norm if contract == "predict_ab" else image
        variants[f"TFLite {precision} {contract}"] = lambda runner=runner, x=x: runner.invoke(x)

    peers = _torch_variants(l_norm, generator, args.threads) if not args.no_torch else {}
    variants.update(peers)

    # Blocks of consecutive calls, repeated in rounds. Not call-by-call round robin: TF's
    # thread pools spin for a while after each op and steal the cores from a LiteRT call
    # that follows at once (measured 159 ms instead of 100 ms for int8); rounds still spread
    # a shared machine's changing load over all variants.
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, fn in variants.items():
            fn()  # warm-up: traces, allocations, XNNPACK weight packing, thread wake-up
            for _ in range(args.runs):
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    base = float(np.median(times["Keras fp32"]))
    print(
        f"\nLatency, one {size}x{size} image, batch 1, {args.threads} threads, median and min "
        f"of {args.rounds} rounds x {args.runs} calls:"
    )
    print(f"  {'variant':44s} {'median ms':>10s} {'min ms':>8s} {'x Keras fp32':>13s}")
    for name, values in times.items():
        median = float(np.median(values))
        print(f"  {name:44s} {1000 * median:10.1f} {1000 * min(values):8.1f} {median / base:13.2f}")
    if peers:
        medians = {name: float(np.median(values)) for name, values in times.items()}
        best_peer = min(peers, key=medians.get)
        for name in ("Keras fp32", "Keras bf16 (mixed_bfloat16)", "TFLite int8 predict_ab"):
            print(
                f"  {name} / fastest PyTorch twin ({best_peer}): "
                f"{medians[name] / medians[best_peer]:.2f}x"
            )

    # --- quality on photos ---
    evaluation = (
        data.build_eval_rgb_dataset(args.photos, split="val", crop_size=size, max_images=0)
        .unbatch()
        .take(args.eval_images)
    )
    truths = [np.round(x["rgb"].numpy() * 255.0).astype(np.uint8)[np.newaxis] for x in evaluation]
    reference = serving.keras_predict_ab(generator)
    fp32_out = [serving.colorize_batch(t, reference, size, xla=False).numpy() for t in truths]
    psnr_fp32_truth = np.mean([_psnr(o, t) for o, t in zip(fp32_out, truths, strict=True)])
    print(
        f"\nQuality on {len(truths)} val crops of {args.photos} "
        f"(Keras fp32 vs truth: {psnr_fp32_truth:.2f} dB):"
    )
    print(f"  {'variant':52s} {'vs fp32 dB':>10s} {'vs truth dB':>12s} {'loss dB':>8s}")
    for (contract, precision), runner in tflite.items():
        if contract == "colorize_rgb":
            outs = [runner.invoke(t) for t in truths]
        else:
            outs = [serving.colorize_batch(t, runner, size, xla=False).numpy() for t in truths]
        vs_fp32 = np.mean([_psnr(o, r) for o, r in zip(outs, fp32_out, strict=True)])
        vs_truth = np.mean([_psnr(o, t) for o, t in zip(outs, truths, strict=True)])
        print(
            f"  {'TFLite ' + precision + ' ' + contract:52s} {vs_fp32:10.2f} {vs_truth:12.2f} "
            f"{psnr_fp32_truth - vs_truth:8.2f}"
        )

    # --- end to end, 12 MP ---
    from PIL import Image

    sources = sorted(p for p in Path(args.photos).rglob("*.jpg"))
    with Image.open(sources[0]) as photo:
        big = photo.convert("RGB").resize((4000, 3000), Image.BICUBIC)
    big_path = work / "photo_12mp.jpg"
    big.save(big_path, quality=92)
    if not keras_path.exists():
        generator.save(keras_path)
    print(
        f"\nEnd to end, {big_path.name} 4000x3000 (upscaled from {sources[0].name}), "
        f"{big_path.stat().st_size / 1e6:.1f} MB JPEG:"
    )
    jobs = [colorize.Job(big_path, Path("photo_12mp"))]
    for label, model_path in [
        ("Keras .keras", str(keras_path)),
        ("TFLite int8 predict_ab", str(work / "predict_ab_int8.tflite")),
        ("SavedModel", str(work / "saved_model")),
    ]:
        fn = loader.load_colorizer(model_path, size=size, threads=args.threads)
        for output_format in ("jpeg", "png"):
            times = []
            for _ in range(3):
                start = time.perf_counter()
                summary = colorize.colorize_files(
                    jobs, fn, work / "out", output_format=output_format, overwrite=True,
                    verbose=False,
                )  # fmt: skip
                times.append(time.perf_counter() - start)
                assert summary.written == 1, summary
            print(
                f"  {label:24s} -> {output_format:4s}: cold {times[0]:.2f} s, "
                f"warm {min(times[1:]):.2f} s"
            )

    # Where the warm time goes (Keras path, JPEG out).
    pixels, _ = images.read_image(big_path)
    stages = {
        "read + decode + EXIF": lambda: images.read_image(big_path),
        "L at full size": lambda: serving._luminance_graph(tf.constant(pixels[np.newaxis])),
    }
    l_full = serving._luminance_graph(tf.constant(pixels[np.newaxis]))
    stages["L resized to 256"] = lambda: serving.model_input(l_full, size).numpy()
    l_small = serving.model_input(l_full, size)
    stages["network (Keras fp32)"] = lambda: keras_fp32(l_small).numpy()
    ab = keras_fp32(l_small)
    stages["ab up + Lab -> RGB"] = lambda: serving._compose_graph(l_full, ab).numpy()
    rgb = serving._compose_graph(l_full, ab).numpy()[0]
    stages["JPEG encode + write"] = lambda: images.write_image(
        work / "stage.jpg", rgb, "JPEG", colorize.DEFAULT_JPEG_QUALITY
    )
    stages["PNG encode + write"] = lambda: images.write_image(
        work / "stage.png", rgb, "PNG", colorize.DEFAULT_JPEG_QUALITY
    )
    print("  warm stages (median of 3):")
    for name, fn in stages.items():
        print(f"    {name:28s} {_median_ms(fn, 3):8.0f} ms")
    print(f"\n(temporary files in {work})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
