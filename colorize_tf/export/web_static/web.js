// The page of `python -m colorize_tf.export --web`: colorize photos on this device with LiteRT.js.
//
// It does what colorize_tf/inference/serving.py does, so a photo comes out as the Python path
// colorizes it with the same .tflite file. The graph's three signatures (export/web.py) do the
// per-pixel math in chunks; this script decodes, resamples (TensorFlow's kernels, below) and
// shows. Nothing is sent anywhere: the only requests are for this folder's own files.
import { Tensor, isWebGPUSupported, loadAndCompile, loadLiteRt, supportsFeature }
  from "./litertjs/core.js";

const $ = (selector, root = document) => root.querySelector(selector);
const megabytes = (bytes) => String(+(bytes / 1e6).toPrecision(3));
const megapixels = (pixels) => (pixels / 1e6).toFixed(1);
const pixelCount = (pixels) => pixels.toLocaleString("en");

let config = null;
let model = null;  // the compiled colorize_web.tflite
let queue = Promise.resolve();  // one photo at a time: each holds ~25 bytes a pixel

class PhotoError extends Error {}

// --- the runtime and the model ------------------------------------------------------------

async function loadModel() {
  config = await (await fetch("web.json")).json();
  $("#model").textContent = `${config.model} (${config.precision}, ` +
    `${megabytes(config.bytes)} MB; network input ${config.size} × ${config.size} px)`;
  $("#limits").textContent = `Limits: ${megapixels(config.max_pixels)} megapixels ` +
    `(${pixelCount(config.max_pixels)} pixels) and ${megabytes(config.max_bytes)} MB per ` +
    "photo (a phone's memory).";
  await loadLiteRt(new URL("litertjs/", document.baseURI).href);  // picks the SIMD build
  const wanted = new URLSearchParams(location.search).get("backend");  // ?backend=wasm
  let backend = null;
  if (wanted !== "wasm" && isWebGPUSupported()) {
    try {
      model = await loadAndCompile(config.file, { accelerator: "webgpu" });
      // Without JSPI an op WebGPU lacks sends the whole graph back to the CPU.
      backend = model.isFullyAccelerated ? "WebGPU" : "wasm (WebGPU lacks an op of the model)";
    } catch (error) {
      console.warn(`WebGPU unavailable, using wasm: ${error.message}`);
    }
  }
  if (!model) {
    model = await loadAndCompile(config.file, { accelerator: "wasm" });
    const simd = await supportsFeature("relaxedSimd");
    backend = `wasm (XNNPack on the CPU${simd ? ", relaxed SIMD" : ""})`;
  }
  $("#backend").textContent = backend;
  document.body.dataset.backend = backend.split(" ")[0];
}

async function run(signature, inputs, output) {
  const tensors = Object.fromEntries(
    Object.entries(inputs).map(([name, [data, shape]]) => [name, new Tensor(data, shape)]));
  const outputs = await model.signatures[signature].run(tensors);
  const values = outputs[output].toTypedArray().slice();  // a copy out of the wasm heap
  for (const t of [...Object.values(tensors), ...Object.values(outputs)]) t.delete();
  return values;
}

// --- resampling: TensorFlow's kernels, as serving.py calls them ----------------------------

// tf.image.resize(antialias=True) = ScaleAndTranslate with the triangle kernel: each output
// sample's source span and normalized weights along one axis.
function antialiasSpans(inSize, outSize) {
  const invScale = 1 / Math.fround(outSize / inSize);
  const kernelScale = Math.max(invScale, 1);
  const spans = [];
  for (let x = 0; x < outSize; x++) {
    const sample = (x + 0.5) * invScale;
    const start = Math.min(Math.max(Math.ceil(sample - kernelScale - 0.5), 0), inSize - 1);
    const end = Math.min(Math.max(Math.floor(sample + kernelScale - 0.5), 0), inSize - 1) + 1;
    const weights = [];
    let total = 0;
    for (let s = start; s < end; s++) {
      const w = Math.max(0, 1 - Math.abs((s + 0.5 - sample) / kernelScale));
      weights.push(w);
      total += w;
    }
    spans.push({ start, weights: weights.map((w) => w / total) });
  }
  return spans;
}

// An image (h, w, c) of floats resampled to (outH, outW, c), rows then columns, as
// ScaleAndTranslate gathers them.
function antialiasResize(values, h, w, c, outH, outW) {
  const rows = antialiasSpans(h, outH);
  const cols = antialiasSpans(w, outW);
  const middle = new Float32Array(outH * w * c);  // (outH, w, c)
  rows.forEach(({ start, weights }, y) => {
    const target = middle.subarray(y * w * c, (y + 1) * w * c);
    weights.forEach((weight, k) => {
      const source = values.subarray((start + k) * w * c, (start + k + 1) * w * c);
      for (let i = 0; i < w * c; i++) target[i] += weight * source[i];
    });
  });
  const out = new Float32Array(outH * outW * c);
  for (let y = 0; y < outH; y++) {
    cols.forEach(({ start, weights }, x) => {
      for (let ch = 0; ch < c; ch++) {
        let sum = 0;
        weights.forEach((weight, k) => { sum += weight * middle[(y * w + start + k) * c + ch]; });
        out[(y * outW + x) * c + ch] = sum;
      }
    });
  }
  return out;
}

