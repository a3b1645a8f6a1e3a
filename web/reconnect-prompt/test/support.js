// Fakes for the client and the flow: a fetch that answers from a script, a widget that records what it was asked.

/**
 * @typedef {object} Sent
 * @property {string} method
 * @property {string} url
 * @property {Record<string, string>} headers
 * @property {unknown} body
 */

/**
 * A fetch answering each request with the next scripted answer for its "METHOD path".
 * @param {Record<string, Array<[number, unknown, Record<string, string>?]>>} script
 */
export function scriptedFetch(script) {
  /** @type {Sent[]} */
  const sent = [];
  /** @type {typeof fetch} */
  const fetcher = async (input, init = {}) => {
    const url = new URL(String(input));
    const method = init.method ?? "GET";
    const headers = /** @type {Record<string, string>} */ (init.headers ?? {});
    sent.push({ method, url: String(input), headers, body: init.body ? JSON.parse(String(init.body)) : undefined });
    const answers = script[`${method} ${url.pathname}`];
    if (!answers?.length) throw new TypeError(`no answer scripted for ${method} ${url.pathname}`);
    const [status, body, answerHeaders] = answers.length > 1 ? /** @type {[number, unknown, Record<string, string>?]} */ (answers.shift()) : answers[0];
    return new Response(body === undefined ? null : JSON.stringify(body), {
      status,
      headers: { "content-type": "application/json", ...(answerHeaders ?? {}) },
    });
  };
  return { fetch: fetcher, sent };
}

/**
 * A connection view as the API answers it.
 * @param {Partial<import("../src/api-types").ConnectionView>} [fields]
 * @returns {import("../src/api-types").ConnectionView}
 */
export function connection(fields = {}) {
  return {
    connectionId: "conn-1",
    institutionId: "inst-chase",
    institutionName: "Chase",
    status: "RECONNECT_REQUIRED",
    statusReason: "LOGIN_REQUIRED",
    action: "REPAIR",
    attentionSince: "2026-12-01T10:00:00Z",
    repairAttempts: 0,
    lastRepairAt: null,
    repairPending: false,
    repairStartedAt: null,
    failedRepairs: 0,
    supersededBy: null,
    institutionIncident: null,
    ...fields,
  };
}

export const WIDGET_ORIGIN = "https://institution-connect-sb.meld.io";

/**
 * @param {string} connectionId
 * @param {string} expiresAt
 * @returns {import("../src/api-types").ConnectSessionView}
 */
export function session(connectionId, expiresAt = "2026-12-01T13:00:00Z") {
  return {
    connectionId,
    institutionId: "inst-chase",
    connectToken: `token-for-${connectionId}`,
    widgetUrl: `${WIDGET_ORIGIN}/?connectToken=token-for-${connectionId}`,
    expiresAt,
  };
}

/** A widget opener recording each widget it opened; `window` stands for the iframe's window. */
export function fakeWidget() {
  /** @type {Array<{ url: string, title: string, dismiss: () => void, closed: boolean, window: object }>} */
  const opened = [];
  return {
    opened,
    /** @type {import("../src/flow.js").WidgetOpener} */
    opener: {
      open(url, title, onDismiss) {
        const widget = { url, title, dismiss: onDismiss, closed: false, window: { name: `widget-${opened.length}` } };
        opened.push(widget);
        return { close: () => void (widget.closed = true), isSource: (source) => source === widget.window };
      },
    },
  };
}
