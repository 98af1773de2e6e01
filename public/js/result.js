/**
 * The result view of a done `video_analysis` task: player, scene timeline, per-scene chart, model
 * signal, metadata table and "Download JSON". Built from DOM nodes only; every string from the
 * result is set as text.
 * @module result
 */

import { el } from "./dom.js";
import { formatBytes, formatMediaTime } from "./format.js";
import { sceneChart } from "./chart.js";

/**
 * A finite number or `fallback`.
 * @param {unknown} value
 * @param {number} [fallback=NaN]
 * @returns {number}
 */
const num = (value, fallback = Number.NaN) => (typeof value === "number" && Number.isFinite(value) ? value : fallback);

/**
 * Can the page load media from `url` under its CSP (https, or http on this machine)?
 * @param {string} url
 * @returns {boolean}
 */
export function loadable(url) {
  try {
    const parsed = new URL(url, window.location.href);
    if (parsed.protocol === "https:") return true;
    if (parsed.protocol !== "http:") return false;
    return parsed.origin === window.location.origin || ["127.0.0.1", "localhost"].includes(parsed.hostname);
  } catch {
    return false;
  }
}

/**
 * The normalised scenes of a result (fields the view needs, numbers checked).
 * @param {Record<string, any>} result
 * @returns {Array<{index: number, start: number, end: number, brightness: number, motion: number, faces: number|null, thumbnail: string}>}
 */
export function scenesOf(result) {
  const list = Array.isArray(result.scenes) ? result.scenes : [];
  return list.filter((s) => s && typeof s === "object").map((s, i) => ({
    index: num(s.index, i),
    start: num(s.startTime, num(s.start, 0)),
    end: num(s.endTime, num(s.end, 0)),
    brightness: num(s.meanBrightness, 0),
    motion: num(s.motionEnergy, 0),
    faces: Number.isInteger(s.faces) ? s.faces : null,
    thumbnail: typeof s.thumbnail === "string" ? s.thumbnail : "",
  }));
}

/**
 * The URL to play the analysed video from, or "" (then the poster is shown).
 * Links play from the link; uploads play from a signed URL when the API provides one.
 * @param {import("./tasks.js").Task} task
 * @returns {string}
 */
export function sourceUrl(task) {
  const result = task.result || {};
  const source = result.source && typeof result.source === "object" ? result.source : {};
  const urls = result.urls && typeof result.urls === "object" ? result.urls : {};
  const link = typeof source.videoUrl === "string" ? source.videoUrl : (task.payload && task.payload.videoUrl) || "";
  if (link) return loadable(link) ? link : "";
  const path = typeof source.storagePath === "string" ? source.storagePath : (task.payload && task.payload.storagePath) || "";
  const signed = (path && urls[path]) || result.sourceUrl;
  return typeof signed === "string" && loadable(signed) ? signed : "";
}

/** The view of one result; {@link ResultView#element} goes into the task card. */
export class ResultView {
  /** @param {import("./tasks.js").Task} task a done task, ideally read with signed URLs. */
  constructor(task) {
    this.task = task;
    this.result = task.result && typeof task.result === "object" ? task.result : {};
    this.urls = this.result.urls && typeof this.result.urls === "object" ? this.result.urls : {};
    this.scenes = scenesOf(this.result);
    /** @type {HTMLVideoElement|null} */
    this.video = null;
    /** @type {HTMLButtonElement[]} */
    this.sceneButtons = [];
    this.element = el("section", { className: "result", attrs: { "aria-label": "Analysis result" } }, [
      el("div", { className: "result-top" }, [this.buildMedia(), this.buildMetadata()]),
      this.buildTimeline(),
      el("div", { className: "result-grid" }, [this.buildChart(), this.buildModel()]),
      this.buildFooter(),
    ]);
  }

  /**
   * A signed URL for an object path of the result ("" when the API gave none).
   * @param {string} path
   * @returns {string}
   */
  url(path) {
    const value = path ? this.urls[path] : "";
    return typeof value === "string" && loadable(value) ? value : "";
  }

  /** @returns {HTMLElement} the player, or the poster when the video can't be played here. */
  buildMedia() {
    this.media = el("div", { className: "result-media" });
    this.caption = el("p", { className: "result-caption hint" });
    const poster = this.url(typeof this.result.poster === "string" ? this.result.poster : "");
    const src = sourceUrl(this.task);
    if (src) {
      const video = el("video", {
        className: "player",
        attrs: { controls: "", preload: "metadata", playsinline: "", "aria-label": "Analyzed video" },
      });
      if (poster) video.poster = poster;
      video.addEventListener("error", () => this.showPoster(poster, "The video can't be played here; showing the poster."), { once: true });
      video.addEventListener("timeupdate", () => this.markCurrent(video.currentTime));
      video.src = src;
      this.video = video;
      this.media.append(video);
    } else {
      const why = this.result.source && this.result.source.storagePath
        ? "The uploaded file has no playable link here; showing the poster."
        : "This video can't be played here; showing the poster.";
      this.showPoster(poster, why);
    }
    return el("div", { className: "result-player" }, [this.media, this.caption]);
  }

