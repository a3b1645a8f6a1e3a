// <reconnect-prompt>: the signed-in customer's connections that need them, and the repair, in the app's page.
//
//   <reconnect-prompt api-base-url="https://api.example.com"></reconnect-prompt>
//   <script type="module">
//     import "@connection-repair/reconnect-prompt";
//     document.querySelector("reconnect-prompt").getToken = () => session.accessToken;
//   </script>
//
// Attributes: api-base-url (required), connection-id (only that connection: the deep link of a message).
// Properties: getToken (required), words (texts, default English). Events: connection-repaired,
// connection-repair-failed, session-expired. Styling: CSS custom properties (--reconnect-prompt-*) and ::part.

import { RepairApi } from "./client.js";
import { RepairFlow } from "./flow.js";
import { ENGLISH, bankName } from "./words.js";

/** @typedef {import("./api-types").ConnectionView} ConnectionView */
/** @typedef {import("./flow.js").Step} Step */
/** @typedef {import("./words.js").Words} Words */

const STYLE = `
:host { display: block; font: inherit; color: var(--reconnect-prompt-text, inherit); }
ul { list-style: none; margin: 0; padding: 0; display: grid; gap: var(--reconnect-prompt-gap, 0.75rem); }
li { border: 1px solid var(--reconnect-prompt-border, #d0d7de); border-radius: var(--reconnect-prompt-radius, 0.5rem);
  padding: 1rem; background: var(--reconnect-prompt-surface, transparent); }
h3 { margin: 0 0 0.25rem; font-size: 1rem; }
p { margin: 0.25rem 0 0.5rem; }
button { font: inherit; cursor: pointer; padding: 0.5rem 1rem; border-radius: var(--reconnect-prompt-radius, 0.5rem);
  border: 1px solid var(--reconnect-prompt-accent, #0b57d0); background: var(--reconnect-prompt-accent, #0b57d0);
  color: var(--reconnect-prompt-on-accent, #fff); }
button:disabled { opacity: 0.6; cursor: default; }
button:focus-visible { outline: 3px solid var(--reconnect-prompt-focus, #f9ab00); outline-offset: 2px; }
[part~="step"] { font-weight: 600; }
[part~="status"] { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); }
dialog:focus { outline: none; } /* focused as a whole when it opens; its buttons keep their ring */
dialog { padding: 0; border: none; border-radius: var(--reconnect-prompt-radius, 0.5rem); width: 360px;
  max-width: 100vw; }
dialog::backdrop { background: var(--reconnect-prompt-backdrop, rgb(0 0 0 / 0.5)); }
dialog header { display: flex; justify-content: space-between; align-items: center; padding: 0.5rem 0.75rem; }
dialog header h2 { font-size: 1rem; margin: 0; }
dialog header button { background: transparent; color: inherit; border-color: transparent; padding: 0.25rem 0.5rem; }
iframe { display: block; border: 0; width: 360px; height: 640px; max-width: 100%; }
@media (max-width: 480px) {
  dialog { width: 100vw; height: 100dvh; max-height: none; margin: 0; border-radius: 0; }
  dialog[open] { display: flex; flex-direction: column; }
  iframe { width: 100%; height: auto; flex: 1; }
}
`;

/** @type {CSSStyleSheet | null} One sheet for every prompt on the page */
let sheet = null;

// A constructed sheet, not a <style> element: a page whose Content-Security-Policy forbids inline styles (as a bank
// app's should) still styles the prompt.
function styles() {
  if (!sheet) {
    sheet = new CSSStyleSheet();
    sheet.replaceSync(STYLE);
  }
  return sheet;
}

export class ReconnectPrompt extends HTMLElement {
  static observedAttributes = ["api-base-url", "connection-id"];

