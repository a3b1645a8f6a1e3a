// What the prompt says. Every text names the bank; every button's accessible name starts with its verb.

/** @typedef {import("./api-types").ConnectionView} ConnectionView */
/** @typedef {import("./api-types").Action} Action */

/**
 * @typedef {object} Words
 * @property {(bank: string, connection: ConnectionView) => string} headline What the connection needs, in plain words
 * @property {(bank: string, action: Action) => string | null} button The button's label; null: nothing to press
 * @property {(bank: string) => string} opening
 * @property {(bank: string) => string} checking
 * @property {(bank: string) => string} reconnected
 * @property {(bank: string, reason: string | null) => string} failed
 * @property {(bank: string) => string} stillChecking
 * @property {(bank: string, seconds: number) => string} unavailable
 * @property {(bank: string) => string} alreadyWorking
 * @property {(bank: string) => string} cannotRepair
 * @property {(bank: string) => string} closed
 * @property {() => string} sessionExpired
 * @property {() => string} gone
 * @property {() => string} unexpected
 * @property {() => string} nothingToDo
 * @property {() => string} loadFailed
 * @property {(bank: string) => string} dialogTitle
 * @property {() => string} close
 * @property {(bank: string) => string} checkAgain
 */

/** @type {Record<string, string>} Meld's reasons a customer can act on, in their words */
const REASONS = {
  LOGIN_REQUIRED: "the bank needs you to sign in again",
  TOKEN_EXPIRED: "the bank's permission expired",
  REPAIRING_INSTITUTION: "the bank could not finish the sign-in",
  INSTITUTION_ACTION_REQUIRED: "the bank needs something from you on its own site first",
  CONTINUED_AGGREGATION_FAILURES: "the bank keeps refusing the connection",
  USER_CANCELLED: "the sign-in was cancelled",
};

/** @param {string | null} reason */
export function reasonInWords(reason) {
  if (!reason) return null;
  return REASONS[reason] ?? null;
}

/** @type {Words} */
export const ENGLISH = {
  headline(bank, connection) {
    if (connection.institutionIncident) {
      return `${bank} is having an outage. You don't need to do anything yet: we'll tell you if you do.`;
    }
    switch (connection.action) {
      case "REPAIR":
        return `${bank} needs you to sign in again to keep your accounts up to date.`;
      case "RENEW_ACCESS":
        return `Your permission to share ${bank} data ends soon. Renew it to keep your accounts up to date.`;
      case "ADD_ACCOUNTS":
        return `${bank} has accounts you haven't shared yet.`;
      case "START_NEW_CONNECTION":
        return `${bank} can't be reconnected. Link it again to keep your accounts up to date.`;
      case "WAIT":
        return `${bank} is having trouble on its side. Nothing to do yet.`;
      default:
        return `${bank} is connected.`;
    }
  },
  button(bank, action) {
    switch (action) {
      case "REPAIR":
        return `Reconnect ${bank}`;
      case "RENEW_ACCESS":
        return `Renew access to ${bank}`;
      case "ADD_ACCOUNTS":
        return `Add accounts from ${bank}`;
      case "START_NEW_CONNECTION":
        return `Link ${bank} again`;
      default:
        return null;
    }
  },
  opening: (bank) => `Opening ${bank}…`,
  checking: (bank) => `Checking with ${bank}…`,
  reconnected: (bank) => `Reconnected. ${bank} is up to date again.`,
  failed: (bank, reason) => `That didn't work${reason ? `: ${reason}` : ""}. You can try ${bank} again.`,
  stillChecking: (bank) => `${bank} hasn't confirmed yet. We'll let you know, or check again in a moment.`,
  unavailable: (bank, seconds) => `We can't reach ${bank} right now. Try again in ${seconds} seconds.`,
  alreadyWorking: (bank) => `${bank} is already working. Nothing to do.`,
  cannotRepair: (bank) => `${bank} can't be reconnected. Link it again instead.`,
  closed: (bank) => `You closed ${bank}'s sign-in. Nothing changed.`,
  sessionExpired: () => "Your session has ended. Sign in again to continue.",
  gone: () => "This connection is no longer available.",
  unexpected: () => "Something went wrong. Please try again.",
  nothingToDo: () => "Your bank connections are all working. Nothing to do.",
  loadFailed: () => "We couldn't load your bank connections. Please try again.",
  dialogTitle: (bank) => `Sign in to ${bank}`,
  close: () => "Close",
  checkAgain: (bank) => `Check ${bank} again`,
};

/** @param {ConnectionView} connection */
export function bankName(connection) {
  return connection.institutionName || "your bank";
}
