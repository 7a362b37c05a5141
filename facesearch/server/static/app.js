// facesearch page: calls the public API (/api/v1) and nothing else. No build step.
"use strict";

const API = "api/v1"; // relative: works behind a reverse proxy under a sub-path
const KEY_STORE = "facesearch-api-key";
const $ = (id) => document.getElementById(id);

const state = {
  maxUpload: 20 * 1024 * 1024,
  people: [], // [{name, faces, created, face_id}]
  identified: null, // {file, result} of the photo shown
  selected: null, // index of the face picked in it
  person: null, // name of the person shown in detail
  blobUrls: [], // thumbnails fetched with the key, revoked when redrawn
  apiKeys: false, // the server wants a key: pictures and events are fetched with it
  cameras: null, // {name: card parts} once the Cameras view is built
  camerasAway: false, // the cameras' states could not be asked last time
  lastEvent: 0, // id of the newest timeline event shown
};

// -- the API ------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function keyHeaders(headers = {}) {
  const key = localStorage.getItem(KEY_STORE);
  if (key) headers["X-API-Key"] = key;
  return headers;
}

async function api(method, path, body) {
  const headers = keyHeaders();
  if (body && !(body instanceof FormData)) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(body);
  }
  const response = await fetch(`${API}/${path}`, { method, headers, body });
  if (response.status === 401) $("key-form").hidden = false;
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      message = (await response.json()).error || message;
    } catch (_) { /* not JSON: keep the status line */ }
    throw new ApiError(response.status, message);
  }
  const type = response.headers.get("content-type") || "";
  return type.includes("application/json") ? response.json() : response.blob();
}

const person = (name) => `people/${encodeURIComponent(name)}`;

async function thumbnailUrl(faceId) {
  const blob = await api("GET", `faces/${faceId}/thumbnail`);
  const url = URL.createObjectURL(blob);
  state.blobUrls.push(url);
  return url;
}

// -- small helpers ------------------------------------------------------------------------------

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props);
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function say(text, isError = false) {
  const box = $("message");
  box.textContent = text;
  box.className = isError ? "error" : "";
  box.hidden = !text;
}

async function attempt(action) {
  try {
    say("");
    await action();
  } catch (err) {
    say(err.message, true);
  }
}

function dropZone(zone, input, onFiles) {
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    onFiles([...e.dataTransfer.files]);
  });
  input.addEventListener("change", () => onFiles([...input.files]));
}

const fmt = (x) => (x === null || x === undefined ? "–" : x.toFixed(3));

// -- header: the gallery and the threshold in force ---------------------------------------------

async function loadInfo() {
  const info = await api("GET", "info");
  state.maxUpload = info.server.max_upload_bytes;
  state.apiKeys = info.server.api_keys;
  document.body.classList.toggle("read-only", info.server.access !== "read-write");
  $("summary").textContent = `${info.people} people, ${info.faces} faces`;
  $("threshold").textContent = `threshold ${fmt(info.threshold)} (${info.threshold_source})`;
  $("key-form").hidden = true;
}

// -- identify -----------------------------------------------------------------------------------

async function identify(file) {
  const form = new FormData();
  form.append("file", file, file.name || "pasted.png");
  const result = await api("POST", "identify", form);
  state.identified = { file, result };
  state.selected = null;
  showIdentified();
}

function describe(face) {
  if (face.quality === "low") return "low quality: too small or unsure a detection to name";
  if (face.name) {
    return `${face.name}: similarity ${fmt(face.similarity)} (distance ${fmt(face.distance)})`;
  }
  return face.nearest
    ? `unknown: nearest ${face.nearest}, similarity ${fmt(face.similarity)}, rejected`
    : "unknown: no one enrolled yet";
}

