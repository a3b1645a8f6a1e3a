import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { RepairApi } from "../src/client.js";
import { POLL_DELAYS, RepairFlow, judge } from "../src/flow.js";
import { ENGLISH } from "../src/words.js";
import { WIDGET_ORIGIN, connection, fakeWidget, scriptedFetch, session } from "./support.js";

const NOW = Date.parse("2026-12-01T12:00:00Z");

/**
 * A flow on a scripted API, a fake widget and a clock that sleeping advances.
 * @param {Record<string, Array<[number, unknown, Record<string, string>?]>>} script
 */
function setUp(script) {
  const fake = scriptedFetch(script);
  let keys = 0;
  const api = new RepairApi({
    baseUrl: "https://api.example.com",
    getToken: () => "jwt",
    fetch: fake.fetch,
    newIdempotencyKey: () => `key-${++keys}`,
  });
  const widget = fakeWidget();
  /** @type {Array<[string, import("../src/flow.js").Step]>} */
  const steps = [];
  /** @type {Array<[string, object]>} */
  const events = [];
  /** @type {number[]} */
  const slept = [];
  const clock = { now: NOW };
  const flow = new RepairFlow({
    api,
    widget: widget.opener,
    onStep: (id, step) => steps.push([id, step]),
    onEvent: (type, detail) => events.push([type, detail]),
    now: () => clock.now,
    sleep: async (ms) => {
      slept.push(ms);
      clock.now += ms;
    },
  });
  /** The widget's window posts a message, as Meld's widget does. */
  const post = (/** @type {object} */ data, origin = WIDGET_ORIGIN, source = widget.opened.at(-1)?.window) =>
    flow.receive({ origin, data: { domain: "meld-connect", ...data }, source });
  const phases = () => steps.map(([, step]) => step.phase);
  const last = () => /** @type {import("../src/flow.js").Step} */ (steps.at(-1)?.[1]);
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  return { flow, fake, widget, steps, events, slept, clock, post, phases, last, settle };
}

const COMPLETE = { eventName: "connect_complete", institutionId: "inst-chase", institutionName: "Chase", accountCount: 1, accounts: [] };

