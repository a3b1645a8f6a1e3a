// One repair as the customer lives it: a token, Meld's widget, then the server's verdict. Nothing here marks a
// connection repaired: only the Repair API's answer does (the widget closing is not the webhook arriving).
// Free of the DOM: the element gives it a widget opener and renders its steps; the tests give it fakes.

import { RepairApiError } from "./client.js";
import { ENGLISH, bankName, reasonInWords } from "./words.js";

/** @typedef {import("./api-types").ConnectionView} ConnectionView */
/** @typedef {import("./api-types").ConnectSessionView} ConnectSessionView */
/** @typedef {import("./client.js").RepairApi} RepairApi */
/** @typedef {import("./words.js").Words} Words */

/**
 * @typedef {"opening" | "in-widget" | "checking" | "reconnected" | "failed" | "still-checking" | "unavailable"
 *   | "nothing-to-do" | "closed" | "error"} Phase
 */

/**
 * Where one connection's repair stands, and what the customer can do next.
 * @typedef {object} Step
 * @property {Phase} phase
 * @property {string} message
 * @property {"retry" | "new-link" | "check-again" | "sign-in" | null} next
 * @property {number | null} retryAt When the next try is allowed (epoch ms), after a 503
 */

/**
 * An open widget: the dialog holding Meld's page.
 * @typedef {object} WidgetHandle
 * @property {() => void} close
 * @property {(source: unknown) => boolean} isSource Whether a message came from this widget's window
 */

/**
 * @typedef {object} WidgetOpener
 * @property {(url: string, title: string, onDismiss: () => void) => WidgetHandle} open
 */

/**
 * @typedef {object} WidgetMessage What the element hands over of a window `message` event
 * @property {string} origin
 * @property {unknown} data
 * @property {unknown} source
 */

/**
 * @typedef {object} RepairFlowOptions
 * @property {RepairApi} api
 * @property {WidgetOpener} widget
 * @property {(connectionId: string, step: Step) => void} onStep
 * @property {(type: "connection-repaired" | "connection-repair-failed" | "session-expired", detail: object) => void} onEvent
 * @property {Words} [words]
 * @property {() => number} [now]
 * @property {(ms: number) => Promise<void>} [sleep]
 * @property {number[]} [pollDelays] Seconds between polls of the verdict; bounded by their sum
 */

// Backoff between polls after connect_complete: the webhook usually lands within seconds; about a minute in all.
export const POLL_DELAYS = [1, 1, 2, 3, 5, 8, 13, 20];
// A token this close to expiresAt is not used: the customer needs minutes in the widget.
export const TOKEN_MARGIN_MS = 5 * 60 * 1000;
// Statuses in which a connection works (the server's USABLE_STATUSES).
const USABLE = new Set(["ACTIVE", "PARTIALLY_ACTIVE"]);

/**
 * @typedef {object} Attempt
 * @property {ConnectionView} connection The connection the customer asked about
 * @property {string} target The connection whose verdict counts (the new one when linking again)
 * @property {boolean} replacing
 * @property {ConnectSessionView} session
 * @property {string} widgetOrigin
 * @property {WidgetHandle | null} handle
 */

export class RepairFlow {
  /** @param {RepairFlowOptions} options */
  constructor({ api, widget, onStep, onEvent, words, now, sleep, pollDelays }) {
    this.api = api;
    this.widget = widget;
    this.onStep = onStep;
    this.onEvent = onEvent;
    this.words = words ?? ENGLISH;
    this.now = now ?? Date.now;
    this.sleep = sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.pollDelays = pollDelays ?? POLL_DELAYS;
    /** @type {Map<string, ConnectSessionView>} Unused repair sessions, reused until close to expiresAt */
    this.sessions = new Map();
    /** @type {Attempt | null} */
    this.attempt = null;
    /** @type {Map<string, string>} The connection whose verdict counts, by the connection the customer chose */
    this.targets = new Map();
  }