// tf.image.resize(method="bilinear") = ResizeBilinear with half-pixel centers, one axis:
// for each output index its two source indices and the weight of the second.
function bilinearAxis(inSize, outSize) {
  const scale = Math.fround(inSize / outSize);
  const lower = new Int32Array(outSize);
  const upper = new Int32Array(outSize);
  const lerp = new Float32Array(outSize);
  for (let x = 0; x < outSize; x++) {
    const source = Math.fround((x + 0.5) * scale - 0.5);
    const floor = Math.floor(source);
    lower[x] = Math.max(floor, 0);
    upper[x] = Math.min(Math.ceil(source), inSize - 1);
    lerp[x] = source - floor;
  }
  return { lower, upper, lerp };
}

// ab (size, size, 2) brought to the photo's size (bilinear, along `ys` and `xs`) for the pixels
// [start, start + count) in raster order.
function bilinearChunk(ab, size, width, ys, xs, start, count, out) {
  for (let i = 0; i < count; i++) {
    const y = Math.floor((start + i) / width);
    const x = start + i - y * width;
    const top = ys.lower[y] * size;
    const bottom = ys.upper[y] * size;
    for (let ch = 0; ch < 2; ch++) {
      const tl = ab[(top + xs.lower[x]) * 2 + ch], tr = ab[(top + xs.upper[x]) * 2 + ch];
      const bl = ab[(bottom + xs.lower[x]) * 2 + ch], br = ab[(bottom + xs.upper[x]) * 2 + ch];
      const t = tl + (tr - tl) * xs.lerp[x];
      const b = bl + (br - bl) * xs.lerp[x];
      out[i * 2 + ch] = t + (b - t) * ys.lerp[y];
    }
  }
}

// --- one photo ----------------------------------------------------------------------------

// The photo's upright size from its header (an <img> reads it without decoding the pixels).
function measure(file) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    const url = URL.createObjectURL(file);
    image.onload = () => { URL.revokeObjectURL(url); resolve([image.naturalWidth, image.naturalHeight]); };
    image.onerror = () => {
      URL.revokeObjectURL(url);
      reject(new PhotoError(`${file.name}: not an image this browser can read`));
    };
    image.src = url;
  });
}

async function decode(file) {
  if (file.size > config.max_bytes) {
    throw new PhotoError(`${file.name}: too large: ${megabytes(file.size)} MB exceeds the ` +
      `${megabytes(config.max_bytes)} MB limit`);
  }
  const [width, height] = await measure(file);
  if (width * height > config.max_pixels) {
    throw new PhotoError(`${file.name}: too large: ${width} × ${height} px is ` +
      `${pixelCount(width * height)} pixels, more than the ${pixelCount(config.max_pixels)} ` +
      "this page takes (a phone's memory); shrink it first");
  }
  if (Math.min(width, height) < 8) {
    throw new PhotoError(`${file.name}: too small: ${width} × ${height} px; both sides must ` +
      "be >= 8");
  }
  // EXIF orientation applied; no color management (Python reads the raw values too).
  const bitmap = await createImageBitmap(file, {
    imageOrientation: "from-image", colorSpaceConversion: "none", premultiplyAlpha: "none",
  });
  const canvas = document.createElement("canvas");
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(bitmap, 0, 0);
  bitmap.close();
  return { canvas, context, pixels: context.getImageData(0, 0, canvas.width, canvas.height) };
}