describe("a repair", () => {
  for (const [action, status, reason] of [
    ["REPAIR", "RECONNECT_REQUIRED", "LOGIN_REQUIRED"],
    ["RENEW_ACCESS", "ACTIVE", "ACCESS_EXPIRING_SOON"],
    ["ADD_ACCOUNTS", "ACTIVE", "NEW_ACCOUNTS_AVAILABLE"],
  ]) {
    test(`${action}: a token, the widget, connect_complete, then the server's ACTIVE is "Reconnected"`, async () => {
      const before = connection({ action: /** @type {any} */ (action), status, statusReason: reason });
      const t = setUp({
        "POST /connections/conn-1/repair": [[200, session("conn-1")]],
        "GET /connections/conn-1": [
          [200, { ...before, repairPending: true }],
          [200, { ...before, status: "ACTIVE", statusReason: null, action: "NONE", repairPending: false }],
        ],
      });
      await t.flow.begin(before);
      assert.deepEqual(t.widget.opened.map((w) => [w.url, w.title]), [[session("conn-1").widgetUrl, "Sign in to Chase"]]);
      assert.equal(t.fake.sent[0].headers["Idempotency-Key"], "key-1");
      assert.deepEqual(t.phases(), ["opening", "in-widget"]);

      t.post(COMPLETE);
      await t.settle();
      assert.equal(t.widget.opened[0].closed, true);
      assert.deepEqual(t.phases(), ["opening", "in-widget", "checking", "reconnected"]);
      assert.equal(t.steps[2][1].message, "Checking with Chase…");
      assert.match(t.last().message, /^Reconnected/);
      assert.deepEqual(t.events, [["connection-repaired", { connectionId: "conn-1" }]]);
      // Polled with backoff: pending first, then the verdict.
      assert.deepEqual(t.slept, [POLL_DELAYS[0] * 1000, POLL_DELAYS[1] * 1000]);
    });
  }

  test("the widget closing is not the repair: nothing is said repaired until the server says so", async () => {
    const t = setUp({
      "POST /connections/conn-1/repair": [[200, session("conn-1")]],
      "GET /connections/conn-1": [[200, connection({ repairPending: true })]],
    });
    await t.flow.begin(connection());
    t.post(COMPLETE);
    await t.settle();
    assert.equal(t.last().phase, "still-checking");
    assert.equal(t.last().next, "check-again");
    assert.ok(!t.phases().includes("reconnected"));
    assert.deepEqual(t.events, []);
    // Bounded: one poll per delay, then it stops.
    assert.equal(t.fake.sent.filter((sent) => sent.method === "GET").length, POLL_DELAYS.length);

    t.fake.sent.length = 0;
    const fixed = scriptedFetch({ "GET /connections/conn-1": [[200, connection({ status: "ACTIVE", statusReason: null, action: "NONE" })]] });
    t.flow.api.fetch = fixed.fetch;
    await t.flow.checkAgain(connection());
    assert.equal(t.last().phase, "reconnected");
  });

  test("a repair Meld judged failed is \"That didn't work\", with a way to try again", async () => {
    const t = setUp({
      "POST /connections/conn-1/repair": [[200, session("conn-1")]],
      "GET /connections/conn-1": [[200, connection({ failedRepairs: 1, statusReason: "TOKEN_EXPIRED" })]],
    });
    await t.flow.begin(connection());
    t.post(COMPLETE);
    await t.settle();
    assert.equal(t.last().phase, "failed");
    assert.equal(t.last().next, "retry");
    assert.equal(t.last().message, "That didn't work: the bank's permission expired. You can try Chase again.");
    assert.deepEqual(t.events, [["connection-repair-failed", { connectionId: "conn-1", reason: "TOKEN_EXPIRED" }]]);
  });

  test("repeated failures turn into \"Link again\"", async () => {
    const t = setUp({
      "POST /connections/conn-1/repair": [[200, session("conn-1")]],
      "GET /connections/conn-1": [[200, connection({ failedRepairs: 3, action: "START_NEW_CONNECTION" })]],
    });
    await t.flow.begin(connection({ failedRepairs: 2 }));
    t.post(COMPLETE);
    await t.settle();
    assert.deepEqual([t.last().phase, t.last().next], ["failed", "new-link"]);
  });

  test("Meld's error event shows Meld's reason and ends the attempt", async () => {
    const t = setUp({ "POST /connections/conn-1/repair": [[200, session("conn-1")]] });
    await t.flow.begin(connection());
    t.post({ eventName: "error", reason: "REPAIRING_INSTITUTION", details: "provider failed" });
    assert.equal(t.widget.opened[0].closed, true);
    assert.equal(t.last().message, "That didn't work: the bank could not finish the sign-in. You can try Chase again.");
    assert.deepEqual(t.events, [["connection-repair-failed", { connectionId: "conn-1", reason: "REPAIRING_INSTITUTION" }]]);
    // An unknown reason is shown as Meld gave it.
    await t.flow.begin(connection());
    t.post({ eventName: "error", reason: "SOMETHING_NEW" });
    assert.match(t.last().message, /SOMETHING_NEW/);
  });

  test("messages from another origin, another window or without Meld's domain are ignored", async () => {
    const t = setUp({ "POST /connections/conn-1/repair": [[200, session("conn-1")]] });
    await t.flow.begin(connection());
    t.post(COMPLETE, "https://evil.example");
    t.post(COMPLETE, WIDGET_ORIGIN, { name: "another window" });
    t.flow.receive({ origin: WIDGET_ORIGIN, data: { ...COMPLETE, domain: "other" }, source: t.widget.opened[0].window });
    t.flow.receive({ origin: WIDGET_ORIGIN, data: "connect_complete", source: t.widget.opened[0].window });
    t.flow.receive({ origin: WIDGET_ORIGIN, data: null, source: t.widget.opened[0].window });
    t.post({ eventName: "init" });
    await t.settle();
    assert.deepEqual(t.phases(), ["opening", "in-widget"]);
    assert.equal(t.widget.opened[0].closed, false);
  });

  test("closing the widget changes nothing; the unused token is used again while it has time left", async () => {
    const t = setUp({ "POST /connections/conn-1/repair": [[200, session("conn-1", "2026-12-01T12:30:00Z")]] });
    await t.flow.begin(connection());
    t.widget.opened[0].dismiss();
    assert.deepEqual([t.last().phase, t.last().next], ["closed", "retry"]);
    await t.flow.begin(connection());
    assert.equal(t.fake.sent.length, 1);
    assert.equal(t.widget.opened.length, 2);
  });

  test("a token past (or within minutes of) expiresAt is never used: a new one is asked for", async () => {
    const t = setUp({
      "POST /connections/conn-1/repair": [
        [200, session("conn-1", "2026-12-01T12:30:00Z")],
        [200, { ...session("conn-1", "2026-12-01T15:00:00Z"), connectToken: "fresh", widgetUrl: `${WIDGET_ORIGIN}/?connectToken=fresh` }],
      ],
    });
    await t.flow.begin(connection());
    t.widget.opened[0].dismiss();
    t.clock.now = Date.parse("2026-12-01T12:26:00Z");
    await t.flow.begin(connection());
    assert.equal(t.fake.sent.length, 2);
    assert.notEqual(t.fake.sent[0].headers["Idempotency-Key"], t.fake.sent[1].headers["Idempotency-Key"]);
    assert.equal(t.widget.opened[1].url, `${WIDGET_ORIGIN}/?connectToken=fresh`);
  });

  test("a used token is not used again", async () => {
    const t = setUp({
      "POST /connections/conn-1/repair": [[200, session("conn-1")]],
      "GET /connections/conn-1": [[200, connection({ failedRepairs: 1 })]],
    });
    await t.flow.begin(connection());
    t.post(COMPLETE);
    await t.settle();
    await t.flow.begin(connection({ failedRepairs: 1 }));
    assert.equal(t.fake.sent.filter((sent) => sent.method === "POST").length, 2);
  });
});

