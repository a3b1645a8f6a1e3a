// Types of the package's entry point (the sources are typed with JSDoc and checked by `npm run typecheck`).
export * from "./api-types";
export { RepairApi, RepairApiError, retryAfterSeconds } from "./client.js";
export type { RepairApiOptions, ListOptions } from "./client.js";
export { RepairFlow, judge, POLL_DELAYS, TOKEN_MARGIN_MS } from "./flow.js";
export type { Step, Phase, WidgetHandle, WidgetOpener, WidgetMessage, RepairFlowOptions } from "./flow.js";
export { ENGLISH, bankName, reasonInWords } from "./words.js";
export type { Words } from "./words.js";
export type { ReconnectPrompt } from "./element.js";

declare global {
  interface HTMLElementTagNameMap {
    "reconnect-prompt": import("./element.js").ReconnectPrompt;
  }
}
