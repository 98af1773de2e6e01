/**
 * Uploads: check the file, get a signed upload URL from `POST /api/upload`, then send the file
 * straight to Storage with XMLHttpRequest (the only browser API that reports upload progress).
 * Also remembers the original file name of each upload in this browser, for the task cards.
 * @module upload
 */

import { ApiError } from "./api.js";
import { VIDEO_EXTENSIONS, formatBytes } from "./format.js";

/** The uploads bucket's size limit (the API refuses larger files too). */
export const MAX_UPLOAD_BYTES = 500 * 1024 * 1024;
const NAMES_KEY = "sorastudio.uploadNames";
const MAX_REMEMBERED = 200;

/**
 * The content type to announce for `file`, or "" when it is not a video.
 * @param {File} file
 * @returns {string}
 */
export function videoContentType(file) {
  const type = (file.type || "").toLowerCase();
  if (type.startsWith("video/")) return type;
  const ext = file.name.includes(".") ? file.name.split(".").pop().toLowerCase() : "";
  // Some systems give no type (or a generic one) for .mkv and friends: trust a known extension.
  if (!type || type === "application/octet-stream") return VIDEO_EXTENSIONS[ext] || "";
  return "";
}

/**
 * Why `file` can't be uploaded, in words for a person; "" when it can.
 * @param {File} file
 * @returns {string}
 */
export function checkFile(file) {
  if (!videoContentType(file)) {
    return `“${file.name}” is not a video file. Choose a video such as MP4, MOV, WebM or MKV.`;
  }
  if (file.size === 0) return `“${file.name}” is empty.`;
  if (file.size > MAX_UPLOAD_BYTES) {
    return `“${file.name}” is ${formatBytes(file.size)}; videos can be at most ${formatBytes(MAX_UPLOAD_BYTES)}.`;
  }
  return "";
}

/**
 * Upload a checked file: ask for a signed URL, then PUT it as multipart field `file`.
 *
 * @param {import("./session.js").SessionManager} session
 * @param {File} file
 * @param {{onProgress?: (sent: number, total: number) => void, signal?: AbortSignal}} [options]
 * @returns {Promise<string>} the storage path to create the task with.
 * @throws {ApiError} when the API or Storage refuses, the network fails, or it was aborted
 *   (code `upload_aborted`).
 */
export async function uploadFile(session, file, { onProgress, signal } = {}) {
  const grant = await session.request("/api/upload", {
    method: "POST",
    body: { filename: file.name, size: file.size, contentType: videoContentType(file) },
    signal,
  });
  await putFile(grant.uploadUrl, grant.formField || "file", file, { onProgress, signal });
  rememberName(grant.storagePath, file.name);
  return grant.storagePath;
}

/**
 * Send `file` to a signed upload URL with progress events.
 * @param {string} url
 * @param {string} field multipart field name.
 * @param {File} file
 * @param {{onProgress?: (sent: number, total: number) => void, signal?: AbortSignal}} options
 * @returns {Promise<void>}
 */
function putFile(url, field, file, { onProgress, signal }) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    const aborted = () => new ApiError(0, "upload_aborted", "The upload was canceled.");
    if (signal && signal.aborted) {
      reject(aborted());
      return;
    }
    xhr.open("PUT", url);
    xhr.responseType = "text";
    xhr.upload.onprogress = (event) => {
      if (onProgress) onProgress(event.loaded, event.lengthComputable ? event.total : file.size);
    };
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        if (onProgress) onProgress(file.size, file.size);
        resolve();
        return;
      }
      reject(storageError(xhr.status, xhr.responseText));
    };
    xhr.onerror = () => reject(new ApiError(0, "network_error", "The upload failed: the connection to Storage broke off."));
    xhr.onabort = () => reject(aborted());
    if (signal) signal.addEventListener("abort", () => xhr.abort(), { once: true });
    const form = new FormData();
    form.append(field, file, file.name);
    xhr.send(form);
  });
}

/**
 * An {@link ApiError} for a Storage refusal (its JSON is `{"statusCode","error","message"}`).
 * @param {number} status
 * @param {string} text
 * @returns {ApiError}
 */
function storageError(status, text) {
  let detail = "";
  try {
    const data = JSON.parse(text);
    if (data && typeof data.message === "string") detail = data.message;
  } catch {
    /* not JSON: keep the generic text */
  }
  if (status === 413) return new ApiError(status, "file_too_large", "Storage refused the file: it is too large.");
  const why = detail ? `: ${detail}` : ` (HTTP ${status})`;
  return new ApiError(status, "upload_failed", `Storage refused the upload${why}.`);
}

/**
 * Remember which file name an upload had (the storage path keeps only a sanitised hint).
 * @param {string} storagePath
 * @param {string} name
 */
export function rememberName(storagePath, name) {
  try {
    const names = readNames();
    names[storagePath] = name;
    const keys = Object.keys(names);
    for (const key of keys.slice(0, Math.max(0, keys.length - MAX_REMEMBERED))) delete names[key];
    localStorage.setItem(NAMES_KEY, JSON.stringify(names));
  } catch {
    /* storage full or blocked: cards fall back to the name in the path */
  }
}

/**
 * The name to show for an uploaded file: the original one when this browser uploaded it, else the
 * readable part of the storage path (`<user>/<16 hex>-<name>.<ext>`).
 * @param {string} storagePath
 * @returns {string}
 */
export function uploadDisplayName(storagePath) {
  const known = readNames()[storagePath];
  if (typeof known === "string" && known) return known;
  const base = storagePath.split("/").pop() || storagePath;
  return base.replace(/^[0-9a-f]{16}-/, "");
}

/** @returns {Record<string, string>} */
function readNames() {
  try {
    const value = JSON.parse(localStorage.getItem(NAMES_KEY) || "{}");
    return value && typeof value === "object" && !Array.isArray(value) ? value : {};
  } catch {
    return {};
  }
}
