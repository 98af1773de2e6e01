/**
 * The result view of a done `text_to_video` task: the clip in a player (poster first), "Download MP4",
 * the settings that made it (seed included) and the model and timings. Built from DOM nodes only;
 * every string from the task (the prompt above all) is set as text.
 * @module clip
 */

import { el } from "./dom.js";
import { RESOLUTIONS, formatBytes, formatClipLength } from "./format.js";
import { loadable } from "./result.js";

/**
 * A finite number or NaN.
 * @param {unknown} value
 * @returns {number}
 */
const num = (value) => (typeof value === "number" && Number.isFinite(value) ? value : Number.NaN);

/**
 * The settings of a generation in one line: "64 × 64 · 9 frames · 4 steps · seed 42".
 * @param {Record<string, any>} payload a stored `text_to_video` payload.
 * @returns {string}
 */
export function describeSettings(payload) {
  const parts = [];
  const size = RESOLUTIONS[payload.resolution];
  if (size) parts.push(`${size[0]} × ${size[1]}`);
  if (Number.isFinite(num(payload.numFrames))) parts.push(`${payload.numFrames} frames`);
  if (Number.isFinite(num(payload.steps))) parts.push(`${payload.steps} ${payload.steps === 1 ? "step" : "steps"}`);
  if (Number.isFinite(num(payload.seed))) parts.push(`seed ${payload.seed}`);
  return parts.join(" · ");
}

/**
 * One line about a finished clip: "0.6 s · 64 × 64 · 9 frames at 16 fps".
 * @param {Record<string, any>|null} result
 * @returns {string}
 */
export function summarizeClip(result) {
  if (!result || typeof result !== "object") return "Finished.";
  const parts = [];
  if (Number.isFinite(num(result.duration))) parts.push(`${num(result.duration).toFixed(1)} s`);
  if (Number.isFinite(num(result.width))) parts.push(`${result.width} × ${result.height}`);
  if (Number.isFinite(num(result.frameCount))) {
    parts.push(Number.isFinite(num(result.fps)) ? `${result.frameCount} frames at ${result.fps} fps` : `${result.frameCount} frames`);
  }
  return parts.length ? parts.join(" · ") : "Finished.";
}

/**
 * `url` with Storage's `download` parameter, so the file is saved under `name` (a signed URL on
 * another origin ignores the `download` attribute of a link).
 * @param {string} url
 * @param {string} name
 * @returns {string}
 */
function downloadUrl(url, name) {
  try {
    const parsed = new URL(url, window.location.href);
    parsed.searchParams.set("download", name);
    return parsed.href;
  } catch {
    return url;
  }
}

/** The view of one generated clip; {@link ClipView#element} goes into the task card. */
export class ClipView {
  /** @param {import("./tasks.js").Task} task a done task, read with signed URLs. */
  constructor(task) {
    this.task = task;
    this.result = task.result && typeof task.result === "object" ? task.result : {};
    this.urls = this.result.urls && typeof this.result.urls === "object" ? this.result.urls : {};
    /** @type {HTMLVideoElement|null} */
    this.video = null;
    this.element = el("section", { className: "result clip", attrs: { "aria-label": "Generated video" } }, [
      el("div", { className: "result-top" }, [this.buildMedia(), this.buildDetails()]),
      this.buildFooter(),
    ]);
  }

  /**
   * A signed URL for one of the result's object paths ("" when there is none to load).
   * @param {unknown} path
   * @returns {string}
   */
  url(path) {
    const value = typeof path === "string" && path ? this.urls[path] : "";
    return typeof value === "string" && loadable(value) ? value : "";
  }

  /** @returns {HTMLElement} the player with the poster, or the poster alone when it can't play. */
  buildMedia() {
    this.media = el("div", { className: "result-media" });
    this.caption = el("p", { className: "result-caption hint" });
    const poster = this.url(this.result.poster);
    const src = this.url(this.result.video);
    if (src) {
      const video = el("video", {
        className: "player",
        attrs: { controls: "", preload: "metadata", playsinline: "", loop: "", "aria-label": "Generated video" },
      });
      if (poster) video.poster = poster;
      video.addEventListener("error", () => this.showPoster(poster, "This browser can't play the clip; download it instead."), { once: true });
      video.src = src;
      this.video = video;
      this.media.append(video);
    } else {
      this.showPoster(poster, this.result.urlsError ? String(this.result.urlsError) : "The clip has no playable link right now.");
    }
    return el("div", { className: "result-player" }, [this.media, this.caption]);
  }

