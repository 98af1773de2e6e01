/**
 * SoraStudio page entry point: the account form, the "Analyze" / "Generate" tabs with the
 * new-analysis form (link or upload) and the generate form, and the task list. The pieces live in
 * ./js/*; this file only wires them to the page.
 * @module app
 */

import { ApiError, describeError } from "./js/api.js";
import { announce, show } from "./js/dom.js";
import { formatBytes } from "./js/format.js";
import { GenerateForm } from "./js/generate.js";
import { SessionManager } from "./js/session.js";
import { TaskList } from "./js/tasklist.js";
import { createAnalysis, newIdempotencyKey } from "./js/tasks.js";
import { checkFile, uploadFile } from "./js/upload.js";

/**
 * Look up a required element by id.
 * @param {string} id
 * @returns {any}
 */
function byId(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`missing #${id}`);
  return node;
}

const ui = {
  authSection: byId("auth"),
  authForm: byId("auth-form"),
  authMessage: byId("auth-message"),
  email: byId("email"),
  password: byId("password"),
  studio: byId("studio"),
  account: byId("account"),
  userEmail: byId("user-email"),
  logout: byId("logout"),
  taskForm: byId("task-form"),
  taskMessage: byId("task-message"),
  videoUrl: byId("video-url"),
  videoFile: byId("video-file"),
  dropzone: byId("dropzone"),
  analyze: byId("analyze"),
  upload: byId("upload"),
  uploadLabel: byId("upload-label"),
  uploadPercent: byId("upload-percent"),
  uploadProgress: byId("upload-progress"),
  uploadCancel: byId("upload-cancel"),
  filters: byId("filters"),
  modes: byId("modes"),
};

const session = new SessionManager();
const tasks = new TaskList(session, {
  list: byId("task-list"),
  empty: byId("task-empty"),
  more: byId("task-more"),
  message: byId("task-list-message"),
  live: byId("task-live"),
});
const generate = new GenerateForm(session, tasks, byId);

// --- account ------------------------------------------------------------------------------------

/**
 * Disable or enable every control of a form while a request is in flight.
 * @param {HTMLFormElement} form
 * @param {boolean} busy
 */
function setBusy(form, busy) {
  form.setAttribute("aria-busy", String(busy));
  for (const control of form.elements) control.disabled = busy;
}

/** Show the view that matches the session (signed out: the form; signed in: the studio). */
function renderSession() {
  const user = session.user;
  show(ui.authSection, !user);
  show(ui.studio, Boolean(user));
  show(ui.account, Boolean(user));
  ui.userEmail.textContent = user ? user.email : "";
}

/** Who the studio was last shown for: what they typed is kept only for the same person. */
let studioUser = "";

session.addEventListener("change", (event) => {
  const user = event.detail ? event.detail.user : null;
  const wasShowing = !ui.studio.hidden;
  renderSession();
  if (!user) {
    tasks.stop();
    if (session.endReason === "expired") {
      // Keep the new-analysis form as it is: after logging in again, nothing typed is lost.
      announce(ui.authMessage, "Your session has expired. Log in again to continue — what you typed is kept.", "info");
      if (session.lastUser) ui.email.value = session.lastUser.email;
      ui.password.focus();
    }
    return;
  }
  if (!wasShowing) {
    if (studioUser && studioUser !== user.id) {
      resetTaskForm();
      generate.reset();
    }
    studioUser = user.id;
    announce(ui.authMessage, "");
    tasks.start();
  }
});

ui.authForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const action = event.submitter && event.submitter.value === "signup" ? "signup" : "login";
  const email = ui.email.value.trim();
  const password = ui.password.value;
  if (!email || !password) {
    announce(ui.authMessage, "Enter your email and a password.", "error");
    (email ? ui.password : ui.email).focus();
    return;
  }
  announce(ui.authMessage, "");
  setBusy(ui.authForm, true);
  try {
    if (action === "signup") {
      const created = await session.signUp(email, password);
      if (!created) announce(ui.authMessage, "Account created. Confirm your email, then log in.", "success");
    } else {
      await session.logIn(email, password);
    }
    if (session.user) {
      ui.authForm.reset();
      (ui.videoUrl.value ? ui.analyze : ui.videoUrl).focus();
    }
  } catch (err) {
    announce(ui.authMessage, describeError(err), "error");
  } finally {
    setBusy(ui.authForm, false);
  }
});

