/**
 * The "Generate" form: a prompt, presets, advanced settings folded away, and field errors next to
 * the fields. The page only hints (ranges, 4k+1 frames); the API judges, and its 400 field errors
 * (`payload.numFrames`, …) are shown under the field they name.
 * @module generate
 */

import { ApiError, describeError } from "./api.js";
import { announce, el, show } from "./dom.js";
import { RESOLUTIONS, formatClipLength } from "./format.js";
import { createGeneration, newIdempotencyKey } from "./tasks.js";

/**
 * @typedef {object} Preset
 * @property {string} id
 * @property {string} name
 * @property {"tiny"|"240p"|"480p"|"720p"} resolution
 * @property {number} numFrames
 * @property {number} steps
 * @property {number} fps
 */

/** @type {Preset[]} */
export const PRESETS = [
  { id: "quick", name: "Quick preview", resolution: "tiny", numFrames: 9, steps: 4, fps: 16 },
  { id: "standard", name: "Standard 480p", resolution: "480p", numFrames: 33, steps: 30, fps: 16 },
  { id: "long", name: "Long 480p", resolution: "480p", numFrames: 81, steps: 30, fps: 16 },
];
const DEFAULT_PRESET = "standard";

/** Payload field -> the id of its control (its error line is `<id>-error`). */
const FIELDS = {
  prompt: "prompt",
  negativePrompt: "negative-prompt",
  resolution: "resolution",
  numFrames: "num-frames",
  durationSeconds: "duration",
  fps: "fps",
  steps: "steps",
  guidanceScale: "guidance",
  seed: "seed",
};
const MAX_FRAMES = 121;

/**
 * The API's field message for people: without pydantic's "Value error, " prefix.
 * @param {string} message
 * @returns {string}
 */