function showIdentified() {
  const { file, result } = state.identified;
  const img = $("identify-img");
  if (img.dataset.file !== file.name + file.size) {
    if (img.src) URL.revokeObjectURL(img.src);
    img.src = URL.createObjectURL(file);
    img.dataset.file = file.name + file.size;
  }
  const photo = $("identify-photo");
  photo.querySelectorAll(".face-box").forEach((b) => b.remove());
  const list = $("identify-faces");
  list.replaceChildren();
  result.faces.forEach((face, i) => {
    const [x1, y1, x2, y2] = face.box;
    const known = face.name !== null;
    const box = el("button", {
      type: "button",
      className: `face-box ${known ? "known" : "unknown"}`,
      title: describe(face),
    }, el("span", { className: "face-label", textContent: face.name || "unknown" }));
    box.dataset.index = i;
    box.dataset.name = face.name || "";
    box.style.left = `${(100 * x1) / result.width}%`;
    box.style.top = `${(100 * y1) / result.height}%`;
    box.style.width = `${(100 * (x2 - x1)) / result.width}%`;
    box.style.height = `${(100 * (y2 - y1)) / result.height}%`;
    if (y1 < 0.08 * result.height) box.classList.add("label-below");
    if (state.selected === i) box.classList.add("selected");
    box.addEventListener("click", () => selectFace(i));
    photo.append(box);
    list.append(el("li", {},
      el("span", { className: known ? "known" : "unknown", textContent: face.name || "unknown" }),
      ` ${describe(face).replace(/^[^:]*: /, "")} `,
      el("button", { type: "button", textContent: "name this face", className: "writer",
                     onclick: () => selectFace(i) })));
  });
  $("identify-result").hidden = false;
  const n = result.faces.length;
  say(n ? "" : "No face found in this photo.");
  $("face-actions").hidden = state.selected === null;
}

function selectFace(i) {
  state.selected = i;
  const face = state.identified.result.faces[i];
  $("face-actions-title").textContent = `Face ${i + 1}: ${describe(face)}`;
  $("existing-person").replaceChildren(
    ...state.people.map((p) => el("option", { value: p.name, textContent: p.name })));
  showIdentified();
  $("new-person-name").focus();
}

async function enrollSelected(name) {
  const { result } = state.identified;
  const face = result.faces[state.selected];
  const form = new FormData();
  form.append("face_from", result.token);
  form.append("box", face.box.join(","));
  await api("POST", `${person(name)}/faces`, form);
  say(`Added this face to ${name}.`);
  await Promise.all([loadPeople(), loadInfo()]);
  await identify(state.identified.file); // show the new name over the face
}

// -- enroll -------------------------------------------------------------------------------------

// Photos go in as few requests as the upload limit allows; each photo's outcome is listed.
function batches(files) {
  const limit = 0.9 * state.maxUpload;
  const out = [];
  let batch = [];
  let size = 0;
  for (const f of files) {
    if (batch.length && (size + f.size > limit || batch.length >= 16)) {
      out.push(batch);
      batch = [];
      size = 0;
    }
    batch.push(f);
    size += f.size;
  }
  if (batch.length) out.push(batch);
  return out;
}

async function enroll(name, files) {
  const outcome = $("enroll-outcome");
  outcome.replaceChildren();
  const line = (cls, text) => outcome.append(el("li", { className: cls, textContent: text }));
  let added = 0;
  for (const batch of batches(files)) {
    const fits = batch.filter((f) => f.size <= state.maxUpload);
    batch.filter((f) => f.size > state.maxUpload)
      .forEach((f) => line("skipped", `${f.name}: too large for this server`));
    if (!fits.length) continue;
    const form = new FormData();
    fits.forEach((f) => form.append("file", f, f.name));
    const report = await api("POST", `${person(name)}/faces`, form);
    const skipped = new Map(report.skipped.map((s) => [s.path, s]));
    for (const f of fits) {
      const s = skipped.get(f.name);
      if (s) line("skipped", `${f.name}: ${s.reason.replace("_", " ")}${s.detail ? ` (${s.detail})` : ""}`);
      else line("added", `${f.name}: added`);
    }
    added += report.enrolled;
  }
  say(`Enrolled ${added} photo(s) of ${name}.`, added === 0);
  await Promise.all([loadPeople(), loadInfo()]);
}

// -- people -------------------------------------------------------------------------------------

