// The page of `python -m colorize_tf.app`: upload each photo, poll its job, show before/after.
"use strict";

const POLL_MS = 400;
let info = null;
const totals = { added: 0, finished: 0 };

const $ = (selector, root = document) => root.querySelector(selector);
// Same text as Python's f"{x:g}" for the limits we print (64 -> "64", 1.5 -> "1.5").
const megabytes = (bytes) => String(+(bytes / 1e6).toPrecision(6));

async function loadInfo() {
  const response = await fetch("/api/info");
  info = await response.json();
  $("#model").textContent = info.model;
  // A SavedModel carries its input size inside its graph, out of sight.
  $("#size").textContent = info.input_size
    ? `${info.input_size} × ${info.input_size} px (the L channel is resized to it; the result ` +
      "has the photo's own size)"
    : "the size stored in the SavedModel";
  const worker = info.workers === 1 ? "one photo at a time" : `${info.workers} photos at a time`;
  $("#limits").textContent = `Limits: ${info.max_pixels.toLocaleString("en")} pixels and ` +
    `${megabytes(info.max_upload_bytes)} MB per photo; ${worker}.`;
}

function updateOverall() {
  $("#overall").hidden = totals.added === 0;
  $("#progress").max = totals.added;
  $("#progress").value = totals.finished;
  $("#progress-text").textContent = `${totals.finished} of ${totals.added} finished`;
}

function finish(card, state, text) {
  card.dataset.state = state;
  $(".status", card).textContent = text;
  totals.finished += 1;
  updateOverall();
}

function showResult(card, job) {
  const base = `/api/jobs/${job.id}`;
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
  $(".before", card).src = `${base}/before.jpg`;
  after.src = `${base}/after.jpg`;
  compare.hidden = false;
  const link = $(".download", card);
  const size = `${job.width} × ${job.height}`;
  if (job.kind === "video") {  // the slider shows the first frame; the player, the whole film
    const film = $(".film", card);
    film.src = `${base}/result.mp4`;
    film.hidden = false;
    link.href = film.src;
    link.textContent = `Download the colorized video (MP4, ${size}, ${job.frames} frames)`;
  } else {
    link.href = `${base}/result.png`;
    link.textContent = `Download full resolution (PNG, ${size})`;
  }
  link.hidden = false;
  const frames = job.kind === "video" ? `, ${job.frames} frames` : "";
  finish(card, "done", `done: ${size} px${frames} in ${job.seconds.toFixed(1)} s`);
}

async function poll(card, id) {
  let job;
  try {
    const response = await fetch(`/api/jobs/${id}`);
    job = await response.json();
    if (!response.ok) return finish(card, "failed", job.error);
  } catch (error) {
    return finish(card, "failed", `lost contact with the server (${error.message})`);
  }
  card.dataset.state = job.state;
  if (job.state === "done") return showResult(card, job);
  if (job.state === "failed") return finish(card, "failed", job.message);
  $(".status", card).textContent = job.state === "queued"
    ? `waiting: ${job.position === 1 ? "next" : `number ${job.position} in the queue`}`
    : `${job.stage}${job.frames ? ` ${job.frames} frames` : ""}… ${job.seconds.toFixed(1)} s`;
  setTimeout(() => poll(card, id), POLL_MS);
}

async function upload(file) {
  const card = $("#card").content.firstElementChild.cloneNode(true);
  $(".name", card).textContent = file.name;
  $("#results").prepend(card);
  totals.added += 1;
  updateOverall();
  if (file.size > info.max_upload_bytes) {
    return finish(card, "failed", `${file.name}: too large to upload: ` +
      `${(file.size / 1e6).toFixed(1)} MB exceeds the ${megabytes(info.max_upload_bytes)} MB ` +
      "limit (--max-upload-mb)");
  }
  try {
    const response = await fetch("/api/jobs", {
      method: "POST",
      headers: { "Content-Type": "application/octet-stream",
                 "X-File-Name": encodeURIComponent(file.name) },
      body: file,
    });
    const job = await response.json();
    if (!response.ok) return finish(card, "failed", job.error);
    poll(card, job.id);
  } catch (error) {
    finish(card, "failed", `${file.name}: upload failed (${error.message})`);
  }
}

function addFiles(files) {
  for (const file of files) upload(file);
}

document.addEventListener("DOMContentLoaded", async () => {
  await loadInfo();
  const drop = $("#drop");
  const input = $("#files");
  input.addEventListener("change", () => { addFiles(input.files); input.value = ""; });
  // Dropping anywhere must not make the browser open the file itself.
  for (const type of ["dragover", "drop"]) {
    document.addEventListener(type, (event) => event.preventDefault());
  }
  drop.addEventListener("dragover", () => drop.classList.add("over"));
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    drop.classList.remove("over");
    addFiles(event.dataTransfer.files);
  });
  document.body.dataset.ready = "true";
});
