import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { Code, RouterClient, RouterError, v1 } from "../src/index.js";
import {
  collect,
  consecutive,
  credit,
  eventsOf,
  failure,
  followsARunningGeneration,
  greedy,
  offsets,
  Reader,
  referenceText,
  resubscribesAcrossADrop,
  stateChanges,
  subscribeAll,
} from "./helpers.js";
import { Proxy } from "./proxy.js";
import { type RunningServer, startServer } from "./server.js";

let server: RunningServer;
let client: RouterClient;

before(async () => {
  server = await startServer();
  client = new RouterClient({ address: server.address });
});

after(async () => {
  client.close();
  await server.stop();
});

describe("subscribe", () => {
  it("replays a finished generation as it was streamed", async () => {
    const live = await collect(client.generate(greedy(8)));

    const items = await subscribeAll(client, live[0]?.streamId ?? "");

    const [added, ended] = [items[0]?.item, items.at(-1)?.item];
    assert.equal(added?.case, "added");
    assert.equal(added.value.state, v1.StreamState.COMPLETED);
    assert.deepEqual(eventsOf(items), live);
    assert.equal(ended?.case, "ended");
    assert.equal(ended.value.nextOffset, BigInt(live.length));
    assert.equal(RouterError.fromEnded(ended.value), undefined);
  });

  it("follows a running generation live", async () => {
    // One credit: the owner gets `started` and the generation waits a few
    // events ahead until it grants more.
    await followsARunningGeneration(client);
  });

  it("ends only the subscription to an unknown stream, with NOT_FOUND", async () => {
    const live = await collect(client.generate(greedy(4)));

    const items = await subscribeAll(client, "no-such-stream", live[0]?.streamId ?? "");

    const first = items[0]?.item;
    assert.equal(first?.case, "ended");
    assert.equal(first.value.streamId, "no-such-stream");
    const error = RouterError.fromEnded(first.value);
    assert.equal(error?.code, Code.NotFound);
    assert.match(error.rawMessage, /stream 'no-such-stream' not found/);
    assert.deepEqual([error.reason, error.streamId], ["NOT_FOUND", "no-such-stream"]);
    assert.deepEqual(eventsOf(items), live);
  });
});

describe("control", () => {
  it("steps and watches a generation by id", async () => {
    const control = client.control();
    const streamId = `operated-${randomUUID()}`;
    await control.watch();
    const nextState = stateChanges(control, streamId);
    const owner = client.generate(greedy(32, { flow: credit(1), streamId }));
    const ownerReader = new Reader(owner);
    const events = [await ownerReader.next()];
    assert.deepEqual([await nextState(), await nextState()], [v1.StreamState.QUEUED, v1.StreamState.RUNNING]);

    assert.equal((await control.status(streamId))?.state, v1.StreamState.RUNNING);
    const running = await control.list(v1.StreamState.RUNNING);
    assert.ok(running.some((status) => status.streamId === streamId));
    assert.equal((await control.pause(streamId, "ops"))?.state, v1.StreamState.PAUSED);
    assert.equal((await control.resume(streamId))?.state, v1.StreamState.RUNNING);
    const cancelled = await control.cancel(streamId, "enough");
    assert.equal(cancelled?.state, v1.StreamState.CANCELLED);
    assert.deepEqual(
      [await nextState(), await nextState(), await nextState()],
      [v1.StreamState.PAUSED, v1.StreamState.RUNNING, v1.StreamState.CANCELLED],
    );
    control.close();

    // The owner is out of credits: it skips to the completed event, which ends its call.
    events.push(...(await ownerReader.rest()));
    assert.deepEqual(
      events.map((event) => event.kind.case),
      ["started", "completed"],
    );
    const end = events[1];
    assert.equal(end?.kind.case, "completed");
    assert.equal(end.kind.value.finishReason, v1.FinishReason.CANCELLED);
    assert.equal(end.kind.value.cancelledBy, v1.CancelledBy.OPERATOR);
    assert.equal(end.kind.value.cancelReason, "enough");
    assert.equal(end.offset, (cancelled?.nextOffset ?? 0n) - 1n);
    // What it skipped stays in the log: the pause and the resume, in offset order.
    const replayed = eventsOf(await subscribeAll(client, streamId));
    assert.deepEqual(offsets(replayed), consecutive(Number(cancelled?.nextOffset)));
    const kinds = replayed.map((event) => event.kind.case);
    assert.ok(kinds.indexOf("paused") > 0 && kinds.indexOf("resumed") > kinds.indexOf("paused"));
    assert.deepEqual(replayed.at(-1), end);
  });

  it("answers a failed command in-band and stays open", async () => {
    const control = client.control();
    const finished = (await collect(client.generate(greedy(2))))[0]?.streamId ?? "";

    const unknown = await failure(control.status("no-such-stream"));
    const late = await failure(control.pause(finished, "too late"));
    const watchUnknown = await failure(control.watch("no-such-stream"));
    const status = await control.status(finished);
    control.close();

    assert.equal(unknown.code, Code.NotFound);
    assert.match(unknown.rawMessage, /stream 'no-such-stream' not found/);
    assert.deepEqual([unknown.reason, unknown.streamId], ["NOT_FOUND", "no-such-stream"]);
    assert.equal(unknown.errorInfo?.domain, "llmrouter.v1");
    assert.equal(late.code, Code.FailedPrecondition);
    assert.match(late.rawMessage, /it has completed/);
    assert.deepEqual([late.reason, late.streamId], ["FAILED_PRECONDITION", finished]);
    assert.equal(watchUnknown.code, Code.NotFound);
    assert.equal(watchUnknown.reason, "NOT_FOUND");
    assert.equal(status?.state, v1.StreamState.COMPLETED);
  });
});

// These reach the server through a proxy that drops every connection
// mid-stream; the client must come back by itself and deliver each event
// exactly once.
describe("reconnect", () => {
  const reconnect = { maxAttempts: 5, backoffMs: 50 };

  it("re-attaches a generation after the connection drops", async () => {
    const want = await referenceText(client, greedy(32));
    const proxy = await new Proxy(server.address).start();
    const through = new RouterClient({ address: proxy.address, reconnect });
    // Two credits hold the generation a few events ahead until it is paused,
    // so it is surely mid-stream when the connection drops; the credits left
    // carry over to the re-attached call.
    const generation = through.generate(greedy(32, { flow: credit(2) }));
    const reader = new Reader(generation);
    const events = [await reader.next(), await reader.next()];
    generation.pause("about to drop");
    generation.grant(1000);
    while (events.at(-1)?.kind.case !== "paused") {
      events.push(await reader.next());
    }

    proxy.drop();
    const control = client.control();
    await control.resume(generation.streamId);
    control.close();
    events.push(...(await reader.rest()));
    through.close();
    proxy.stop();

    assert.deepEqual(offsets(events), consecutive(events.length));
    assert.equal(generation.text, want);
    assert.equal(generation.completed?.usage?.completionTokens, 32);
    assert.ok(proxy.connections >= 2, `the proxy saw ${proxy.connections} connections`);
  });

  it("resubscribes after the connection drops", async () => {
    const proxy = await new Proxy(server.address).start();
    await resubscribesAcrossADrop(client, new RouterClient({ address: proxy.address, reconnect }), proxy, 3);
  });
});