async function loadPeople() {
  const { people } = await api("GET", "people");
  state.people = people;
  state.blobUrls.forEach((u) => URL.revokeObjectURL(u));
  state.blobUrls = [];
  const grid = $("people-grid");
  grid.replaceChildren(...people.map((p) => {
    const picture = el("div", { className: "no-thumb" });
    if (p.face_id !== null) {
      thumbnailUrl(p.face_id).then((url) =>
        picture.replaceWith(el("img", { src: url, alt: p.name })), () => {});
    }
    const card = el("button", { type: "button", className: "card", onclick: () => showPerson(p.name) },
      picture, el("span", { className: "name", textContent: p.name }),
      el("span", { className: "muted", textContent: ` ${p.faces}` }));
    const item = el("li", {}, card);
    item.dataset.name = p.name;
    return item;
  }));
  if (!people.length) grid.append(el("li", { className: "muted", textContent: "No one enrolled yet." }));
  if (state.person && !people.some((p) => p.name === state.person)) $("person").hidden = true;
  else if (state.person) await showPerson(state.person);
}

async function showPerson(name) {
  const detail = await api("GET", person(name));
  state.person = name;
  $("person-name").textContent = `${detail.person.name} (${detail.faces.length} faces)`;
  $("rename-name").value = detail.person.name;
  $("person-faces").replaceChildren(...detail.faces.map((f) => {
    const picture = el("div", { className: "no-thumb" });
    if (f.has_thumbnail) {
      thumbnailUrl(f.id).then((url) => picture.replaceWith(el("img", { src: url, alt: `face ${f.id}` })), () => {});
    }
    const remove = el("button", { type: "button", className: "remove-face writer", textContent: "remove",
                                  title: `remove face ${f.id} (${f.source_path})` });
    remove.addEventListener("click", () => attempt(async () => {
      await api("DELETE", `faces/${f.id}`);
      await Promise.all([loadPeople(), loadInfo()]);
    }));
    return el("li", { title: `${f.source_path}, added ${f.added}` }, picture, remove);
  }));
  $("person").hidden = false;
  loadPhotos(name).catch(() => {});
}

// -- people to name (the photo library's clusters) ----------------------------------------------

async function loadClusters() {
  const { clusters, unclustered } = await api("GET", "clusters");
  $("to-name").hidden = clusters.length === 0;
  $("clusters").replaceChildren(...clusters.map((c) => {
    const strip = el("ul", { className: "strip" }, ...c.faces.slice(0, 12).map((f) => {
      const picture = el("div", { className: "no-thumb" });
      thumbnailUrl(f.id).then((url) =>
        picture.replaceWith(el("img", { src: url, alt: `face ${f.id}` })), () => {});
      const face = el("button", { type: "button", className: "eject writer",
                                  title: `not this person: take face ${f.id} out (${f.image})` }, picture);
      face.addEventListener("click", () => attempt(async () => {
        await api("POST", `faces/${f.id}/unassign`);
        await loadClusters();
      }));
      return el("li", {}, face);
    }));
    const input = el("input", { required: true, maxLength: 128, placeholder: "name" });
    input.setAttribute("aria-label", `name for group ${c.id}`);
    const form = el("form", { className: "name-cluster writer" }, input,
      el("button", { type: "submit", textContent: "Name" }));
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      attempt(async () => {
        const named = await api("POST", `clusters/${c.id}/name`, { name: input.value });
        say(`${named.faces.length} face(s) are now ${named.name}'s.`);
        await Promise.all([loadClusters(), loadPeople(), loadInfo()]);
      });
    });
    const item = el("li", { className: "cluster" },
      el("span", { className: "muted", textContent: `${c.size} faces` }), strip, form);
    item.dataset.cluster = c.id;
    return item;
  }));
  if (clusters.length && unclustered) {
    $("clusters").append(el("li", { className: "muted", textContent: `${unclustered} more face(s) in no group yet.` }));
  }
}

async function loadPhotos(name) {
  const { photos } = await api("GET", `${person(name)}/photos`);
  $("person-photos").replaceChildren(...photos.map((p) =>
    el("li", { textContent: p.image, title: `face ${p.face} at ${p.box.map((v) => Math.round(v)).join(", ")}` })));
}

// -- cameras: each camera's annotated picture, and the timeline of what they saw ----------------

