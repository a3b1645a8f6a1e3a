// The reconnect prompt: a client for the Repair API, the repair flow, and the <reconnect-prompt> element.
// Importing this module defines the element (in a browser); the client and the flow work anywhere.

export { RepairApi, RepairApiError, retryAfterSeconds } from "./client.js";
export { RepairFlow, judge, POLL_DELAYS, TOKEN_MARGIN_MS } from "./flow.js";
export { ENGLISH, bankName, reasonInWords } from "./words.js";

if (typeof customElements !== "undefined") await import("./element.js");
