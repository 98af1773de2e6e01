/**
 * Thin JSON client for the SoraStudio API.
 *
 * Every API error has the shape {"error": {"code", "message", "fields"?}}; it is thrown here as an
 * {@link ApiError}, so callers can switch on `code` and show `message` to a person.
 * @module api
 */

/** An error answered by the API (or a network failure, with `status` 0). */
export class ApiError extends Error {
  /**
   * @param {number} status HTTP status (0 when the request never got an answer).
   * @param {string} code snake_case error code from the API.
   * @param {string} message human-readable text.
   * @param {Array<{field: string, message: string}>} [fields] per-field problems (400s).
   */
  constructor(status, code, message, fields = []) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.fields = fields;
  }
}

/**
 * Send a request to the API and return the parsed JSON body.
 *
 * @param {string} path path with query string, e.g. "/api/status?taskId=…".
 * @param {object} [options]
 * @param {string} [options.method="GET"] HTTP method.
 * @param {unknown} [options.body] JSON-serialisable body (sent as application/json).
 * @param {string} [options.token] access token for `Authorization: Bearer`.
 * @param {Record<string, string>} [options.headers] extra request headers.
 * @param {AbortSignal} [options.signal] aborts the request.
 * @returns {Promise<any>} the response JSON.
 * @throws {ApiError} on a non-2xx answer or a network failure.
 */
export async function apiRequest(path, { method = "GET", body, token, headers = {}, signal } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers }, signal, cache: "no-store" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (token) init.headers.Authorization = `Bearer ${token}`;

  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw new ApiError(0, "network_error", "Could not reach the studio; check your connection.");
  }

  let data = null;
  const text = await response.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const error = data && typeof data === "object" && data.error ? data.error : {};
    throw new ApiError(
      response.status,
      typeof error.code === "string" ? error.code : "http_" + response.status,
      typeof error.message === "string" ? error.message : `The request failed (HTTP ${response.status}).`,
      Array.isArray(error.fields) ? error.fields : [],
    );
  }
  if (data === null) throw new ApiError(response.status, "bad_response", "The studio sent an unreadable answer.");
  return data;
}

/**
 * A one-line, human-readable description of an error (adds field details when present).
 * @param {unknown} err anything thrown.
 * @returns {string}
 */
export function describeError(err) {
  if (err instanceof ApiError) {
    const details = err.fields.map((f) => `${f.field}: ${f.message}`).join("; ");
    return details ? `${err.message} (${details})` : err.message;
  }
  return "Something went wrong; please try again.";
}