const TIMELINE_MAX = 100; // events kept on the page, newest first
const PICTURE_MS = 400; // a camera's picture is fetched this often when it cannot be streamed
const STATUS_MS = 2000; // the cameras' states are asked this often
const RETRY_MS = 2000; // wait before opening a dropped stream again
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const camera = (name) => `cameras/${encodeURIComponent(name)}`;

async function loadCameras() {
  const { cameras } = await api("GET", "cameras");
  $("cameras").hidden = cameras.length === 0;
  if (!cameras.length) return;
  if (state.cameras === null) { // built once; a new key (the key form) is used from the next request
    state.cameras = {};
    $("camera-cards").replaceChildren(...cameras.map(cameraCard));
    followEvents();
    setInterval(refreshCameras, STATUS_MS);
  }
  showCameraStates(cameras);
}

function cameraCard(cam) {
  const img = el("img", { alt: `camera ${cam.name}: the latest picture, faces boxed and named`, hidden: true });
  const waiting = el("span", { className: "muted", textContent: "waiting for a picture…" });
  const status = el("span", { className: "camera-state" });
  const fps = el("span", { className: "muted" });
  const error = el("p", { className: "camera-error", hidden: true });
  const picture = el("div", { className: "camera-picture" }, img, waiting);
  if (cam.width && cam.height) picture.style.aspectRatio = `${cam.width} / ${cam.height}`;
  const card = el("li", { className: "camera" }, picture,
    el("p", { className: "camera-title" }, el("strong", { textContent: cam.name }), " ", status, " ", fps),
    error);
  card.dataset.name = cam.name;
  state.cameras[cam.name] = { card, status, fps, error, reopen: () => {} };
  img.addEventListener("load", () => { img.hidden = false; waiting.hidden = true; });
  showPicture(cam.name, img);
  return card;
}

// Without a key an <img> shows the MJPEG stream itself. With one it cannot (an <img> sends no
// headers), so the picture is fetched again and again into blob URLs, each revoked once replaced.
function showPicture(name, img) {
  if (!state.apiKeys) {
    const open = () => { img.src = `${API}/${camera(name)}/stream?open=${Date.now()}`; };
    img.addEventListener("error", () => setTimeout(open, RETRY_MS)); // could not open it
    state.cameras[name].reopen = open; // a stream that ended stays still: see refreshCameras
    open();
    return;
  }
  (async () => {
    for (;;) {
      if (!document.hidden) {
        try {
          const blob = await api("GET", `${camera(name)}/picture`);
          const old = img.src;
          img.src = URL.createObjectURL(blob);
          if (old.startsWith("blob:")) URL.revokeObjectURL(old);
        } catch (_) { /* no picture yet, or no answer: the camera's state line says so */ }
      }
      await sleep(PICTURE_MS);
    }
  })();
}

async function refreshCameras() {
  if (document.hidden) return;
  try {
    showCameraStates((await api("GET", "cameras")).cameras);
    if (state.camerasAway) Object.values(state.cameras).forEach((parts) => parts.reopen());
    state.camerasAway = false;
  } catch (err) {
    state.camerasAway = true; // the server is away: its streams ended, opened again once it is back
    for (const parts of Object.values(state.cameras)) {
      parts.status.textContent = "no answer";
      parts.status.className = "camera-state reconnecting";
      parts.fps.textContent = "";
      parts.error.textContent = err.message;
      parts.error.hidden = false;
    }
  }
}

function showCameraStates(cameras) {
  for (const cam of cameras) {
    const parts = state.cameras[cam.name];
    if (!parts) continue;
    parts.card.dataset.state = cam.state;
    parts.status.textContent = cam.state;
    parts.status.className = `camera-state ${cam.state}`;
    parts.fps.textContent = cam.state === "running" ? `${cam.fps.toFixed(1)} fps` : "";
    parts.error.textContent = cam.error || "";
    parts.error.hidden = !cam.error;
  }
}

// The timeline is the server-sent events of /events. Without a key, an EventSource; with a key,
// fetch reads the stream (an EventSource sends no headers). After a drop the stream is opened
// again, asking for the events after the last one shown.
function followEvents() {
  if (state.apiKeys) readEventStream();
  else openEventSource();
}