  /**
   * Replace the player with the poster image.
   * @param {string} url
   * @param {string} caption
   */
  showPoster(url, caption) {
    this.video = null;
    const image = url
      ? el("img", { className: "player poster", attrs: { src: url, alt: "Poster frame of the generated video" } })
      : el("div", { className: "player poster poster--empty", text: "No preview available" });
    this.media.replaceChildren(image);
    this.caption.textContent = caption;
  }

  /** @returns {HTMLElement} what made the clip: settings, seed, model and how long each part took. */
  buildDetails() {
    const r = this.result;
    const payload = this.task.payload || {};
    const rows = [];
    const add = (label, value) => {
      if (value !== "" && value !== null && value !== undefined) rows.push([label, String(value)]);
    };
    add("Prompt", typeof r.prompt === "string" ? r.prompt : payload.prompt);
    add("Negative prompt", typeof r.negativePrompt === "string" ? r.negativePrompt : payload.negativePrompt);
    add("Size", Number.isFinite(num(r.width)) ? `${r.width} × ${r.height}` : "");
    add("Frames", Number.isFinite(num(r.frameCount)) ? `${r.frameCount} (${formatClipLength(r.frameCount, num(r.fps))} at ${r.fps} fps)` : "");
    add("Seed", r.seed ?? payload.seed);
    add("Steps", r.steps ?? payload.steps);
    add("Guidance scale", r.guidanceScale ?? payload.guidanceScale);
    const model = r.model && typeof r.model === "object" ? r.model : null;
    if (model) {
      const version = model.version || model.revision;
      add("Model", `${model.id ?? ""}${version ? ` @ ${String(version).slice(0, 12)}` : ""}`);
      add("Runtime", [model.pipeline, model.device, model.dtype].filter(Boolean).join(" · "));
    }
    const timings = r.timings && typeof r.timings === "object" ? r.timings : null;
    if (timings) {
      add("Time", ["load", "generate", "encode", "upload"]
        .filter((k) => Number.isFinite(num(timings[k])))
        .map((k) => `${k} ${num(timings[k]).toFixed(1)} s`).join(", "));
    }
    const sizes = r.sizes && typeof r.sizes === "object" ? r.sizes : null;
    if (sizes && Number.isFinite(num(sizes.video))) add("File size", formatBytes(sizes.video));
    const body = el("tbody", {}, rows.map(([label, value]) => el("tr", {}, [
      el("th", { attrs: { scope: "row" }, text: label }), el("td", { text: value }),
    ])));
    return el("section", { className: "result-block result-meta" }, [
      el("h4", { text: "Details" }),
      el("table", { className: "data-table meta-table" }, [body]),
    ]);
  }

  /** @returns {HTMLElement} "Download MP4" and the raw result. */
  buildFooter() {
    const name = `sorastudio-${this.task.id}.mp4`;
    const src = this.url(this.result.video);
    const parts = [];
    const { urls: _urls, urlsExpireAt: _expires, urlsError: _error, ...rest } = this.result;
    const raw = el("pre", { className: "raw", attrs: { tabindex: "0" }, text: JSON.stringify({ taskId: this.task.id, ...rest }, null, 2) });
    parts.push(el("details", { className: "raw-details" }, [el("summary", { text: "Raw result" }), raw]));
    if (src) {
      parts.push(el("a", {
        className: "button button--secondary",
        text: "Download MP4",
        attrs: { href: downloadUrl(src, name), download: name, rel: "noopener" },
      }));
    }
    return el("div", { className: "result-footer" }, parts);
  }

  /** Stop the player (the card is collapsing or going away). */
  destroy() {
    if (this.video) this.video.pause();
  }
}