  constructor() {
    super();
    const root = this.attachShadow({ mode: "open" });
    root.adoptedStyleSheets = [styles()];
    root.innerHTML = `
      <div part="container"><p part="empty" hidden></p><ul part="list"></ul></div>
      <p part="status" role="status" aria-live="polite"></p>
      <dialog part="dialog" aria-labelledby="dialog-title" tabindex="-1">
        <header><h2 id="dialog-title"></h2><button type="button" part="close" data-close></button></header>
        <iframe part="widget" title="" allow="publickey-credentials-get"></iframe>
      </dialog>`;
    /** @type {() => string | Promise<string>} */
    this._getToken = () => Promise.reject(new Error("<reconnect-prompt> needs getToken"));
    /** @type {Words} */
    this.words = ENGLISH;
    /** @type {ConnectionView[]} */
    this.connections = [];
    /** @type {Map<string, Step>} */
    this.steps = new Map();
    /** @type {RepairFlow | null} */
    this.flow = null;
    /** @type {string | null} The connection whose button gets focus back when the widget closes (by id: the list is
     * drawn again meanwhile) */
    this.returnFocus = null;
    this.onMessage = (/** @type {MessageEvent} */ event) =>
      this.flow?.receive({ origin: event.origin, data: event.data, source: event.source });
  }

  /** The signed-in customer's JWT, on every request. */
  get getToken() {
    return this._getToken;
  }

  set getToken(value) {
    this._getToken = value;
    void this.refresh();
  }

  connectedCallback() {
    window.addEventListener("message", this.onMessage);
    const dialog = this.#dialog();
    dialog.querySelector("[data-close]")?.addEventListener("click", () => dialog.close());
    void this.refresh();
  }

  disconnectedCallback() {
    window.removeEventListener("message", this.onMessage);
  }

  attributeChangedCallback() {
    if (this.isConnected) void this.refresh();
  }

  /** Reads the connections again (after sign-in, or when the host app knows something changed). */
  async refresh() {
    const baseUrl = this.getAttribute("api-base-url");
    if (!baseUrl || !this.isConnected) return;
    const api = new RepairApi({ baseUrl, getToken: () => this._getToken() });
    this.flow ??= this.#flow(api);
    this.flow.api = api;
    const only = this.getAttribute("connection-id");
    try {
      this.connections = only ? [await api.getConnection(only)] : await api.listConnections({ needsAction: true });
    } catch {
      this.connections = [];
      this.#announce(this.words.loadFailed());
      this.#render();
      return;
    }
    this.#render();
  }

