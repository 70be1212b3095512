/**
 * The WebSocket transport's frames, exactly, against a scripted gateway (the
 * `ws` package's server) that records what it gets and answers as the test
 * says. websocket.test.ts runs the same client against the real gateway.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { after, before, it } from "node:test";
import { type WebSocket, WebSocketServer } from "ws";
import { WebSocket as Client } from "ws";
import { Code, connect, type ConnectionState, type ConnectOptions, v1 } from "../src/index.js";
import { AsyncQueue } from "../src/queue.js";
import { failure, Reader } from "./helpers.js";
import { freePort } from "./server.js";

/** One socket the scripted gateway accepted: the frames it got, in order, and a way to answer. */
class Peer {
  readonly #queue = new AsyncQueue<Record<string, unknown>>();
  readonly frames = new Reader(this.#queue);

  constructor(
    readonly socket: WebSocket,
    readonly protocols: string[],
  ) {
    socket.on("message", (data: Buffer) => this.#queue.push(JSON.parse(data.toString()) as Record<string, unknown>));
    socket.on("close", () => this.#queue.close());
  }

  send(frame: unknown): void {
    this.socket.send(JSON.stringify(frame));
  }

  /** An event of generation "gen-1" as a response frame of call `id`. */
  event(id: unknown, offset: number, kind: Record<string, unknown>): void {
    this.send({ id, message: { event: { streamId: "gen-1", offset: String(offset), ...kind } } });
  }
}

let gateway: WebSocketServer;
let url: string;
const peers = new AsyncQueue<Peer>();
const accepted = new Reader(peers);

before(async () => {
  gateway = new WebSocketServer({ host: "127.0.0.1", port: 0, handleProtocols: () => "llmrouter.v1" });
  await once(gateway, "listening");
  url = `ws://127.0.0.1:${(gateway.address() as AddressInfo).port}/v1/ws`;
  gateway.on("connection", (socket, request) => {
    const offered = (request.headers["sec-websocket-protocol"] ?? "").split(",").map((name) => name.trim());
    peers.push(new Peer(socket, offered));
  });
});

after(() => {
  gateway.close();
});

function client(options: Partial<ConnectOptions> = {}) {
  return connect({ url, WebSocket: Client, pingIntervalMs: 0, ...options });
}

it("offers the key as a subprotocol and opens the socket on the first call only", async () => {
  // Its base64 has "+", "/" and padding, which base64url replaces and drops.
  const apiKey = "k>>?~~";
  const router = client({ apiKey });
  assert.equal(router.connection.state, "closed");

  const models = router.listModels();
  const peer = await accepted.next();
  const frame = await peer.frames.next();
  peer.send({ id: frame["id"], message: { routes: [{ name: "r", isDefault: true }] } });
  peer.send({ id: frame["id"], status: { code: 0 } });
  const routes = await models;
  router.close();

  assert.deepEqual(peer.protocols, ["llmrouter.v1", `llmrouter.bearer.${Buffer.from(apiKey).toString("base64url")}`]);
  assert.ok(!peer.protocols[1]?.includes("="));
  assert.deepEqual(frame, { id: "c1", method: "ListModels", message: {}, end: true });
  assert.deepEqual(
    routes.map((route) => [route.name, route.isDefault]),
    [["r", true]],
  );
});

it("sends a streaming call's requests, its end and its cancel as frames", async () => {
  const router = client();
  const generation = router.generate({ prompt: "hi", sampling: { maxTokens: 4 } });
  const events = new Reader(generation);
  const first = events.pending();
  const peer = await accepted.next();
  const start = await peer.frames.next();
  peer.event(start["id"], 0, { started: { route: "r" } });
  await first;
  generation.pause("wait");
  const pause = await peer.frames.next();
  const subscription = router.subscribe();
  subscription.closeSend();
  const items = new Reader(subscription).pending();
  const subscribe = await peer.frames.next();
  peer.send({ id: subscribe["id"], status: { code: 0 } });
  await items;
  generation.close();
  const cancel = await peer.frames.next();
  router.close();

  assert.deepEqual(start, { id: "c1", method: "Generate", message: { start: { prompt: "hi", sampling: { maxTokens: 4 } } } });
  assert.deepEqual(pause, { id: "c1", message: { pause: { reason: "wait" } } });
  assert.deepEqual(subscribe, { id: "c2", method: "Subscribe", end: true });
  assert.deepEqual(cancel, { id: "c1", cancel: true });
});

it("turns a status into a RouterError with the details decoded", async () => {
  const router = client();
  const result = router.generate({ prompt: "hi" }).result();
  const peer = await accepted.next();
  const start = await peer.frames.next();
  const details = [
    { "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: "ROUTE_FAILED", domain: "llmrouter.v1", metadata: { attempts: "1" } },
    { "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: "1.500s" },
    {
      "@type": "type.googleapis.com/llmrouter.v1.RouteFailure",
      attempts: [{ attempt: 1, backend: "b", errorReason: "BACKEND_CONNECT", httpStatus: 0 }],
    },
    { "@type": "type.googleapis.com/example.Unknown", value: 1 },
  ];
  peer.send({ id: start["id"], status: { code: 14, message: "1 attempt failed", details } });
  const error = await failure(result);
  router.close();

  assert.deepEqual([error.code, error.rawMessage], [Code.Unavailable, "1 attempt failed"]);
  assert.deepEqual([error.reason, error.errorInfo?.metadata], ["ROUTE_FAILED", { attempts: "1" }]);
  assert.equal(error.retryDelayMs, 1500);
  assert.deepEqual(
    error.attempts.map((attempt) => [attempt.attempt, attempt.backend, attempt.errorReason]),
    [[1, "b", "BACKEND_CONNECT"]],
  );
  // The detail of an unknown type is left out; the three known ones stay.
  assert.equal(error.details.length, 3);
});

it("sends steering given while the socket is down after the re-attach, again after a refused one", async () => {
  const router = client({ reconnect: { maxAttempts: 5, backoffMs: 1 }, backoffMs: 1 });
  const generation = router.generate({ prompt: "hi", flow: { mode: v1.FlowMode.CREDIT, initialCredits: 2 } });
  const events = new Reader(generation);
  const read = [events.pending(), events.pending()];
  const lost = new Promise<void>((resolve) => {
    generation.onLost = () => {
      generation.onLost = undefined;
      generation.pause("a");
      generation.grant(5);
      generation.resume();
      generation.cancel("c");
      resolve();
    };
  });
  const first = await accepted.next();
  const start = await first.frames.next();
  first.event(start["id"], 0, { started: {} });
  first.event(start["id"], 1, { chunk: { text: "Once" } });
  await Promise.all(read);
  // Reading on: the generation notices the loss as it reads.
  const rest = events.rest();
  first.socket.terminate();
  await lost;

  // The gateway has not seen the old call go yet: it refuses the attach.
  const second = await accepted.next();
  const refused = [await second.frames.next(), await second.frames.next(), await second.frames.next(), await second.frames.next()];
  second.send({ id: refused[0]?.["id"], status: { code: 9, message: "stream 'gen-1' is attached to another caller" } });
  const retried = [await second.frames.next(), await second.frames.next(), await second.frames.next(), await second.frames.next()];
  second.event(retried[0]?.["id"], 2, { completed: { finishReason: "FINISH_REASON_CANCELLED", cancelReason: "c" } });
  second.send({ id: retried[0]?.["id"], status: { code: 0 } });
  const after = await rest;
  router.close();

  assert.deepEqual(start["message"], {
    start: {
      prompt: "hi",
      flow: { mode: "FLOW_MODE_CREDIT", initialCredits: 2 },
      onDisconnect: { action: "DISCONNECT_ACTION_DETACH", detachTtl: "30s" },
    },
  });
  const attach = { attach: { streamId: "gen-1", fromOffset: "2", flow: { mode: "FLOW_MODE_CREDIT", initialCredits: 5 } } };
  const steering = [{ pause: { reason: "a" } }, { resume: {} }, { cancel: { reason: "c" } }];
  for (const [call, frames] of [
    ["c2", refused],
    ["c3", retried],
  ] as const) {
    assert.deepEqual(frames, [
      { id: call, method: "Generate", message: attach },
      ...steering.map((message) => ({ id: call, message })),
    ]);
  }
  assert.deepEqual(
    after.map((event) => [event.offset, event.kind.case]),
    [[2n, "completed"]],
  );
});

it("fails a call with UNAVAILABLE when no socket opens, and opens one by itself once it can", async () => {
  const port = await freePort();
  const router = connect({ url: `ws://127.0.0.1:${port}/v1/ws`, WebSocket: Client, backoffMs: 5, maxBackoffMs: 50 });
  const states: ConnectionState[] = [];
  router.connection.onChange((state) => states.push(state));

  const error = await failure(router.listModels());
  const back = new WebSocketServer({ host: "127.0.0.1", port, handleProtocols: () => "llmrouter.v1" });
  await once(back, "listening");
  const opened = new Promise<void>((resolve) => router.connection.onChange((state) => state === "open" && resolve()));
  await opened;
  router.close();
  back.close();

  assert.equal(error.code, Code.Unavailable);
  assert.match(error.rawMessage, /the WebSocket could not be opened/);
  assert.deepEqual(states, ["connecting", "reconnecting", "open", "closed"]);
});
