import assert from "node:assert/strict";
import { once } from "node:events";
import http2 from "node:http2";
import { after, before, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { RouterClient, v1 } from "../src/index.js";
import { failure } from "./helpers.js";

// A scripted server that records the requests it gets: the first call sends
// three events and then fails with UNAVAILABLE, as a dropped connection does;
// a later call (an attach, or a subscription from an offset) replays from one
// offset before the one asked for, a duplicate the real server never sends but
// the client must drop, and completes the generation. With `routeFailed` set,
// the first call ends as a failed route does instead. operations.test.ts runs
// the same paths against the real server.
const script: v1.StreamEvent["kind"][] = [
  { case: "started", value: create(v1.StartedSchema) },
  { case: "chunk", value: create(v1.ChunkSchema, { text: "Once" }) },
  { case: "chunk", value: create(v1.ChunkSchema, { text: " upon" }) },
  { case: "chunk", value: create(v1.ChunkSchema, { text: " a time" }) },
  { case: "completed", value: create(v1.CompletedSchema, { finishReason: v1.FinishReason.LENGTH }) },
];

const received: v1.GenerateRequest[] = [];
const adds: v1.SubscribeRequest[] = [];
/** How many attaches are refused with FAILED_PRECONDITION, as while the server still holds the lost call. */
let busy = 0;
/** The first call ends with UNAVAILABLE and a RouteFailure detail, as when every attempt of a route failed. */
let routeFailed = false;

/** The first three events then UNAVAILABLE, or, when resuming, all from one before `from`. */
function* replay(resuming: boolean, from: bigint) {
  const [first, end] = resuming ? [Number(from) - 1, script.length] : [0, 3];
  for (let offset = first; offset < end; offset++) {
    yield create(v1.StreamEventSchema, { streamId: "gen-1", offset: BigInt(offset), kind: script[offset] });
  }
  if (end < script.length) {
    throw new ConnectError("connection lost", Code.Unavailable);
  }
}

async function firstOf<T>(requests: AsyncIterable<T>): Promise<T> {
  for await (const request of requests) {
    return request;
  }
  throw new Error("no request");
}

async function* generate(requests: AsyncIterable<v1.GenerateRequest>) {
  const first = await firstOf(requests);
  received.push(first);
  const action = first.action;
  const attach = action.case === "attach";
  if (attach && busy > 0) {
    busy -= 1;
    throw new ConnectError("stream 'gen-1' is attached to another caller", Code.FailedPrecondition);
  }
  try {
    for (const event of replay(attach, attach ? action.value.fromOffset : 0n)) {
      yield { event };
    }
  } catch (error) {
    if (!routeFailed) {
      throw error;
    }
    const detail = { attempts: [{ attempt: 1, errorReason: "BACKEND_CONNECT" }] };
    throw new ConnectError("1 attempt failed", Code.Unavailable, undefined, [
      { desc: v1.RouteFailureSchema, value: detail },
    ]);
  }
}

async function* subscribe(requests: AsyncIterable<v1.SubscribeRequest>) {
  const first = await firstOf(requests);
  adds.push(first);
  const from = first.action.case === "add" ? first.action.value.fromOffset : 0n;
  for (const event of replay(adds.length > 1, from)) {
    yield { item: { case: "event" as const, value: event } };
  }
  yield { item: { case: "ended" as const, value: { streamId: "gen-1", nextOffset: BigInt(script.length) } } };
}

let server: http2.Http2Server;
let address: string;

before(async () => {
  const routes = (router: ConnectRouter) => router.service(v1.RouterService, { generate, subscribe });
  server = http2.createServer(connectNodeAdapter({ routes, grpc: true, connect: false, grpcWeb: false }));
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const bound = server.address();
  assert.ok(bound !== null && typeof bound !== "string");
  address = `127.0.0.1:${bound.port}`;
});

after(() => {
  server.close();
});

it("re-attaches from the next offset and drops replayed events", async () => {
  received.length = 0;
  const client = new RouterClient({ address, reconnect: { maxAttempts: 2, backoffMs: 1 } });

  const generation = client.generate({ prompt: "hi" });
  const offsets: bigint[] = [];
  for await (const event of generation) {
    offsets.push(event.offset);
  }
  client.close();

  assert.deepEqual(offsets, [0n, 1n, 2n, 3n, 4n]);
  assert.equal(generation.text, "Once upon a time");
  assert.equal(generation.completed?.finishReason, v1.FinishReason.LENGTH);
  assert.equal(received.length, 2);
  const start = received[0]?.action;
  assert.equal(start?.case, "start");
  assert.equal(start.value.onDisconnect?.action, v1.DisconnectAction.DETACH);
  const attach = received[1]?.action;
  assert.equal(attach?.case, "attach");
  assert.deepEqual([attach.value.streamId, attach.value.fromOffset], ["gen-1", 3n]);
});

it("fails with UNAVAILABLE when reconnecting is off", async () => {
  received.length = 0;
  const client = new RouterClient({ address });

  const generation = client.generate({ prompt: "hi" });
  const error = await generation.result().then(
    () => assert.fail("expected UNAVAILABLE"),
    (error: unknown) => error as ConnectError,
  );
  client.close();

  assert.equal(error.code, Code.Unavailable);
  assert.equal(generation.text, "Once upon");
  assert.equal(received.length, 1);
  assert.equal(received[0]?.action.case === "start" && received[0].action.value.onDisconnect, undefined);
});

it("resubscribes from the next offset and drops replayed events", async () => {
  const client = new RouterClient({ address, reconnect: { maxAttempts: 2, backoffMs: 1 } });

  const subscription = client.subscribe();
  subscription.add({ streamId: "gen-1" });
  const items: v1.SubscribeResponse["item"][] = [];
  for await (const response of subscription) {
    items.push(response.item);
  }
  client.close();

  assert.deepEqual(
    items.map((item) => (item.case === "event" ? item.value.offset : item.case)),
    [0n, 1n, 2n, 3n, 4n, "ended"],
  );
  assert.deepEqual(
    adds.map((add) => (add.action.case === "add" ? [add.action.value.streamId, add.action.value.fromOffset] : [])),
    [
      ["gen-1", 0n],
      ["gen-1", 3n],
    ],
  );
});

it("retries an attach the server refuses while it still holds the lost call", async () => {
  received.length = 0;
  busy = 2;
  const client = new RouterClient({ address, reconnect: { maxAttempts: 3, backoffMs: 1 } });

  const result = await client.generate({ prompt: "hi" }).result();
  client.close();

  assert.equal(result.text, "Once upon a time");
  assert.deepEqual(
    received.map((request) => request.action.case),
    ["start", "attach", "attach", "attach"],
  );
});

it("gives up after maxAttempts", async () => {
  received.length = 0;
  busy = 5;
  const client = new RouterClient({ address, reconnect: { maxAttempts: 2, backoffMs: 1 } });

  const error = await client
    .generate({ prompt: "hi" })
    .result()
    .then(
      () => assert.fail("expected FAILED_PRECONDITION"),
      (error: unknown) => error as ConnectError,
    );
  client.close();
  busy = 0;

  assert.equal(error.code, Code.FailedPrecondition);
  assert.equal(received.length, 3);
});

it("throws a failed route at once instead of re-attaching", async () => {
  received.length = 0;
  routeFailed = true;
  const client = new RouterClient({ address, reconnect: { maxAttempts: 2, backoffMs: 1 } });

  const error = await failure(client.generate({ prompt: "hi" }).result()).finally(() => {
    client.close();
    routeFailed = false;
  });

  assert.equal(error.code, Code.Unavailable);
  assert.deepEqual(
    error.attempts.map((attempt) => attempt.attempt),
    [1],
  );
  assert.equal(received.length, 1);
});