describe("what the API refuses", () => {
  test("409: a connection Meld cannot repair offers \"Link again\"", async () => {
    const body = { code: "CONNECTION_NOT_REPAIRABLE", message: "m", status: "EXPIRED", action: "START_NEW_CONNECTION" };
    const t = setUp({ "POST /connections/conn-1/repair": [[409, body]] });
    await t.flow.begin(connection());
    assert.deepEqual([t.last().phase, t.last().next], ["failed", "new-link"]);
    assert.equal(t.last().message, "Chase can't be reconnected. Link it again instead.");
    assert.equal(t.widget.opened.length, 0);
  });

  test("409: a connection that works again needs nothing", async () => {
    const body = { code: "NOTHING_TO_REPAIR", message: "m", status: "ACTIVE", action: "NONE" };
    const t = setUp({ "POST /connections/conn-1/repair": [[409, body]] });
    await t.flow.begin(connection());
    assert.deepEqual([t.last().phase, t.last().next], ["nothing-to-do", null]);
  });

  test("409 REQUEST_IN_PROGRESS: waits Retry-After and asks again with the same key", async () => {
    const busy = { code: "REQUEST_IN_PROGRESS", message: "m", status: null, action: "WAIT" };
    const t = setUp({ "POST /connections/conn-1/repair": [[409, busy, { "Retry-After": "2" }], [200, session("conn-1")]] });
    await t.flow.begin(connection());
    assert.deepEqual(t.slept, [2000]);
    assert.deepEqual(t.fake.sent.map((sent) => sent.headers["Idempotency-Key"]), ["key-1", "key-1"]);
    assert.equal(t.last().phase, "in-widget");
  });

  test("503 with Retry-After: clear words, and the next try not before it", async () => {
    const t = setUp({ "POST /connections/conn-1/repair": [[503, { code: "MELD_UNAVAILABLE", message: "m" }, { "Retry-After": "7" }]] });
    await t.flow.begin(connection());
    assert.deepEqual(t.last(), {
      phase: "unavailable",
      message: "We can't reach Chase right now. Try again in 7 seconds.",
      next: "retry",
      retryAt: NOW + 7000,
    });
  });

  test("401: the session has ended; the app is told", async () => {
    const t = setUp({ "POST /connections/conn-1/repair": [[401, { message: "Unauthorized" }]] });
    await t.flow.begin(connection());
    assert.deepEqual([t.last().phase, t.last().next], ["error", "sign-in"]);
    assert.deepEqual(t.events, [["session-expired", { connectionId: "conn-1" }]]);
  });

  test("404: the connection is gone, nothing to press", async () => {
    const t = setUp({ "POST /connections/conn-1/repair": [[404, { code: "CONNECTION_NOT_FOUND", message: "m" }]] });
    await t.flow.begin(connection());
    assert.deepEqual([t.last().phase, t.last().next], ["error", null]);
  });

  test("a poll that fails for a moment does not end the wait", async () => {
    const t = setUp({
      "POST /connections/conn-1/repair": [[200, session("conn-1")]],
      "GET /connections/conn-1": [
        [503, { code: "STORE_BUSY", message: "m" }, { "Retry-After": "1" }],
        [200, connection({ status: "ACTIVE", statusReason: null, action: "NONE" })],
      ],
    });
    await t.flow.begin(connection());
    t.post(COMPLETE);
    await t.settle();
    assert.equal(t.last().phase, "reconnected");
  });
});