  /**
   * Replace the player with an image (the poster, or a scene's thumbnail).
   * @param {string} url
   * @param {string} caption
   */
  showPoster(url, caption) {
    this.video = null;
    const image = url
      ? el("img", { className: "player poster", attrs: { src: url, alt: "Poster frame of the video" } })
      : el("div", { className: "player poster poster--empty", text: "No preview available" });
    this.media.replaceChildren(image);
    this.caption.textContent = caption;
  }

  /** @returns {HTMLElement} the scene timeline: thumbnails in order, widths ∝ durations. */
  buildTimeline() {
    const list = el("ol", { className: "timeline", attrs: { "aria-label": "Scene timeline" } });
    for (const scene of this.scenes) {
      const length = Math.max(scene.end - scene.start, 0);
      const label = `Scene ${scene.index + 1}: ${formatMediaTime(scene.start)} to ${formatMediaTime(scene.end)}`;
      const thumb = this.url(scene.thumbnail);
      const button = el("button", {
        className: "scene",
        attrs: { type: "button", "aria-label": label, title: label },
        dataset: { start: String(scene.start) },
      }, [
        thumb ? el("img", { attrs: { src: thumb, alt: "", loading: "lazy", decoding: "async" } })
          : el("span", { className: "scene-missing", text: String(scene.index + 1) }),
        el("span", { className: "scene-time", text: formatMediaTime(scene.start) }),
      ]);
      button.addEventListener("click", () => this.seek(scene, thumb));
      this.sceneButtons.push(button);
      const item = el("li", { className: "timeline-item" }, [button]);
      item.style.flexGrow = String(Math.max(length, 0.05)); // CSSOM: allowed by the CSP (no style attribute)
      list.append(item);
    }
    const count = this.scenes.length;
    const note = this.result.urlsError ? el("p", { className: "hint", text: String(this.result.urlsError) }) : "";
    return el("section", { className: "result-block" }, [
      el("h4", { text: `${count} ${count === 1 ? "scene" : "scenes"}` }),
      count ? list : el("p", { className: "hint", text: "No scenes were found." }),
      note,
    ]);
  }

  /**
   * Jump to a scene: seek the player, or show the scene's thumbnail when there is no player.
   * @param {{start: number, index: number}} scene
   * @param {string} thumb
   */
  seek(scene, thumb) {
    const video = this.video;
    if (video) {
      const go = () => {
        video.currentTime = scene.start;
      };
      go();
      if (video.readyState < 1) video.addEventListener("loadedmetadata", go, { once: true });
    } else if (thumb) {
      this.showPoster(thumb, `Scene ${scene.index + 1} at ${formatMediaTime(scene.start)}.`);
    }
    this.markCurrent(scene.start);
  }

  /**
   * Mark the scene that contains `time` as current in the timeline.
   * @param {number} time seconds.
   */
  markCurrent(time) {
    let current = 0;
    this.scenes.forEach((scene, i) => {
      if (time + 1e-3 >= scene.start) current = i;
    });
    this.sceneButtons.forEach((button, i) => {
      if (i === current) button.setAttribute("aria-current", "true");
      else button.removeAttribute("aria-current");
    });
  }

  /** @returns {HTMLElement} the per-scene chart (inline SVG) with a table of the numbers. */
  buildChart() {
    const rows = this.scenes.map((s) => el("tr", {}, [
      el("th", { attrs: { scope: "row" }, text: String(s.index + 1) }),
      el("td", { text: `${formatMediaTime(s.start)}–${formatMediaTime(s.end)}` }),
      el("td", { text: s.brightness.toFixed(0) }),
      el("td", { text: s.motion.toFixed(1) }),
      el("td", { text: s.faces === null ? "–" : String(s.faces) }),
    ]));
    const table = el("table", { className: "data-table" }, [
      el("thead", {}, [el("tr", {}, ["Scene", "Time", "Brightness", "Motion", "Faces"].map(
        (h) => el("th", { attrs: { scope: "col" }, text: h })))]),
      el("tbody", {}, rows),
    ]);
    return el("section", { className: "result-block" }, [
      el("h4", { text: "Per-scene numbers" }),
      this.scenes.length ? sceneChart(this.scenes) : el("p", { className: "hint", text: "Nothing to chart." }),
      el("details", { className: "numbers" }, [el("summary", { text: "Show the numbers" }), table]),
    ]);
  }