ui.logout.addEventListener("click", () => {
  resetTaskForm();
  generate.reset();
  session.logOut();
  announce(ui.authMessage, "You are logged out.", "info");
  ui.email.focus();
});

// --- new analysis -------------------------------------------------------------------------------

/** One Idempotency-Key per distinct submission: pressing Analyze twice can't create two tasks. */
let pending = { input: "", key: "" };
/** @type {AbortController|null} */
let uploading = null;

/** Clear both inputs, the upload bar and the message. */
function resetTaskForm() {
  if (uploading) uploading.abort();
  ui.taskForm.reset();
  show(ui.upload, false);
  announce(ui.taskMessage, "");
  pending = { input: "", key: "" };
}

/** @returns {File|null} the chosen file, if any. */
function chosenFile() {
  return ui.videoFile.files && ui.videoFile.files.length ? ui.videoFile.files[0] : null;
}

/**
 * Show a problem with the file at once (before Analyze), and say which one is chosen.
 * @returns {boolean} whether the chosen file (if any) can be uploaded.
 */
function reviewFile() {
  const file = chosenFile();
  if (!file) return true;
  ui.videoUrl.value = ""; // a file replaces the link
  const problem = checkFile(file);
  announce(ui.taskMessage, problem || `Ready to upload “${file.name}” (${formatBytes(file.size)}).`, problem ? "error" : "info");
  ui.videoFile.setAttribute("aria-invalid", String(Boolean(problem)));
  return !problem;
}

ui.videoFile.addEventListener("change", reviewFile);
ui.videoUrl.addEventListener("input", () => {
  if (ui.videoUrl.value && chosenFile()) {
    ui.videoFile.value = ""; // a link replaces the file
    ui.videoFile.removeAttribute("aria-invalid");
    announce(ui.taskMessage, "");
  }
});

for (const type of ["dragenter", "dragover"]) {
  ui.dropzone.addEventListener(type, (event) => {
    event.preventDefault();
    ui.dropzone.classList.add("dropzone--over");
  });
}
for (const type of ["dragleave", "drop"]) {
  ui.dropzone.addEventListener(type, () => ui.dropzone.classList.remove("dropzone--over"));
}
ui.dropzone.addEventListener("drop", (event) => {
  event.preventDefault();
  if (event.dataTransfer && event.dataTransfer.files.length) {
    ui.videoFile.files = event.dataTransfer.files;
    reviewFile();
  }
});

/**
 * Show the upload bar.
 * @param {string} label
 * @param {number} sent bytes so far.
 * @param {number} total bytes.
 */
function showUpload(label, sent, total) {
  const percent = total ? Math.min(100, Math.floor((100 * sent) / total)) : 0;
  show(ui.upload, true);
  ui.uploadLabel.textContent = label;
  ui.uploadProgress.value = percent;
  ui.uploadPercent.textContent = `${percent}% · ${formatBytes(sent)} of ${formatBytes(total)}`;
}

ui.uploadCancel.addEventListener("click", () => {
  if (uploading) uploading.abort();
});

/**
 * Upload `file` with a progress bar; resolves to its storage path.
 * @param {File} file
 * @returns {Promise<string>}
 */
async function uploadWithProgress(file) {
  uploading = new AbortController();
  show(ui.uploadCancel, true);
  showUpload(`Uploading “${file.name}”`, 0, file.size);
  try {
    const path = await uploadFile(session, file, {
      signal: uploading.signal,
      onProgress: (sent, total) => showUpload(`Uploading “${file.name}”`, sent, total),
    });
    showUpload(`Uploaded “${file.name}”`, file.size, file.size);
    return path;
  } finally {
    uploading = null;
    show(ui.uploadCancel, false);
  }
}

