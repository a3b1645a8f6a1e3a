// The Repair API, as the prompt calls it. The caller's JWT comes from `getToken` on every request, so a refreshed
// session is used as soon as the app has it.

/** @typedef {import("./api-types").ConnectionView} ConnectionView */
/** @typedef {import("./api-types").ConnectionList} ConnectionList */
/** @typedef {import("./api-types").ConnectSessionView} ConnectSessionView */
/** @typedef {import("./api-types").NewConnectionView} NewConnectionView */
/** @typedef {import("./api-types").Action} Action */

/**
 * An answer other than 2xx. `retryAfter` is in seconds (503, and 409 REQUEST_IN_PROGRESS); `action` is what the
 * server says to do instead (409).
 */
export class RepairApiError extends Error {
  /**
   * @param {number} status
   * @param {string} code
   * @param {string} message
   * @param {{ retryAfter?: number | null, action?: Action | null }} [details]
   */
  constructor(status, code, message, details = {}) {
    super(message);
    this.name = "RepairApiError";
    this.status = status;
    this.code = code;
    this.retryAfter = details.retryAfter ?? null;
    this.action = details.action ?? null;
  }
}

/**
 * @typedef {object} RepairApiOptions
 * @property {string} baseUrl The Repair API's URL (API Gateway's, or the app's proxy to it)
 * @property {() => string | Promise<string>} getToken The signed-in customer's JWT
 * @property {typeof fetch} [fetch] Defaults to the global fetch
 * @property {() => string} [newIdempotencyKey] Defaults to crypto.randomUUID
 */

/**
 * @typedef {object} ListOptions
 * @property {boolean} [needsAction] Only connections with something to show (any action but NONE)
 * @property {Array<"superseded" | "deleted" | "abandoned">} [include] History to list as well
 */

export class RepairApi {
  /** @param {RepairApiOptions} options */
  constructor({ baseUrl, getToken, fetch: fetcher, newIdempotencyKey }) {
    if (!baseUrl) throw new TypeError("RepairApi needs the Repair API's baseUrl");
    if (typeof getToken !== "function") throw new TypeError("RepairApi needs getToken, a function giving the JWT");
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.getToken = getToken;
    this.fetch = fetcher ?? globalThis.fetch.bind(globalThis);
    this.newIdempotencyKey = newIdempotencyKey ?? (() => crypto.randomUUID());
  }

  /**
   * @param {ListOptions} [options]
   * @returns {Promise<ConnectionView[]>}
   */
  async listConnections(options = {}) {
    const query = new URLSearchParams();
    if (options.needsAction) query.set("needsAction", "true");
    if (options.include?.length) query.set("include", options.include.join(","));
    const suffix = query.size ? `?${query}` : "";
    /** @type {ConnectionList} */
    const list = await this.#call("GET", `/connections${suffix}`);
    return list.connections;
  }

  /**
   * @param {string} connectionId
   * @returns {Promise<ConnectionView>}
   */
  getConnection(connectionId) {
    return this.#call("GET", `/connections/${encodeURIComponent(connectionId)}`);
  }

  /**
   * A fresh connect token and widget URL for one of the caller's connections. Retries of one attempt reuse its
   * `idempotencyKey`, so Meld is asked once.
   * @param {string} connectionId
   * @param {{ idempotencyKey?: string }} [options]
   * @returns {Promise<ConnectSessionView>}
   */
  repair(connectionId, { idempotencyKey } = {}) {
    const key = idempotencyKey ?? this.newIdempotencyKey();
    return this.#call("POST", `/connections/${encodeURIComponent(connectionId)}/repair`, undefined, key);
  }

  /**
   * A new connection, replacing `replacesConnectionId` once the customer completes it.
   * @param {{ replacesConnectionId?: string, institutionId?: string }} body
   * @param {{ idempotencyKey?: string }} [options]
   * @returns {Promise<NewConnectionView>}
   */
  startConnection(body, { idempotencyKey } = {}) {
    return this.#call("POST", "/connections", body, idempotencyKey ?? this.newIdempotencyKey());
  }

  /**
   * @param {string} method
   * @param {string} path
   * @param {unknown} [body]
   * @param {string} [idempotencyKey]
   * @returns {Promise<any>}
   */
  async #call(method, path, body, idempotencyKey) {
    /** @type {Record<string, string>} */
    const headers = { Authorization: `Bearer ${await this.getToken()}`, Accept: "application/json" };
    if (idempotencyKey) headers["Idempotency-Key"] = idempotencyKey;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    /** @type {Response} */
    let response;
    try {
      response = await this.fetch(`${this.baseUrl}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
        credentials: "omit",
      });
    } catch (error) {
      throw new RepairApiError(0, "NETWORK_ERROR", `The Repair API could not be reached: ${error}`);
    }
    const answer = await response.json().catch(() => null);
    if (response.ok) return answer;
    throw new RepairApiError(
      response.status,
      answer?.code ?? (response.status === 401 ? "UNAUTHORIZED" : `HTTP_${response.status}`),
      answer?.message ?? response.statusText,
      { retryAfter: retryAfterSeconds(response.headers.get("Retry-After")), action: answer?.action ?? null },
    );
  }
}

/**
 * Retry-After as seconds: a number of seconds or an HTTP date; null when absent or unreadable.
 * @param {string | null} value
 * @param {number} [now]
 * @returns {number | null}
 */
export function retryAfterSeconds(value, now = Date.now()) {
  if (value === null || value.trim() === "") return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - now) / 1000));
}