  /**
   * The customer pressed the connection's button: repair it, or link it again when it cannot be repaired.
   * @param {ConnectionView} connection
   */
  async begin(connection) {
    if (this.attempt) return; // one widget at a time
    const bank = bankName(connection);
    const replacing = connection.action === "START_NEW_CONNECTION";
    this.#step(connection.connectionId, "opening", this.words.opening(bank));
    /** @type {ConnectSessionView} */
    let session;
    try {
      session = replacing ? await this.#newConnection(connection) : await this.#repairSession(connection);
    } catch (error) {
      this.#refused(connection, error);
      return;
    }
    const target = replacing ? session.connectionId : connection.connectionId;
    this.targets.set(connection.connectionId, target);
    /** @type {Attempt} */
    const attempt = {
      connection,
      target,
      replacing,
      session,
      widgetOrigin: new URL(session.widgetUrl).origin,
      handle: null,
    };
    this.attempt = attempt;
    this.#step(connection.connectionId, "in-widget", this.words.dialogTitle(bank));
    attempt.handle = this.widget.open(session.widgetUrl, this.words.dialogTitle(bank), () => this.#dismissed(attempt));
  }

  /**
   * A window `message` event. Only Meld's widget, from the open widget's origin and window, is heard.
   * @param {WidgetMessage} message
   */
  receive(message) {
    const attempt = this.attempt;
    if (!attempt || message.origin !== attempt.widgetOrigin || !attempt.handle?.isSource(message.source)) return;
    const data = /** @type {{ domain?: unknown, eventName?: unknown, reason?: unknown }} */ (message.data);
    if (typeof data !== "object" || data === null || data.domain !== "meld-connect") return;
    if (data.eventName === "connect_complete") {
      this.#finishWidget(attempt);
      this.sessions.delete(attempt.connection.connectionId); // used: a new attempt needs a new token
      void this.#awaitVerdict(attempt.connection, attempt.target, attempt.replacing);
    } else if (data.eventName === "error") {
      this.#finishWidget(attempt);
      this.sessions.delete(attempt.connection.connectionId);
      const reason = typeof data.reason === "string" ? data.reason : null;
      this.#failed(attempt.connection, reason, attempt.connection.action === "START_NEW_CONNECTION");
    }
  }

  /**
   * Poll the verdict again after "still checking".
   * @param {ConnectionView} connection
   */
  checkAgain(connection) {
    const target = this.targets.get(connection.connectionId) ?? connection.connectionId;
    return this.#awaitVerdict(connection, target, target !== connection.connectionId);
  }

  /** @param {Attempt} attempt */
  #dismissed(attempt) {
    if (this.attempt !== attempt) return;
    this.attempt = null;
    this.#step(attempt.connection.connectionId, "closed", this.words.closed(bankName(attempt.connection)), "retry");
  }