  /** @returns {HTMLElement} what the face model saw, and which model it was. */
  buildModel() {
    const model = this.result.model && typeof this.result.model === "object" ? this.result.model : null;
    const faces = this.scenes.map((s) => s.faces);
    const total = faces.reduce((sum, f) => sum + (f || 0), 0);
    const chips = el("ul", { className: "chips", attrs: { "aria-label": "Faces per scene" } }, this.scenes.map((s) =>
      el("li", { className: s.faces ? "chip chip--on" : "chip", text: `Scene ${s.index + 1}: ${s.faces === null ? "–" : s.faces} ${s.faces === 1 ? "face" : "faces"}` })));
    const parts = [
      el("h4", { text: "Model signal" }),
      el("p", { text: faces.some((f) => f !== null) ? `${total} ${total === 1 ? "face" : "faces"} detected across ${this.scenes.length} scenes.` : "No face counts in this result." }),
      chips,
    ];
    if (model) {
      parts.push(el("dl", { className: "model" }, [
        el("dt", { text: "Model" }), el("dd", { text: String(model.name ?? "") }),
        el("dt", { text: "Licence" }), el("dd", { text: String(model.licence ?? "") }),
        el("dt", { text: "Package" }), el("dd", { text: String(model.package ?? "") }),
      ]));
    }
    return el("section", { className: "result-block" }, parts);
  }

  /** @returns {HTMLElement} container and stream metadata as a two-column table. */
  buildMetadata() {
    const media = this.result.media && typeof this.result.media === "object" ? this.result.media : null;
    const rows = [];
    const add = (label, value) => {
      if (value !== "" && value !== null && value !== undefined) rows.push([label, String(value)]);
    };
    if (media) {
      const v = media.video && typeof media.video === "object" ? media.video : {};
      const a = media.audio && typeof media.audio === "object" ? media.audio : null;
      add("Duration", `${formatMediaTime(num(media.duration))} (${num(media.duration, 0).toFixed(2)} s)`);
      add("Container", typeof media.container === "string" ? media.container.split(",").join(", ") : "");
      add("File size", formatBytes(num(media.size)));
      add("Bitrate", Number.isFinite(num(media.bitrate)) ? `${Math.round(media.bitrate / 1000)} kbit/s` : "");
      add("Video codec", v.codec ? `${v.codec}${v.profile ? ` (${v.profile})` : ""}` : "");
      add("Resolution", Number.isFinite(num(v.width)) ? `${v.width} × ${v.height}` : "");
      add("Aspect ratio", v.displayAspectRatio);
      add("Frame rate", Number.isFinite(num(v.fps)) ? `${Number(v.fps.toFixed(3))} fps` : "");
      add("Frames", v.frameCount);
      add("Pixel format", v.pixelFormat);
      add("Rotation", Number.isFinite(num(v.rotation)) ? `${v.rotation}°` : "");
      add("Audio", a ? [a.codec, a.sampleRate ? `${a.sampleRate / 1000} kHz` : "", a.channelLayout || (a.channels ? `${a.channels} ch` : "")].filter(Boolean).join(", ") : "None");
    }
    add("Decode errors", num(this.result.decodeErrors, 0) ? this.result.decodeErrors : "");
    if (Array.isArray(this.result.warnings) && this.result.warnings.length) add("Warnings", this.result.warnings.join("; "));
    const body = el("tbody", {}, rows.map(([label, value]) => el("tr", {}, [
      el("th", { attrs: { scope: "row" }, text: label }), el("td", { text: value }),
    ])));
    return el("section", { className: "result-block result-meta" }, [
      el("h4", { text: "Metadata" }),
      rows.length ? el("table", { className: "data-table meta-table" }, [body]) : el("p", { className: "hint", text: "No metadata in this result." }),
    ]);
  }

  /** @returns {HTMLElement} "Download JSON" and the raw result for the curious. */
  buildFooter() {
    const download = el("button", { className: "button button--secondary", text: "Download JSON", attrs: { type: "button" } });
    download.addEventListener("click", () => this.download());
    const raw = el("pre", { className: "raw", attrs: { tabindex: "0" }, text: JSON.stringify(this.exportable(), null, 2) });
    return el("div", { className: "result-footer" }, [
      el("details", { className: "raw-details" }, [el("summary", { text: "Raw result" }), raw]),
      download,
    ]);
  }

  /** @returns {Record<string, any>} the result without the short-lived signed URLs. */
  exportable() {
    const { urls: _urls, urlsExpireAt: _expires, urlsError: _error, ...rest } = this.result;
    return { taskId: this.task.id, ...rest };
  }

  /** Save the result as `analysis-<taskId>.json`. */
  download() {
    const blob = new Blob([JSON.stringify(this.exportable(), null, 2)], { type: "application/json" });
    const href = URL.createObjectURL(blob);
    const link = el("a", { attrs: { href, download: `analysis-${this.task.id}.json` } });
    document.body.append(link);
    link.click();
    link.remove();
    window.setTimeout(() => URL.revokeObjectURL(href), 10_000);
  }

  /** Stop the player (the card is collapsing or going away). */
  destroy() {
    if (this.video) this.video.pause();
  }
}
