/**
 * The signed-in session: kept in localStorage, refreshed with the refresh token before the access
 * token expires, shared between tabs through the `storage` event.
 * @module session
 */

import { ApiError, apiRequest } from "./api.js";

const STORAGE_KEY = "sorastudio.session";
/** Refresh this many seconds before `expiresAt`. */
const REFRESH_MARGIN_S = 60;
/** Never schedule a refresh sooner than this (ms), so a clock skew can't spin. */
const MIN_REFRESH_DELAY_MS = 5_000;

/**
 * @typedef {{accessToken: string, refreshToken: string, expiresAt: number, tokenType: string}} Tokens
 * @typedef {{id: string, email: string}} User
 * @typedef {{user: User, session: Tokens}} StoredSession
 */

/** @returns {number} unix seconds now. */
const nowS = () => Math.floor(Date.now() / 1000);

/**
 * Is `value` a well-formed stored session?
 * @param {any} value
 * @returns {value is StoredSession}
 */
function isStoredSession(value) {
  return Boolean(
    value && typeof value === "object" &&
    value.user && typeof value.user.id === "string" && typeof value.user.email === "string" &&
    value.session && typeof value.session.accessToken === "string" &&
    typeof value.session.refreshToken === "string" && Number.isInteger(value.session.expiresAt),
  );
}

/**
 * Holds the current session and fires a `change` event when it starts, is refreshed, or ends.
 * `detail` of the event is the new {@link StoredSession} or null.
 */
export class SessionManager extends EventTarget {
  /** @param {Storage} [storage=localStorage] */
  constructor(storage = window.localStorage) {
    super();
    this.storage = storage;
    /** @type {StoredSession|null} */
    this.current = null;
    /** @type {Promise<StoredSession|null>|null} */
    this.refreshing = null;
    this.timer = 0;
    this.endReason = "logout";
    /** @type {User|null} */
    this.lastUser = null;
    window.addEventListener("storage", (event) => {
      if (event.key === STORAGE_KEY) this.adopt(this.read(), false);
    });
  }

  /** Load the stored session (if any) and start the refresh timer. Call once at startup. */
  restore() {
    this.adopt(this.read(), false);
  }

  /** @returns {User|null} the signed-in user. */
  get user() {
    return this.current ? this.current.user : null;
  }

  /**
   * Create an account. Resolves to the session, or null when the project requires confirming
   * the email first (the API then answers `session: null`).
   * @param {string} email
   * @param {string} password
   * @returns {Promise<StoredSession|null>}
   */
  async signUp(email, password) {
    const data = await apiRequest("/api/auth/register", { method: "POST", body: { email, password } });
    if (!data.session) return null;
    return this.adopt({ user: data.user, session: data.session });
  }

  /**
   * Log in with email and password.
   * @param {string} email
   * @param {string} password
   * @returns {Promise<StoredSession>}
   */
  async logIn(email, password) {
    const data = await apiRequest("/api/auth/login", { method: "POST", body: { email, password } });
    return /** @type {StoredSession} */ (this.adopt({ user: data.user, session: data.session }));
  }

  /** Forget the session here and in other tabs. */
  logOut() {
    this.adopt(null);
  }

  /**
   * A valid access token, refreshed first when it is about to expire.
   * @returns {Promise<string>}
   * @throws {ApiError} 401 `unauthorized` when nobody is signed in or the session has ended.
   */
  async accessToken() {
    let current = this.current;
    if (current && current.session.expiresAt - nowS() <= REFRESH_MARGIN_S) current = await this.refresh();
    if (!current) throw new ApiError(401, "unauthorized", "Log in first.");
    return current.session.accessToken;
  }

  /**
   * Exchange the refresh token for a new session (one request at a time, shared by callers).
   * Ends the session when the refresh token is no longer accepted.
   * @returns {Promise<StoredSession|null>}
   */
  refresh() {
    if (!this.refreshing) {
      const started = this.current;
      this.refreshing = (async () => {
        if (!started) return null;
        try {
          const data = await apiRequest("/api/auth/login", {
            method: "POST", body: { refreshToken: started.session.refreshToken },
          });
          return this.adopt({ user: data.user, session: data.session });
        } catch (err) {
          // Another tab may have rotated the token already: prefer what it stored.
          const stored = this.read();
          if (stored && stored.session.refreshToken !== started.session.refreshToken) return this.adopt(stored, false);
          if (err instanceof ApiError && err.status === 401) return this.adopt(null, true, "expired");
          throw err; // network trouble: keep the session, the timer tries again
        }
      })().finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }

  /**
   * Call the API with the bearer token; on a 401 for an expired/invalid token, refresh once and
   * retry. Arguments as for {@link apiRequest} (without `token`).
   * @param {string} path
   * @param {object} [options]
   * @returns {Promise<any>}
   */
  async request(path, options = {}) {
    const token = await this.accessToken();
    try {
      return await apiRequest(path, { ...options, token });
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 401 || !this.current) throw err;
      const renewed = await this.refresh();
      if (!renewed) throw err;
      return apiRequest(path, { ...options, token: renewed.session.accessToken });
    }
  }

  // -- internals -------------------------------------------------------------------------------

  /** @returns {StoredSession|null} */
  read() {
    try {
      const value = JSON.parse(this.storage.getItem(STORAGE_KEY) || "null");
      return isStoredSession(value) ? value : null;
    } catch {
      return null;
    }
  }

  /**
   * Make `value` the current session, persist it (unless it came from storage) and notify.
   * @param {StoredSession|null} value
   * @param {boolean} [persist=true]
   * @param {"logout"|"expired"} [reason="logout"] why a session ends (see {@link SessionManager#endReason}).
   * @returns {StoredSession|null}
   */
  adopt(value, persist = true, reason = "logout") {
    const before = this.current;
    if (!value && before) {
      /** Why the last session ended: "expired" when its refresh token was refused. */
      this.endReason = reason;
      /** The user of the session that ended (to offer their email again). */
      this.lastUser = before.user;
    }
    this.current = value;
    if (persist) {
      try {
        if (value) this.storage.setItem(STORAGE_KEY, JSON.stringify(value));
        else this.storage.removeItem(STORAGE_KEY);
      } catch {
        /* storage full or blocked: the session still works in this tab */
      }
    }
    this.schedule();
    const changed = (before && before.session.accessToken) !== (value && value.session.accessToken);
    if (changed) this.dispatchEvent(new CustomEvent("change", { detail: value }));
    return value;
  }

  /** (Re)arm the timer that refreshes the session shortly before it expires. */
  schedule() {
    window.clearTimeout(this.timer);
    if (!this.current) return;
    const due = (this.current.session.expiresAt - REFRESH_MARGIN_S - nowS()) * 1000;
    this.timer = window.setTimeout(() => {
      this.refresh().catch(() => this.schedule());
    }, Math.min(Math.max(due, MIN_REFRESH_DELAY_MS), 2 ** 31 - 1));
  }
}