async function openEventSource() {
  let source;
  try {
    source = new EventSource(`${API}/events?after=${state.lastEvent}`);
  } catch (_) {
    setTimeout(openEventSource, RETRY_MS);
    return;
  }
  source.addEventListener("open", () => timelineState(""));
  source.addEventListener("face", (e) => showEvent(JSON.parse(e.data)));
  source.addEventListener("error", () => { // reopened here, asking for what came after the last one shown
    source.close();
    timelineState("reconnecting…");
    setTimeout(openEventSource, RETRY_MS);
  });
}

async function readEventStream() {
  for (;;) {
    try {
      const after = state.lastEvent; // ids grow across server restarts too
      const headers = keyHeaders({ Accept: "text/event-stream" });
      const response = await fetch(`${API}/events?after=${after}`, { headers, cache: "no-store" });
      if (response.status === 401) $("key-form").hidden = false;
      if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
      timelineState("");
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      const parse = sseParser((m) => m.event === "face" && showEvent(JSON.parse(m.data)));
      let rest = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        const lines = (rest + value).split("\n");
        rest = lines.pop(); // an incomplete line waits for the next chunk
        lines.forEach(parse);
      }
    } catch (_) { /* dropped, or no answer: opened again below */ }
    timelineState("reconnecting…");
    await sleep(RETRY_MS);
  }
}

// A text/event-stream read one line at a time: a blank line ends a message.
function sseParser(onMessage) {
  let event = "message";
  let data = [];
  return (line) => {
    if (line.endsWith("\r")) line = line.slice(0, -1);
    if (line === "") {
      if (data.length) onMessage({ event, data: data.join("\n") });
      event = "message";
      data = [];
    } else if (!line.startsWith(":")) { // a comment: the server's keep-alive
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
    }
  };
}

function timelineState(text) {
  $("timeline-state").textContent = text;
}

function showEvent(ev) {
  if (ev.id <= state.lastEvent) return; // shown already (sent again after a reconnect)
  state.lastEvent = ev.id;
  if (ev.event === "appear") return; // its "recognized" or "unknown" follows
  const list = $("timeline");
  list.prepend(timelineItem(ev));
  while (list.children.length > TIMELINE_MAX) dropItem(list.lastElementChild);
  $("timeline-empty").hidden = true;
}

function dropItem(item) {
  if (item.dataset.blob) URL.revokeObjectURL(item.dataset.blob);
  item.remove();
}

function timelineItem(ev) {
  const when = new Date(ev.time);
  const where = el("span", { className: "muted" }, `${ev.camera} · `,
    el("time", { dateTime: ev.time, textContent: when.toLocaleTimeString(), title: when.toLocaleString() }));
  const item = el("li", { className: `event ${ev.event}` });
  item.dataset.id = ev.id;
  item.dataset.event = ev.event;
  if (ev.name) item.dataset.name = ev.name;
  if (ev.snapshot) item.dataset.snapshot = ev.snapshot;
  if (ev.event === "leave") {
    item.append(`${ev.name || "unknown visitor"} left `, where);
    return item;
  }
  const known = ev.event === "recognized";
  const who = el("span", { className: `who ${known ? "known" : "unknown"}`, textContent: ev.name || "unknown" });
  const similarity = known ? `similarity ${fmt(ev.similarity)}` : `nearest similarity ${fmt(ev.similarity)}`;
  const what = el("div", { className: "what" }, who, " ",
    el("span", { className: "muted", textContent: similarity }), el("br"), where);
  const picture = el("div", { className: "no-thumb" });
  if (ev.snapshot) {
    api("GET", `snapshots/${ev.snapshot}/picture`).then((blob) => {
      if (!item.isConnected) return; // dropped off the list meanwhile
      item.dataset.blob = URL.createObjectURL(blob);
      picture.replaceWith(el("img", { src: item.dataset.blob, alt: `${ev.name || "unknown"} at ${ev.camera}` }));
    }, () => { /* dismissed or pruned: no picture */ });
  }
  item.append(picture, what);
  if (!known && ev.snapshot) what.append(visitorActions(ev, item, who));
  return item;
}