function tidy(message) {
  const text = String(message || "").replace(/^Value error, /, "");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** The form, wired to its nodes; {@link GenerateForm#reset} on log-out. */
export class GenerateForm {
  /**
   * @param {import("./session.js").SessionManager} session
   * @param {import("./tasklist.js").TaskList} tasks
   * @param {(id: string) => any} byId
   */
  constructor(session, tasks, byId) {
    this.session = session;
    this.tasks = tasks;
    this.form = byId("generate-form");
    this.message = byId("generate-message");
    this.button = byId("generate");
    this.advanced = byId("advanced");
    this.summary = byId("generate-summary");
    this.count = byId("prompt-count");
    this.presetGroup = byId("presets");
    /** @type {Record<string, any>} */
    this.controls = {};
    /** @type {Record<string, HTMLElement>} */
    this.errors = {};
    for (const [field, id] of Object.entries(FIELDS)) {
      this.controls[field] = byId(id);
      this.errors[field] = byId(`${id}-error`);
    }
    /** One Idempotency-Key per distinct request: pressing Generate twice makes one task. */
    this.pending = { body: "", key: "" };
    /** @type {Map<string, HTMLButtonElement>} */
    this.presetButtons = new Map();
    for (const preset of PRESETS) {
      const size = RESOLUTIONS[preset.resolution];
      const detailId = `preset-${preset.id}-detail`;
      const button = el("button", {
        className: "preset",
        attrs: { type: "button", "aria-pressed": "false", "aria-label": preset.name, "aria-describedby": detailId },
        dataset: { preset: preset.id },
      }, [
        el("span", { className: "preset-name", text: preset.name }),
        el("span", {
          className: "preset-detail",
          attrs: { id: detailId },
          text: `${size[0]} × ${size[1]} · ${preset.numFrames} frames · ${preset.steps} steps`,
        }),
      ]);
      button.addEventListener("click", () => this.applyPreset(preset));
      this.presetButtons.set(preset.id, button);
      this.presetGroup.append(button);
    }
    this.wire();
    this.reset();
  }

  /** Listen to the controls: live hints, the frames/duration either-or, the submit. */
  wire() {
    const c = this.controls;
    c.prompt.addEventListener("input", () => {
      this.count.textContent = String(c.prompt.value.length);
      this.clearError("prompt");
    });
    // Frames or a duration: typing one empties the other.
    c.numFrames.addEventListener("input", () => {
      if (c.numFrames.value) c.durationSeconds.value = "";
    });
    c.durationSeconds.addEventListener("input", () => {
      if (c.durationSeconds.value) c.numFrames.value = "";
    });
    for (const field of Object.keys(FIELDS)) {
      if (field === "prompt") continue;
      const type = c[field].tagName === "SELECT" ? "change" : "input";
      c[field].addEventListener(type, () => {
        this.clearError(field);
        if (field === "numFrames") this.clearError("durationSeconds");
        if (field === "durationSeconds") this.clearError("numFrames");
        this.hint(field);
        this.refresh();
      });
    }
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
  }

  /**
   * Set the controls a preset decides; the rest (prompt, negative prompt, guidance, seed) stay.
   * @param {Preset} preset
   */
  applyPreset(preset) {
    const c = this.controls;
    c.resolution.value = preset.resolution;
    c.numFrames.value = String(preset.numFrames);
    c.durationSeconds.value = "";
    c.steps.value = String(preset.steps);
    c.fps.value = String(preset.fps);
    for (const field of ["resolution", "numFrames", "durationSeconds", "steps", "fps"]) this.clearError(field);
    this.refresh();
  }

  /** Mark the preset the settings match (none when customised) and say what will be made. */
  refresh() {
    const c = this.controls;
    const frames = c.numFrames.value ? Number(c.numFrames.value) : Number.NaN;
    const match = PRESETS.find((p) => c.resolution.value === p.resolution && frames === p.numFrames
      && !c.durationSeconds.value && Number(c.steps.value) === p.steps && Number(c.fps.value) === p.fps);
    for (const [id, button] of this.presetButtons) button.setAttribute("aria-pressed", String(Boolean(match && match.id === id)));
    const size = RESOLUTIONS[c.resolution.value];
    const fps = Number(c.fps.value) || 16;
    const parts = [match ? match.name : "Custom"];
    if (size) parts.push(`${size[0]} × ${size[1]}`);
    if (Number.isFinite(frames)) parts.push(`${frames} frames (${formatClipLength(frames, fps)} at ${fps} fps)`);
    else if (c.durationSeconds.value) parts.push(`${c.durationSeconds.value} s at ${fps} fps`);
    if (c.steps.value) parts.push(`${c.steps.value} steps`);
    this.summary.textContent = parts.join(" · ");
  }

  /**
   * A client-side hint for one control (the API still decides): shown as a soft note.
   * @param {string} field
   */
  hint(field) {
    const control = this.controls[field];
    if (!control.value || control.tagName !== "INPUT") return;
    if (control.validity.badInput) {
      this.setError(field, "Enter a number.", "hint");
      return;
    }
    const value = Number(control.value);
    const min = Number(control.min);
    const max = Number(control.max);
    let text = "";
    if (value < min || value > max) text = `Use ${control.min} to ${control.max}.`;
    else if (field === "numFrames" && (value - 1) % 4) {
      const lower = Math.max(5, value - ((value - 1) % 4 + 4) % 4);
      const upper = Math.min(MAX_FRAMES, lower + 4);
      text = `Frames go in steps of 4: ${lower} or ${upper}.`;
    } else if (["fps", "steps", "seed"].includes(field) && !Number.isInteger(value)) text = "Use a whole number.";
    if (text) this.setError(field, text, "hint");
  }

  /**
   * Show a message under a field.
   * @param {string} field
   * @param {string} text
   * @param {"error"|"hint"} [kind="error"] an error (from the API) marks the control invalid.
   */
  setError(field, text, kind = "error") {
    const line = this.errors[field];
    line.textContent = text;
    line.dataset.kind = kind;
    show(line, Boolean(text));
    if (kind === "error") this.controls[field].setAttribute("aria-invalid", "true");
  }

  /** @param {string} field */
  clearError(field) {
    this.errors[field].textContent = "";
    show(this.errors[field], false);
    this.controls[field].removeAttribute("aria-invalid");
  }

  /** Clear every field message. */
  clearErrors() {
    for (const field of Object.keys(FIELDS)) this.clearError(field);
  }

  /** @returns {Record<string, string|number>} the request's payload (empty controls left out). */
  payload() {
    const c = this.controls;
    /** @type {Record<string, string|number>} */
    const payload = { prompt: c.prompt.value };
    if (c.negativePrompt.value.trim()) payload.negativePrompt = c.negativePrompt.value;
    payload.resolution = c.resolution.value;
    for (const field of ["numFrames", "durationSeconds", "fps", "steps", "guidanceScale", "seed"]) {
      const raw = c[field].value.trim();
      if (raw !== "") payload[field] = Number(raw);
    }
    return payload;
  }

  /** Send the form; the API's field errors go next to their fields. */
  async submit() {
    const c = this.controls;
    this.clearErrors();
    announce(this.message, "");
    if (!c.prompt.value.trim()) {
      this.setError("prompt", "Write a prompt first: what should the video show?");
      c.prompt.focus();
      return;
    }
    const unreadable = Object.keys(FIELDS).find((f) => c[f].validity && c[f].validity.badInput);
    if (unreadable) {
      this.advanced.open = true;
      this.setError(unreadable, "Enter a number.");
      c[unreadable].focus();
      return;
    }
    const payload = this.payload();
    const body = JSON.stringify(payload);
    if (this.pending.body !== body) this.pending = { body, key: newIdempotencyKey() };
    this.form.setAttribute("aria-busy", "true");
    this.button.disabled = true;
    try {
      const { task, replayed } = await createGeneration(this.session, payload, this.pending.key);
      this.tasks.added(task);
      this.pending = { body: "", key: "" };
      const seed = task.payload && Number.isFinite(task.payload.seed) ? ` (seed ${task.payload.seed})` : "";
      announce(this.message, replayed ? "That generation already exists." : `Generation started${seed}. It appears in the list below.`, "success");
    } catch (err) {
      if (err instanceof ApiError && err.fields.length) this.showFieldErrors(err);
      else if (this.session.user) announce(this.message, describeError(err), "error");
      else announce(this.message, "Your session expired before the generation started. Press Generate again.", "info");
    } finally {
      this.form.removeAttribute("aria-busy");
      this.button.disabled = false;
    }
  }

  /**
   * Put each `payload.<field>` error under its control; the others go in the form's message.
   * @param {ApiError} err
   */
  showFieldErrors(err) {
    const general = [];
    let first = null;
    for (const { field, message } of err.fields) {
      const name = String(field).replace(/^payload\.?/, "");
      if (Object.hasOwn(FIELDS, name)) {
        this.setError(name, tidy(message));
        first = first || name;
      } else {
        general.push(tidy(message));
      }
    }
    const text = first ? "Some settings need a change: see the marked fields." : err.message;
    announce(this.message, general.length ? `${text} ${general.join(" ")}` : text, "error");
    if (first) {
      if (first !== "prompt") this.advanced.open = true;
      this.controls[first].focus();
    }
  }

  /** Back to a blank prompt and the default preset (log-out, another user). */
  reset() {
    this.form.reset();
    this.count.textContent = "0";
    this.advanced.open = false;
    this.clearErrors();
    announce(this.message, "");
    this.pending = { body: "", key: "" };
    const preset = PRESETS.find((p) => p.id === DEFAULT_PRESET);
    if (preset) this.applyPreset(preset);
  }
}
