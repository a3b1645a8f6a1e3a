import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { RepairApi, RepairApiError, retryAfterSeconds } from "../src/client.js";
import { connection, scriptedFetch, session } from "./support.js";

/** @param {ReturnType<typeof scriptedFetch>} fake */
function api(fake, token = "jwt-1") {
  return new RepairApi({
    baseUrl: "https://api.example.com/",
    getToken: async () => token,
    fetch: fake.fetch,
    newIdempotencyKey: () => "key-1",
  });
}

describe("RepairApi", () => {
  test("lists the caller's connections with the token from getToken, filtered as asked", async () => {
    const fake = scriptedFetch({ "GET /connections": [[200, { connections: [connection()] }]] });
    const listed = await api(fake).listConnections({ needsAction: true, include: ["deleted", "superseded"] });
    assert.deepEqual(listed, [connection()]);
    const [request] = fake.sent;
    assert.equal(request.url, "https://api.example.com/connections?needsAction=true&include=deleted%2Csuperseded");
    assert.equal(request.headers.Authorization, "Bearer jwt-1");
    assert.equal(request.headers["Idempotency-Key"], undefined);
  });

  test("lists without a query when nothing is asked", async () => {
    const fake = scriptedFetch({ "GET /connections": [[200, { connections: [] }]] });
    assert.deepEqual(await api(fake).listConnections(), []);
    assert.equal(fake.sent[0].url, "https://api.example.com/connections");
  });

  test("asks for a repair token with an Idempotency-Key, the same one when given", async () => {
    const fake = scriptedFetch({ "POST /connections/conn%201/repair": [[200, session("conn 1")]] });
    const client = api(fake);
    assert.deepEqual(await client.repair("conn 1"), session("conn 1"));
    await client.repair("conn 1", { idempotencyKey: "retry-key" });
    assert.deepEqual(
      fake.sent.map((sent) => [sent.method, sent.headers["Idempotency-Key"]]),
      [
        ["POST", "key-1"],
        ["POST", "retry-key"],
      ],
    );
  });

  test("starts a new connection replacing an old one", async () => {
    const fake = scriptedFetch({ "POST /connections": [[201, { ...session("conn-2"), replacesConnectionId: "conn-1" }]] });
    const started = await api(fake).startConnection({ replacesConnectionId: "conn-1" });
    assert.equal(started.replacesConnectionId, "conn-1");
    assert.deepEqual(fake.sent[0].body, { replacesConnectionId: "conn-1" });
    assert.equal(fake.sent[0].headers["Content-Type"], "application/json");
    assert.equal(fake.sent[0].headers["Idempotency-Key"], "key-1");
  });

  test("a 409 carries the server's code and what to do instead", async () => {
    const body = { code: "CONNECTION_NOT_REPAIRABLE", message: "start a new connection", status: "EXPIRED", action: "START_NEW_CONNECTION" };
    const fake = scriptedFetch({ "POST /connections/conn-1/repair": [[409, body]] });
    await assert.rejects(api(fake).repair("conn-1"), (error) => {
      assert.ok(error instanceof RepairApiError);
      assert.equal(error.status, 409);
      assert.equal(error.code, "CONNECTION_NOT_REPAIRABLE");
      assert.equal(error.action, "START_NEW_CONNECTION");
      assert.equal(error.message, "start a new connection");
      return true;
    });
  });

  test("a 503 carries Retry-After in seconds", async () => {
    const body = { code: "MELD_UNAVAILABLE", message: "Meld is unavailable" };
    const fake = scriptedFetch({ "POST /connections/conn-1/repair": [[503, body, { "Retry-After": "7" }]] });
    await assert.rejects(api(fake).repair("conn-1"), { status: 503, code: "MELD_UNAVAILABLE", retryAfter: 7 });
  });

  test("API Gateway's own 401 has no code: UNAUTHORIZED", async () => {
    const fake = scriptedFetch({ "GET /connections": [[401, { message: "Unauthorized" }]] });
    await assert.rejects(api(fake).listConnections(), { status: 401, code: "UNAUTHORIZED", retryAfter: null });
  });

  test("an unreachable API is a NETWORK_ERROR, not an exception of fetch's", async () => {
    const client = new RepairApi({
      baseUrl: "https://api.example.com",
      getToken: () => "jwt",
      fetch: async () => {
        throw new TypeError("Failed to fetch");
      },
    });
    await assert.rejects(client.getConnection("conn-1"), { status: 0, code: "NETWORK_ERROR" });
  });

  test("refuses to be built without a URL or a token source", () => {
    assert.throws(() => new RepairApi({ baseUrl: "", getToken: () => "jwt" }), TypeError);
    // @ts-expect-error: getToken is required
    assert.throws(() => new RepairApi({ baseUrl: "https://api.example.com" }), TypeError);
  });
});

describe("retryAfterSeconds", () => {
  test("reads seconds and HTTP dates, and nothing else", () => {
    const now = Date.parse("2026-12-01T12:00:00Z");
    assert.equal(retryAfterSeconds("12", now), 12);
    assert.equal(retryAfterSeconds("Tue, 01 Dec 2026 12:00:30 GMT", now), 30);
    assert.equal(retryAfterSeconds("Tue, 01 Dec 2026 11:00:00 GMT", now), 0);
    assert.equal(retryAfterSeconds("soon", now), null);
    assert.equal(retryAfterSeconds(null, now), null);
  });
});
