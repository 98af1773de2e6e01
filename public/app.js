/**
 * SoraStudio page entry point: wires the sign-in form, the new-task form and the task list.
 * @module app
 */

import { describeError } from "./js/api.js";
import { announce, show } from "./js/dom.js";
import { SessionManager } from "./js/session.js";
import { TaskList, createVideoAnalysis, newIdempotencyKey } from "./js/tasks.js";

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
  studio: byId("studio"),
  account: byId("account"),
  userEmail: byId("user-email"),
  logout: byId("logout"),
  taskForm: byId("task-form"),
  taskMessage: byId("task-message"),
  videoUrl: byId("video-url"),
};

const session = new SessionManager();
const tasks = new TaskList(session, {
  list: byId("task-list"),
  empty: byId("task-empty"),
  more: byId("task-more"),
  message: byId("task-list-message"),
});

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

session.addEventListener("change", (event) => {
  const signedIn = Boolean(event.detail);
  const wasShowing = !ui.studio.hidden;
  renderSession();
  if (!signedIn) {
    tasks.clear();
  } else if (!wasShowing) {
    tasks.reload();
  }
});

ui.authForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const action = event.submitter && event.submitter.value === "signup" ? "signup" : "login";
  const data = new FormData(ui.authForm);
  const email = String(data.get("email") || "").trim();
  const password = String(data.get("password") || "");
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
      ui.videoUrl.focus();
    }
  } catch (err) {
    announce(ui.authMessage, describeError(err), "error");
  } finally {
    setBusy(ui.authForm, false);
  }
});

ui.logout.addEventListener("click", () => {
  session.logOut();
  announce(ui.authMessage, "You are logged out.", "info");
  byId("email").focus();
});

/** One Idempotency-Key per distinct submission: a retry of the same URL reuses it. */
let pending = { url: "", key: "" };

ui.taskForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const videoUrl = ui.videoUrl.value.trim();
  if (!ui.taskForm.reportValidity()) return;
  if (pending.url !== videoUrl) pending = { url: videoUrl, key: newIdempotencyKey() };
  announce(ui.taskMessage, "");
  setBusy(ui.taskForm, true);
  try {
    const { task, replayed } = await createVideoAnalysis(session, videoUrl, pending.key);
    tasks.upsert(task, "start");
    pending = { url: "", key: "" };
    ui.taskForm.reset();
    announce(ui.taskMessage, replayed ? "That task already exists." : "Task created.", "success");
  } catch (err) {
    announce(ui.taskMessage, describeError(err), "error");
  } finally {
    setBusy(ui.taskForm, false);
  }
});

session.restore();
renderSession();