ui.taskForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const file = chosenFile();
  const videoUrl = ui.videoUrl.value.trim();
  if (!file && !videoUrl) {
    announce(ui.taskMessage, "Paste a video URL or choose a video file first.", "error");
    ui.videoUrl.focus();
    return;
  }
  if (file && !reviewFile()) return;
  if (!file && !/^https?:\/\/\S+$/i.test(videoUrl)) {
    announce(ui.taskMessage, "The video URL must start with http:// or https://.", "error");
    ui.videoUrl.setAttribute("aria-invalid", "true");
    ui.videoUrl.focus();
    return;
  }
  ui.videoUrl.removeAttribute("aria-invalid");
  const input = file ? `file:${file.name}:${file.size}:${file.lastModified}` : videoUrl;
  if (pending.input !== input) pending = { input, key: newIdempotencyKey() };
  announce(ui.taskMessage, "");
  ui.taskForm.setAttribute("aria-busy", "true");
  ui.analyze.disabled = true;
  ui.videoUrl.disabled = true;
  ui.videoFile.disabled = true;
  try {
    const payload = file ? { storagePath: await uploadWithProgress(file) } : { videoUrl };
    const { task, replayed } = await createAnalysis(session, payload, pending.key);
    tasks.added(task);
    pending = { input: "", key: "" };
    ui.taskForm.reset();
    ui.videoFile.removeAttribute("aria-invalid");
    announce(ui.taskMessage, replayed ? "That analysis already exists." : "Analysis started. It appears in the list below.", "success");
  } catch (err) {
    if (err instanceof ApiError && err.code === "upload_aborted") {
      show(ui.upload, false);
      announce(ui.taskMessage, "Upload canceled.", "info");
    } else if (session.user) {
      announce(ui.taskMessage, describeError(err), "error");
    } else {
      announce(ui.taskMessage, "Your session expired before the analysis started. Press Analyze again.", "info");
    }
  } finally {
    ui.taskForm.removeAttribute("aria-busy");
    ui.analyze.disabled = false;
    ui.videoUrl.disabled = false;
    ui.videoFile.disabled = false;
  }
});

// --- Analyze / Generate tabs --------------------------------------------------------------------

/** @returns {HTMLButtonElement[]} the tabs, in order. */
function modeTabs() {
  return [...ui.modes.querySelectorAll('[role="tab"]')];
}

/**
 * Show one tab's panel (and hide the others).
 * @param {HTMLButtonElement} tab
 * @param {{focus?: boolean}} [options]
 */
function selectMode(tab, { focus = false } = {}) {
  for (const other of modeTabs()) {
    const selected = other === tab;
    other.setAttribute("aria-selected", String(selected));
    other.tabIndex = selected ? 0 : -1;
    show(byId(other.getAttribute("aria-controls")), selected);
  }
  if (focus) tab.focus();
}

ui.modes.addEventListener("click", (event) => {
  const tab = event.target instanceof Element ? event.target.closest('[role="tab"]') : null;
  if (tab) selectMode(tab);
});
ui.modes.addEventListener("keydown", (event) => {
  const tabs = modeTabs();
  const at = tabs.indexOf(document.activeElement);
  if (at < 0) return;
  const next = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: tabs.length - 1 }[event.key];
  if (next === undefined) return;
  event.preventDefault();
  selectMode(tabs[(next + tabs.length) % tabs.length], { focus: true });
});

// --- filters ------------------------------------------------------------------------------------

ui.filters.addEventListener("click", (event) => {
  const button = event.target instanceof Element ? event.target.closest("button[data-status]") : null;
  if (!button) return;
  for (const other of ui.filters.querySelectorAll("button[data-status]")) {
    other.setAttribute("aria-pressed", String(other === button));
  }
  tasks.setFilter(button.dataset.status || null);
});

// --- start ----------------------------------------------------------------------------------------

session.restore();
renderSession();