async function colorize(file, report) {
  const start = performance.now();
  const stages = {};  // milliseconds per step, shown in the card's data-stages
  let mark = start;
  const lap = (name) => { const now = performance.now(); stages[name] = now - mark; mark = now; };
  const { canvas, context, pixels } = await decode(file);
  lap("decode");
  const { width, height } = pixels;
  const count = width * height;
  const chunk = config.chunk_pixels;
  const size = config.size;
  const rgba = pixels.data;  // (height, width, 4) uint8, raster order
  // 1. L of every pixel, at full resolution (the graph's `luminance`).
  const lFull = new Float32Array(count);
  const rgbaChunk = new Uint8Array(chunk * 4);
  for (let at = 0; at < count; at += chunk) {
    const n = Math.min(chunk, count - at);
    rgbaChunk.fill(0).set(rgba.subarray(at * 4, (at + n) * 4));
    const l = await run("luminance", { rgba: [rgbaChunk, [chunk, 4]] }, "l_norm");
    lFull.set(l.subarray(0, n), at);
    report(`reading the light… ${Math.round((50 * (at + n)) / count)}%`);
  }
  lap("luminance");
  // 2. L shrunk to the network's square (antialiased bilinear), 3. the network.
  const lSmall = antialiasResize(lFull, height, width, 1, size, size);
  lap("shrink");
  const ab = await run("predict_ab", { l_norm: [lSmall, [1, size, size, 1]] }, "ab_norm");
  lap("network");
  // 4. ab back to full size (bilinear; antialiased where a side shrinks), joined to the
  // full-size L and turned into sRGB by the graph's `compose`.
  const shrinks = height < size || width < size;  // a small photo: antialiased, whole
  const abFull = shrinks ? antialiasResize(ab, size, size, 2, height, width) : null;
  const ys = bilinearAxis(size, height);
  const xs = bilinearAxis(size, width);
  const lChunk = new Float32Array(chunk);
  const abPart = new Float32Array(chunk * 2);
  for (let at = 0; at < count; at += chunk) {
    const n = Math.min(chunk, count - at);
    lChunk.fill(0).set(lFull.subarray(at, at + n));
    abPart.fill(0);
    if (abFull) abPart.set(abFull.subarray(at * 2, (at + n) * 2));
    else bilinearChunk(ab, size, width, ys, xs, at, n, abPart);
    const out = await run(
      "compose", { l_norm: [lChunk, [chunk, 1]], ab_norm: [abPart, [chunk, 2]] }, "rgba");
    rgba.set(out.subarray(0, n * 4), at * 4);
    report(`coloring… ${50 + Math.round((50 * (at + n)) / count)}%`);
  }
  lap("compose");
  context.putImageData(pixels, 0, 0);
  const png = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
  canvas.width = canvas.height = 0;  // frees the canvas's memory at once (Safari keeps it)
  lap("encode");
  const totalMs = performance.now() - start;
  return { png, width, height, networkMs: stages.network, totalMs, stages };
}

// --- the page -----------------------------------------------------------------------------

function showResult(card, file, result) {
  const compare = $(".compare", card);
  const after = $(".after", card);
  const slider = $(".slider", card);
  const divider = $(".divider", card);
  const place = () => {
    after.style.clipPath = `inset(0 0 0 ${slider.value}%)`;
    divider.style.left = `${slider.value}%`;
  };
  slider.addEventListener("input", place);
  place();
  $(".before", card).src = URL.createObjectURL(file);
  after.src = URL.createObjectURL(result.png);
  compare.hidden = false;
  const link = $(".download", card);
  const size = `${result.width} × ${result.height}`;
  link.href = after.src;
  link.download = `${file.name.replace(/\.[^.]*$/, "")}_colorized.png`;
  link.textContent = `Download full resolution (PNG, ${size})`;
  link.hidden = false;
  Object.assign(card.dataset, {
    width: result.width, height: result.height,
    networkMs: result.networkMs.toFixed(1), totalMs: result.totalMs.toFixed(1),
    stages: JSON.stringify(Object.fromEntries(
      Object.entries(result.stages).map(([name, ms]) => [name, Math.round(ms)]))),
  });
  card.dataset.state = "done";
  $(".status", card).textContent = `done: ${size} px; on this device ` +
    `(${$("#backend").textContent.split(" ")[0]}): network ${result.networkMs.toFixed(0)} ms, ` +
    `whole photo ${(result.totalMs / 1000).toFixed(1)} s`;
}

function addFile(file) {
  const card = $("#card").content.firstElementChild.cloneNode(true);
  $(".name", card).textContent = file.name;
  $("#results").prepend(card);
  queue = queue.then(async () => {
    card.dataset.state = "running";
    const report = (text) => { $(".status", card).textContent = text; };
    try {
      showResult(card, file, await colorize(file, report));
    } catch (error) {
      card.dataset.state = "failed";
      const known = error instanceof PhotoError;
      $(".status", card).textContent = known ? error.message
        : `${file.name}: failed (${error.name}: ${error.message})`;
      if (!known) console.warn(error);
    }
  });
}

async function main() {
  try {
    await loadModel();
  } catch (error) {
    $("#backend").textContent = `could not start: ${error.message}`;
    document.body.dataset.ready = "failed";
    return;
  }
  const drop = $("#drop");
  for (const input of [$("#files"), $("#camera")]) {
    input.addEventListener("change", () => {
      for (const file of input.files) addFile(file);
      input.value = "";
    });
  }
  // Dropping anywhere must not make the browser open the file itself.
  for (const type of ["dragover", "drop"]) {
    document.addEventListener(type, (event) => event.preventDefault());
  }
  drop.addEventListener("dragover", () => drop.classList.add("over"));
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    drop.classList.remove("over");
    for (const file of event.dataTransfer.files) addFile(file);
  });
  document.body.dataset.ready = "true";
}

main();