  /** @param {RepairApi} api */
  #flow(api) {
    return new RepairFlow({
      api,
      words: this.words,
      widget: { open: (url, title, onDismiss) => this.#openWidget(url, title, onDismiss) },
      onStep: (connectionId, step) => {
        this.steps.set(connectionId, step);
        this.#announce(step.message);
        this.#render();
      },
      onEvent: (type, detail) => {
        this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true }));
        if (type === "connection-repair-failed" || type === "connection-repaired") void this.#reread(detail);
      },
    });
  }

  /**
   * After a verdict, the connection as the server has it now (its action may have become START_NEW_CONNECTION).
   * @param {object} detail
   */
  async #reread(detail) {
    const id = /** @type {{ connectionId: string }} */ (detail).connectionId;
    try {
      const current = await this.flow?.api.getConnection(id);
      if (current) this.connections = this.connections.map((c) => (c.connectionId === id ? current : c));
    } catch {
      return; // the step already says what happened
    }
    this.#render();
  }

  /**
   * @param {string} url
   * @param {string} title
   * @param {() => void} onDismiss
   */
  #openWidget(url, title, onDismiss) {
    const dialog = this.#dialog();
    const frame = /** @type {HTMLIFrameElement} */ (dialog.querySelector("iframe"));
    /** @type {HTMLElement} */ (dialog.querySelector("#dialog-title")).textContent = title;
    /** @type {HTMLElement} */ (dialog.querySelector("[data-close]")).textContent = this.words.close();
    frame.title = title;
    frame.src = url;
    let closedByFlow = false;
    const onClose = () => {
      dialog.removeEventListener("close", onClose);
      frame.src = "about:blank";
      if (!closedByFlow) onDismiss(); // Escape, or the close button: drawn again, with the button back
      if (this.returnFocus) this.#buttonOf(this.returnFocus)?.focus();
    };
    dialog.addEventListener("close", onClose);
    dialog.showModal();
    // Focus on the dialog, not in the widget: keys pressed inside a cross-origin frame never reach this page, so
    // Escape would not close it. Tab moves on to Close, then into the widget.
    dialog.focus();
    return {
      close: () => {
        closedByFlow = true;
        dialog.close();
      },
      isSource: (/** @type {unknown} */ source) => source === frame.contentWindow,
    };
  }

  /** @param {string} connectionId */
  #buttonOf(connectionId) {
    return /** @type {HTMLElement | null} */ (this.shadowRoot?.querySelector(`[data-connection="${CSS.escape(connectionId)}"]`));
  }

  #dialog() {
    return /** @type {HTMLDialogElement} */ (this.shadowRoot?.querySelector("dialog"));
  }

  /** @param {string} message */
  #announce(message) {
    const status = /** @type {HTMLElement} */ (this.shadowRoot?.querySelector('[part="status"]'));
    status.textContent = message;
  }

  #render() {
    const root = /** @type {ShadowRoot} */ (this.shadowRoot);
    const list = /** @type {HTMLElement} */ (root.querySelector("ul"));
    const empty = /** @type {HTMLElement} */ (root.querySelector('[part="empty"]'));
    const focused = root.activeElement?.getAttribute("data-connection");
    list.replaceChildren(...this.connections.map((connection) => this.#card(connection)));
    empty.hidden = this.connections.length > 0;
    empty.textContent = this.words.nothingToDo();
    if (focused) this.#buttonOf(focused)?.focus();
  }

  /** @param {ConnectionView} connection */
  #card(connection) {
    const bank = bankName(connection);
    const step = this.steps.get(connection.connectionId);
    const item = document.createElement("li");
    item.setAttribute("part", "item");
    item.dataset.action = connection.action;
    const title = document.createElement("h3");
    title.textContent = bank;
    const headline = document.createElement("p");
    headline.setAttribute("part", "headline");
    headline.textContent = this.words.headline(bank, connection);
    item.append(title, headline);
    if (step) {
      const said = document.createElement("p");
      said.setAttribute("part", `step step-${step.phase}`);
      said.textContent = step.message;
      item.append(said);
    }
    const button = this.#button(connection, step);
    if (button) item.append(button);
    return item;
  }

  /**
   * The one thing the customer can do next, if anything: the action's verb, "Link again" once only a new connection
   * helps, "Check again" while the verdict is late.
   * @param {ConnectionView} connection
   * @param {Step | undefined} step
   */
  #button(connection, step) {
    const bank = bankName(connection);
    const flow = /** @type {RepairFlow} */ (this.flow);
    const button = document.createElement("button");
    button.type = "button";
    button.setAttribute("part", "button");
    button.dataset.connection = connection.connectionId;
    if (step && step.next !== "retry" && step.next !== "new-link" && step.next !== "check-again") return null;
    if (step?.next === "check-again") {
      button.textContent = this.words.checkAgain(bank);
      button.onclick = () => void flow.checkAgain(connection);
      return button;
    }
    const action = step?.next === "new-link" ? "START_NEW_CONNECTION" : connection.action;
    const label = connection.institutionIncident ? null : this.words.button(bank, action);
    if (!label) return null;
    button.textContent = label;
    const wait = step?.retryAt ? step.retryAt - Date.now() : 0;
    if (wait > 0) {
      button.disabled = true; // Retry-After: the button comes back when the API said it would be worth it
      setTimeout(() => this.#render(), wait);
    }
    button.onclick = () => {
      // The button is gone while the widget is open; focus comes back to this connection's next one.
      this.returnFocus = connection.connectionId;
      void flow.begin({ ...connection, action });
    };
    return button;
  }
}

if (!customElements.get("reconnect-prompt")) customElements.define("reconnect-prompt", ReconnectPrompt);