// An unknown visitor: type a name to enroll the face (the cameras know them from then on), or
// dismiss the snapshot.
function visitorActions(ev, item, who) {
  const input = el("input", { required: true, maxLength: 128, placeholder: "who is this?" });
  input.setAttribute("aria-label", `name of the visitor at ${ev.camera}, ${new Date(ev.time).toLocaleTimeString()}`);
  const dismiss = el("button", { type: "button", className: "dismiss", textContent: "Dismiss" });
  const form = el("form", { className: "name-visitor" }, input,
    el("button", { type: "submit", textContent: "Name" }), dismiss);
  const line = el("p", { className: "visitor-outcome", hidden: true });
  const outcome = (text, isError = false) => {
    line.textContent = text;
    line.className = `visitor-outcome ${isError ? "error" : "ok"}`;
    line.hidden = false;
  };
  const busy = async (action) => {
    form.querySelectorAll("input, button").forEach((c) => { c.disabled = true; });
    try {
      await action();
    } catch (err) {
      outcome(err.message, true);
    } finally {
      form.querySelectorAll("input, button").forEach((c) => { c.disabled = false; });
    }
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    busy(async () => {
      const named = await api("POST", `snapshots/${ev.snapshot}/name`, { name: input.value });
      form.remove();
      item.classList.add("named");
      item.dataset.named = named.snapshot.named;
      who.textContent = `unknown → ${named.snapshot.named}`;
      outcome(`Enrolled as ${named.snapshot.named}: the cameras know them from now on.`);
      Promise.all([loadPeople(), loadInfo()]).catch((err) => say(err.message, true));
    });
  });
  dismiss.addEventListener("click", () => busy(async () => {
    await api("DELETE", `snapshots/${ev.snapshot}`);
    form.remove();
    item.classList.add("dismissed");
    outcome("Dismissed: the snapshot is deleted.");
  }));
  return el("div", { className: "visitor writer" }, form, line);
}

// -- wiring -------------------------------------------------------------------------------------

function wire() {
  dropZone($("identify-drop"), $("identify-file"), (files) => files[0] && attempt(() => identify(files[0])));
  document.addEventListener("paste", (e) => {
    const file = [...(e.clipboardData?.files || [])].find((f) => f.type.startsWith("image/"));
    if (file) attempt(() => identify(file));
  });

  let enrollFiles = [];
  dropZone($("enroll-drop"), $("enroll-files"), (files) => {
    enrollFiles = files;
    $("enroll-chosen").textContent = `${files.length} photo(s) chosen`;
  });
  $("enroll-form").addEventListener("submit", (e) => {
    e.preventDefault();
    if (!enrollFiles.length) return say("Choose photos to enroll.", true);
    const button = $("enroll-submit");
    button.disabled = true;
    attempt(() => enroll($("enroll-name").value, enrollFiles)).finally(() => { button.disabled = false; });
  });

  $("new-person-form").addEventListener("submit", (e) => {
    e.preventDefault();
    attempt(() => enrollSelected($("new-person-name").value));
  });
  $("existing-person-form").addEventListener("submit", (e) => {
    e.preventDefault();
    attempt(() => enrollSelected($("existing-person").value));
  });

  $("rename-form").addEventListener("submit", (e) => {
    e.preventDefault();
    attempt(async () => {
      const r = await api("PATCH", person(state.person), { name: $("rename-name").value });
      state.person = r.new;
      say(r.merged ? `Merged ${r.old} into ${r.new} (${r.faces} faces moved).` : `Renamed ${r.old} to ${r.new}.`);
      await Promise.all([loadPeople(), loadInfo()]);
    });
  });
  $("delete-person").addEventListener("click", () => {
    if (!confirm(`Delete ${state.person} and all their faces?`)) return;
    attempt(async () => {
      const r = await api("DELETE", person(state.person));
      say(`Deleted ${r.name} (${r.faces_removed} faces).`);
      state.person = null;
      $("person").hidden = true;
      await Promise.all([loadPeople(), loadInfo()]);
    });
  });

  $("key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    localStorage.setItem(KEY_STORE, $("key-input").value.trim());
    attempt(start);
  });
}

async function start() {
  await loadInfo();
  await loadCameras();
  await loadPeople();
  await loadClusters();
}

wire();
attempt(start);
