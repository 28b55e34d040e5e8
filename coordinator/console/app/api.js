// The console's one door to the coordinator: the public /v1 API with the session cookie.
// Every request that changes something carries X-Plinth-Session: 1 (the anti-forgery header
// the coordinator requires of cookie sessions).

/** An error answer of the API: `{"error": {"code", "message", "field"?}}`. */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} code
   * @param {string} message
   * @param {string | undefined} field
   */
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

/** Called when an answer says the session is gone (401), so the app shows sign-in. */
let onSignedOut = () => {};

/** @param {() => void} f */
export function setSignedOutHandler(f) {
  onSignedOut = f;
}

/**
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 * @returns {Promise<any>}
 */
export async function call(method, path, body) {
  /** @type {Record<string, string>} */
  const headers = { Accept: "application/json" };
  if (method !== "GET" && method !== "HEAD") headers["X-Plinth-Session"] = "1";
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let resp;
  try {
    resp = await fetch(path, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, "network", String(e), undefined);
  }
  if (resp.status === 204) return null;
  const text = await resp.text();
  /** @type {any} */
  let value = null;
  try {
    value = text ? JSON.parse(text) : null;
  } catch {
    value = null;
  }
  if (!resp.ok) {
    const err = value && value.error ? value.error : {};
    if (resp.status === 401 && path !== "/v1/session") onSignedOut();
    throw new ApiError(resp.status, err.code || "http_error", err.message || resp.statusText, err.field);
  }
  return value;
}

/**
 * Every item of a paged list (`limit` + `cursor`, answered `{items, total, next_cursor}`).
 * @template T
 * @param {string} path the list's path, with its filters as a query if any
 * @param {(items: T[], total: number) => void} [progress] called after each page
 * @returns {Promise<T[]>}
 */
export async function listAll(path, progress) {
  /** @type {T[]} */
  const all = [];
  let cursor = null;
  const sep = path.includes("?") ? "&" : "?";
  for (;;) {
    const q = `limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
    /** @type {{items: T[], total: number, next_cursor?: string | null}} */
    const page = await call("GET", `${path}${sep}${q}`);
    all.push(...page.items);
    if (progress) progress(all, page.total);
    if (!page.next_cursor) return all;
    cursor = page.next_cursor;
  }
}
