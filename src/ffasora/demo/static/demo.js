// The demo page: fill the report box from an example, show the parser's findings, pick a model variant (and
// a colour photograph for one that takes it), submit a generation job, poll its progress, then show the
// video and its frame strip.
"use strict";

const $ = (id) => document.getElementById(id);
const examples = JSON.parse($("example-data").textContent);
const models = JSON.parse($("variant-data").textContent);
let findingsTimer = null;

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  if (className) node.className = className;
  return node;
}

async function postJSON(url, body) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const data = await response.json();
  if (!response.ok) throw new Error(data.detail || response.statusText);
  return data;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

function findingItem(f) {
  const li = element("li", null, "finding");
  li.dataset.code = f.code;
  li.appendChild(element("code", f.code));
  li.appendChild(element("span", " " + f.en));
  if (f.zh) li.appendChild(element("span", " " + f.zh, "zh"));
  const details = [(f.location || []).join(", "), f.onset_phase, f.evolution, f.grade].filter(Boolean);
  if (details.length) li.appendChild(element("span", " (" + details.join("; ") + ")", "muted"));
  return li;
}

function renderFindings(data) {
  const body = $("findings-body");
  body.replaceChildren();
  if (data.error) {
    body.appendChild(element("p", data.error, "muted"));
    return;
  }
  const groups = [
    ["Present", data.present, "present"],
    ["Stated absent", data.absent, "absent"],
    ["Diagnoses", data.diagnoses, "diagnoses"],
  ];
  if (data.eye) body.appendChild(element("p", "Eye: " + data.eye +
    (data.arm_retina_s ? ", arm-to-retina time " + data.arm_retina_s + " s" : "")));
  for (const [title, items, id] of groups) {
    body.appendChild(element("h3", title));
    const list = element("ul", null, "findings-list");
    list.id = "findings-" + id;
    if (!items.length) list.appendChild(element("li", "none", "muted"));
    for (const f of items) list.appendChild(findingItem(f));
    body.appendChild(list);
  }
}

async function readFindings() {
  const report = $("report").value;
  if (!report.trim()) return;
  try {
    renderFindings(await postJSON("/api/findings", { report }));
  } catch (err) {
    showError(err.message);
  }
}

function renderResult(result) {
  $("result").hidden = false;
  $("video").hidden = false;
  $("gif").hidden = true;
  $("video").src = result.mp4;
  $("gif").src = result.gif;
  const m = result.metadata;
  const model = m.variant ? `model ${m.variant}, ` : "";
  const photo = m.image_sha256 ? `, photograph sha256 ${m.image_sha256.slice(0, 12)}` : "";
  $("meta").textContent =
    `${model}seed ${m.seed}, ${m.steps} steps (${m.sampler}), guidance ${m.guidance}, ${m.seconds} s${photo}`;
  const strip = $("frames");
  strip.replaceChildren();
  result.frames.forEach((frame, i) => {
    const li = element("li", null, "frame");
    const img = element("img");
    img.src = frame.url;
    img.alt = `frame ${i + 1} at ${frame.clock}`;
    li.appendChild(img);
    li.appendChild(element("span", frame.clock, "time"));
    strip.appendChild(li);
  });
  renderFindings(result.findings);
}

async function poll(job) {
  const response = await fetch(`/api/jobs/${job}`);
  const state = await response.json();
  const bar = $("progress-bar");
  if (state.state === "queued") {
    $("progress-text").textContent = "waiting for the model...";
  } else if (state.state === "running") {
    bar.value = state.fraction;
    $("progress-text").textContent = state.phase
      ? `${state.phase} ${state.done}/${state.total}` : "encoding the report...";
  }
  if (state.state === "done") {
    bar.value = 1;
    $("progress-text").textContent = "done";
    $("generate").disabled = false;
    renderResult(state.result);
    return;
  }
  if (state.state === "error") {
    $("generate").disabled = false;
    $("progress").hidden = true;
    showError(state.error);
    return;
  }
  setTimeout(() => poll(job), 250);
}

function selectedModel() {
  const name = $("variant") ? $("variant").value : models.default;
  return models.choices.find((c) => c.name === name) || { name, takes_image: false };
}

function showPhotoBox() {
  $("photo-box").hidden = !selectedModel().takes_image;
}

// The chosen photograph's bytes in base64 (the file's name is never sent), or null when none is chosen.
function readPhoto() {
  const file = $("photo").files[0];
  if ($("photo-box").hidden || !file) return Promise.resolve(null);
  if (file.size > models.max_photo_bytes) {
    return Promise.reject(new Error(`The photograph is larger than ${models.max_photo_bytes / 1048576} MB.`));
  }
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(",", 2)[1] || "");
    reader.onerror = () => reject(new Error("The photograph could not be read."));
    reader.readAsDataURL(file);
  });
}

async function generate() {
  showError("");
  const report = $("report").value;
  if (!report.trim()) {
    showError("Type a report or pick an example first.");
    return;
  }
  $("generate").disabled = true;
  $("progress").hidden = false;
  $("progress-bar").value = 0;
  try {
    const body = { report, seed: Number($("seed").value) || 0, variant: selectedModel().name };
    const image = await readPhoto();
    if (image !== null) body.image = image;
    const { job } = await postJSON("/api/generate", body);
    poll(job);
  } catch (err) {
    $("generate").disabled = false;
    showError(err.message);
  }
}

document.querySelectorAll("button.example").forEach((button) => {
  button.addEventListener("click", () => {
    $("report").value = examples[Number(button.dataset.index)].report;
    readFindings();
  });
});
$("report").addEventListener("input", () => {
  clearTimeout(findingsTimer);
  findingsTimer = setTimeout(readFindings, 400);
});
$("generate").addEventListener("click", generate);
if ($("variant")) $("variant").addEventListener("change", showPhotoBox);
showPhotoBox();
// A browser without the mp4's codec shows the animated GIF instead.
$("video").addEventListener("error", () => {
  $("video").hidden = true;
  $("gif").hidden = false;
});