  /** @param {Attempt} attempt */
  #finishWidget(attempt) {
    this.attempt = null;
    attempt.handle?.close();
  }

  /**
   * A repair session: the unused one while it has time left, else a new one (a token past expiresAt is never used).
   * @param {ConnectionView} connection
   */
  async #repairSession(connection) {
    const kept = this.sessions.get(connection.connectionId);
    if (kept && Date.parse(kept.expiresAt) - this.now() > TOKEN_MARGIN_MS) return kept;
    const idempotencyKey = this.api.newIdempotencyKey();
    for (;;) {
      try {
        const session = await this.api.repair(connection.connectionId, { idempotencyKey });
        this.sessions.set(connection.connectionId, session);
        return session;
      } catch (error) {
        // The same request is still being answered (a double click, a retry): wait, then ask again, same key.
        if (!(error instanceof RepairApiError && error.code === "REQUEST_IN_PROGRESS")) throw error;
        await this.sleep((error.retryAfter ?? 1) * 1000);
      }
    }
  }

  /**
   * The same bank again: with its institution the widget opens on its login, not on the bank picker.
   * @param {ConnectionView} connection
   */
  #newConnection(connection) {
    const body = { replacesConnectionId: connection.connectionId };
    return this.api.startConnection(connection.institutionId ? { ...body, institutionId: connection.institutionId } : body);
  }

  /**
   * The API refused to give a token: say why, and what to do next.
   * @param {ConnectionView} connection
   * @param {unknown} error
   */
  #refused(connection, error) {
    const id = connection.connectionId;
    const bank = bankName(connection);
    if (!(error instanceof RepairApiError)) {
      this.#step(id, "error", this.words.unexpected(), "retry");
      return;
    }
    if (error.status === 401) {
      this.#step(id, "error", this.words.sessionExpired(), "sign-in");
      this.onEvent("session-expired", { connectionId: id });
    } else if (error.status === 404) {
      this.#step(id, "error", this.words.gone(), null);
    } else if (error.status === 409 && error.action === "START_NEW_CONNECTION") {
      this.#step(id, "failed", this.words.cannotRepair(bank), "new-link");
    } else if (error.status === 409) {
      this.#step(id, "nothing-to-do", this.words.alreadyWorking(bank), null);
    } else if (error.status === 503 || error.status === 429) {
      const seconds = error.retryAfter ?? 5;
      this.#step(id, "unavailable", this.words.unavailable(bank, seconds), "retry", this.now() + seconds * 1000);
    } else {
      this.#step(id, "error", this.words.unexpected(), "retry");
    }
  }

  /**
   * After connect_complete: ask the server until it has Meld's verdict, within the bound.
   * @param {ConnectionView} connection
   * @param {string} target
   * @param {boolean} replacing
   */
  async #awaitVerdict(connection, target, replacing) {
    const id = connection.connectionId;
    const bank = bankName(connection);
    this.#step(id, "checking", this.words.checking(bank));
    for (const delay of this.pollDelays) {
      await this.sleep(delay * 1000);
      /** @type {ConnectionView} */
      let current;
      try {
        current = await this.api.getConnection(target);
      } catch (error) {
        if (error instanceof RepairApiError && error.status === 401) {
          this.#step(id, "error", this.words.sessionExpired(), "sign-in");
          this.onEvent("session-expired", { connectionId: id });
          return;
        }
        continue; // a blip (503, the network): the next poll may get through
      }
      const verdict = judge(connection, current, replacing);
      if (verdict === "repaired") {
        this.#step(id, "reconnected", this.words.reconnected(bank));
        this.onEvent("connection-repaired", replacing ? { connectionId: id, newConnectionId: target } : { connectionId: id });
        return;
      }
      if (verdict === "failed") {
        this.#failed(connection, current.statusReason, current.action === "START_NEW_CONNECTION" || replacing);
        return;
      }
    }
    this.#step(id, "still-checking", this.words.stillChecking(bank), "check-again");
  }

  /**
   * @param {ConnectionView} connection
   * @param {string | null} reason Meld's reason
   * @param {boolean} linkAgain Whether the way out is a new connection
   */
  #failed(connection, reason, linkAgain) {
    const bank = bankName(connection);
    this.#step(
      connection.connectionId,
      "failed",
      this.words.failed(bank, reasonInWords(reason) ?? reason),
      linkAgain ? "new-link" : "retry",
    );
    this.onEvent("connection-repair-failed", { connectionId: connection.connectionId, reason });
  }

  /**
   * @param {string} connectionId
   * @param {Phase} phase
   * @param {string} message
   * @param {Step["next"]} [next]
   * @param {number | null} [retryAt]
   */
  #step(connectionId, phase, message, next = null, retryAt = null) {
    this.onStep(connectionId, { phase, message, next, retryAt });
  }
}

/**
 * The server's verdict on the repair (or on the new connection), or "pending" while Meld has not given it.
 * @param {ConnectionView} before The connection when the customer pressed the button
 * @param {ConnectionView} now The target connection as the server has it now
 * @param {boolean} replacing Whether `now` is a new connection replacing `before`
 * @returns {"repaired" | "failed" | "pending"}
 */
export function judge(before, now, replacing) {
  const works = USABLE.has(now.status ?? "") && now.action === "NONE";
  if (replacing) {
    if (works) return "repaired";
    return now.status === "IN_PROGRESS" || now.status === null ? "pending" : "failed";
  }
  if (works) return "repaired";
  if (now.failedRepairs > before.failedRepairs || now.action === "START_NEW_CONNECTION") return "failed";
  return "pending";
}