describe("linking again", () => {
  test("START_NEW_CONNECTION: a new connection replacing the old, and its own ACTIVE is the verdict", async () => {
    const old = connection({ action: "START_NEW_CONNECTION", status: "EXPIRED", statusReason: null });
    const fresh = connection({ connectionId: "conn-2", status: "IN_PROGRESS", statusReason: null, action: "NONE" });
    const t = setUp({
      "POST /connections": [[201, { ...session("conn-2"), replacesConnectionId: "conn-1" }]],
      "GET /connections/conn-2": [[200, fresh], [200, { ...fresh, status: "ACTIVE" }]],
    });
    await t.flow.begin(old);
    assert.deepEqual(t.fake.sent[0].body, { replacesConnectionId: "conn-1", institutionId: "inst-chase" });
    assert.ok(t.fake.sent[0].headers["Idempotency-Key"]);
    t.post(COMPLETE);
    await t.settle();
    assert.equal(t.last().phase, "reconnected");
    assert.deepEqual(t.events, [["connection-repaired", { connectionId: "conn-1", newConnectionId: "conn-2" }]]);
  });

  test("without a known institution the customer picks the bank in the widget", async () => {
    const old = connection({ action: "START_NEW_CONNECTION", status: "EXPIRED", statusReason: null, institutionId: null });
    const t = setUp({ "POST /connections": [[201, { ...session("conn-2"), replacesConnectionId: "conn-1" }]] });
    await t.flow.begin(old);
    assert.deepEqual(t.fake.sent[0].body, { replacesConnectionId: "conn-1" });
  });
});

describe("judge", () => {
  test("pending while Meld has not judged; the server's state decides", () => {
    const before = connection();
    assert.equal(judge(before, connection({ repairPending: true }), false), "pending");
    assert.equal(judge(before, connection({ status: "ACTIVE", statusReason: null, action: "NONE" }), false), "repaired");
    assert.equal(judge(before, connection({ status: "PARTIALLY_ACTIVE", statusReason: null, action: "NONE" }), false), "repaired");
    assert.equal(judge(before, connection({ failedRepairs: 1 }), false), "failed");
    assert.equal(judge(before, connection(), false), "pending");
    const fresh = connection({ status: "IN_PROGRESS", action: "NONE" });
    assert.equal(judge(before, fresh, true), "pending");
    assert.equal(judge(before, { ...fresh, status: "EXPIRED", action: "START_NEW_CONNECTION" }, true), "failed");
  });
});

describe("words", () => {
  test("each action in plain words; every button starts with its verb and names the bank", () => {
    assert.equal(ENGLISH.button("Chase", "REPAIR"), "Reconnect Chase");
    assert.equal(ENGLISH.button("Chase", "RENEW_ACCESS"), "Renew access to Chase");
    assert.equal(ENGLISH.button("Chase", "ADD_ACCOUNTS"), "Add accounts from Chase");
    assert.equal(ENGLISH.button("Chase", "START_NEW_CONNECTION"), "Link Chase again");
    assert.equal(ENGLISH.button("Chase", "WAIT"), null);
    assert.equal(ENGLISH.button("Chase", "NONE"), null);
    assert.match(ENGLISH.headline("Chase", connection({ action: "WAIT" })), /Nothing to do yet/);
    const incident = { since: "2026-12-01T10:00:00Z", holdUntil: "2026-12-01T16:00:00Z", trigger: /** @type {const} */ ("SURGE") };
    assert.match(ENGLISH.headline("Chase", connection({ institutionIncident: incident })), /outage/);
  });
});
