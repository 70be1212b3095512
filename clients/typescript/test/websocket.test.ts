import assert from "node:assert/strict";
import { createHash, randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { WebSocket } from "ws";
import {
  type BaseClient,
  Code,
  connect,
  type Connection,
  type ConnectionState,
  type ConnectOptions,
  type Generation,
  RouterClient,
  RouterError,
  v1,
  type WebSocketClient,
} from "../src/index.js";
import { collect, consecutive, credit, eventsOf, failure, followsARunningGeneration, greedy, later, offsets, Reader, resubscribesAcrossADrop, stateChanges, subscribeAll } from "./helpers.js";
import { Proxy } from "./proxy.js";
import { freePort, type RunningServer, startServer } from "./server.js";

// One server with its gateway, an API key, the embedded model and a route
// ("down") whose only backend is a closed loopback port. Each test runs the
// same thing over gRPC and over the WebSocket and compares.
const KEY = `ws-test-${randomUUID()}`;
const config = (downPort: number) => `
backends:
  embedded: {kind: embedded}
  down: {kind: openai, base_url: "http://127.0.0.1:${downPort}/v1", api_key_env: null}
routes:
  smollm2-135m-instruct:
    targets: [{backend: embedded, model: smollm2-135m-instruct}]
  down:
    targets: [{backend: down, model: m}]
    max_attempts: 2
    retry: {initial_backoff_seconds: 0.01, max_backoff_seconds: 0.02}
default_route: smollm2-135m-instruct
auth:
  api_keys:
    - {id: test, sha256: ${createHash("sha256").update(KEY).digest("hex")}, tenant: test, role: admin}
`;

let server: RunningServer;
let grpc: RouterClient;
let ws: WebSocketClient;

/** A WebSocket client of the test server; `ws` (the package) stands in for the browser's WebSocket. */
function wsClient(options: Partial<ConnectOptions> = {}): WebSocketClient {
  return connect({ url: server.wsUrl, apiKey: KEY, WebSocket, ...options });
}

before(async () => {
  server = await startServer({ config: config(await freePort()), gateway: true });
  grpc = new RouterClient({ address: server.address, apiKey: KEY });
  ws = wsClient();
});

after(async () => {
  grpc.close();
  ws.close();
  await server.stop();
});

/** What a promise settles to: its value, or the failure's code and message. */
async function outcome<T>(promise: Promise<T>): Promise<T | { code: Code; message: string }> {
  try {
    return await promise;
  } catch (error) {
    const failed = RouterError.from(error);
    return { code: failed.code, message: failed.rawMessage };
  }
}

/** An event without the fields that differ between two runs of one request (ids, times, durations). */
function comparable(event: v1.StreamEvent): unknown {
  const kind = event.kind;
  const value = kind.case === "chunk" ? kind.value.text : kind.case === "completed" ? [kind.value.finishReason, kind.value.usage] : "";
  return [event.offset, kind.case, value];
}

describe("over the WebSocket gateway", () => {
  it("streams the same events as gRPC for the same request", async () => {
    const overGrpc = await collect(grpc.generate(greedy(12)));
    const overWs = await collect(ws.generate(greedy(12)));

    assert.deepEqual(overWs.map(comparable), overGrpc.map(comparable));
    assert.deepEqual(offsets(overWs), consecutive(overWs.length));
    assert.equal(overWs.at(-1)?.kind.case, "completed");
    assert.equal(ws.connection.state, "open");
  });
});

describe("steering over the WebSocket gateway", () => {
  it("pauses, resumes and cancels a generation, and reports a refused resume", async () => {
    const generation = ws.generate(greedy(64, { flow: credit(2) }));
    const reader = new Reader(generation);
    const events = [await reader.next(), await reader.next()];
    generation.resume(); // not paused: refused in-band, the call goes on
    generation.pause("hold on");
    generation.grant(1000);
    while (events.at(-1)?.kind.case !== "paused") {
      events.push(await reader.next());
    }
    generation.resume();
    while (events.at(-1)?.kind.case !== "resumed") {
      events.push(await reader.next());
    }
    generation.cancel("enough");
    events.push(...(await reader.rest()));

    assert.deepEqual(offsets(events), consecutive(events.length));
    const paused = events.find((event) => event.kind.case === "paused");
    assert.equal(paused?.kind.case === "paused" && paused.kind.value.reason, "hold on");
    const end = events.at(-1);
    assert.equal(end?.kind.case, "completed");
    assert.equal(end.kind.value.finishReason, v1.FinishReason.CANCELLED);
    assert.equal(end.kind.value.cancelledBy, v1.CancelledBy.CALLER);
    assert.equal(end.kind.value.cancelReason, "enough");
    assert.deepEqual(
      generation.rejected.map((error) => error.code),
      [Code.FailedPrecondition],
    );
  });

  it("sends no more events than granted in CREDIT flow", async () => {
    const generation = ws.generate(greedy(32, { flow: credit(3) }));
    const reader = new Reader(generation);
    const first = [await reader.next(), await reader.next(), await reader.next()];
    generation.grant(2);
    const granted = [await reader.next(), await reader.next()];
    // The server runs a few events ahead of the credits; once it has, a cancel
    // (which needs no credit) brings the completed event at once, after none
    // of the events held back.
    while (((await ws.getStream(generation.streamId)).status?.nextOffset ?? 0n) < 7n) {
      await later(10);
    }
    generation.cancel("out of credits");
    const rest = await reader.rest();

    assert.deepEqual(offsets([...first, ...granted]), consecutive(5));
    assert.equal(rest.length, 1);
    const end = rest[0];
    assert.equal(end?.kind.case, "completed");
    assert.equal(end.kind.value.cancelReason, "out of credits");
    assert.ok(end.offset >= 7n, `the completed event has offset ${end.offset}`);
    const replayed = eventsOf(await subscribeAll(ws, generation.streamId));
    assert.deepEqual(offsets(replayed), consecutive(Number(end.offset) + 1));
  });
});

describe("operations over the WebSocket gateway", () => {
  it("follows a running generation by subscription", async () => {
    await followsARunningGeneration(ws);
  });

  it("steps and watches a generation by id, and answers a refused command in-band", async () => {
    const control = ws.control();
    const streamId = `operated-${randomUUID()}`;
    await control.watch();
    const nextState = stateChanges(control, streamId);
    const owner = ws.generate(greedy(32, { flow: credit(1), streamId }));
    const ownerReader = new Reader(owner);
    await ownerReader.next();
    assert.deepEqual([await nextState(), await nextState()], [v1.StreamState.QUEUED, v1.StreamState.RUNNING]);

    assert.equal((await control.pause(streamId, "ops"))?.state, v1.StreamState.PAUSED);
    assert.equal((await control.resume(streamId))?.state, v1.StreamState.RUNNING);
    assert.equal((await control.cancel(streamId, "enough"))?.state, v1.StreamState.CANCELLED);
    assert.deepEqual(
      [await nextState(), await nextState(), await nextState()],
      [v1.StreamState.PAUSED, v1.StreamState.RUNNING, v1.StreamState.CANCELLED],
    );
    const unknown = await failure(control.status("no-such-stream"));
    control.close();
    const rest = await ownerReader.rest();

    const end = rest.at(-1);
    assert.equal(end?.kind.case === "completed" && end.kind.value.cancelledBy, v1.CancelledBy.OPERATOR);
    assert.equal(unknown.code, Code.NotFound);
    assert.deepEqual([unknown.reason, unknown.streamId, unknown.errorInfo?.domain], ["NOT_FOUND", "no-such-stream", "llmrouter.v1"]);
  });

  it("keeps a chat's history and replies as over gRPC", async () => {
    const options = { system: "You are terse.", sampling: { maxTokens: 8, temperature: 0 } };
    const overGrpc = grpc.chat(options);
    const overWs = ws.chat(options);
    for (const text of ["Name a colour.", "Name another."]) {
      assert.equal(await overWs.ask(text), await overGrpc.ask(text));
    }

    assert.equal(overWs.messages.length, 5);
    assert.deepEqual(overWs.messages, overGrpc.messages);
  });

  it("answers the unary calls as gRPC does", async () => {
    const finished = (await collect(ws.generate(greedy(2))))[0]?.streamId ?? "";

    assert.deepEqual(await ws.listModels(), await grpc.listModels());
    assert.deepEqual(await outcome(ws.getStream(finished, 2)), await outcome(grpc.getStream(finished, 2)));
    assert.deepEqual(await outcome(ws.getStream("no-such-stream")), await outcome(grpc.getStream("no-such-stream")));
    const routes = (stats: v1.GetStatsResponse) => stats.perModel.map((report) => report.model);
    assert.deepEqual(routes(await ws.getStats()), routes(await grpc.getStats()));
    const page = await ws.listStreams({ pageSize: 1 });
    assert.equal(page.streams.length, 1);
  });
});

describe("errors over the WebSocket gateway", () => {
  it("fails an unknown route with gRPC's code and details", async () => {
    const overGrpc = await failure(grpc.generate({ prompt: "hi", model: "no-such-route" }).result());
    const overWs = await failure(ws.generate({ prompt: "hi", model: "no-such-route" }).result());

    assert.equal(overWs.code, Code.NotFound);
    assert.deepEqual(
      [overWs.code, overWs.rawMessage, overWs.reason, overWs.field, overWs.errorInfo?.metadata],
      [overGrpc.code, overGrpc.rawMessage, overGrpc.reason, overGrpc.field, overGrpc.errorInfo?.metadata],
    );
  });

  it("fails an invalid request with its BadRequest", async () => {
    const start = { prompt: "hi", sampling: { temperature: -1 } };
    const overGrpc = await failure(grpc.generate(start).result());
    const overWs = await failure(ws.generate(start).result());

    assert.equal(overWs.code, Code.InvalidArgument);
    assert.ok(overWs.badRequest !== undefined && overWs.badRequest.fieldViolations.length > 0);
    assert.deepEqual(overWs.badRequest, overGrpc.badRequest);
    assert.deepEqual([overWs.rawMessage, overWs.field], [overGrpc.rawMessage, overGrpc.field]);
  });

  it("fails a route whose attempts all failed with its RouteFailure", async () => {
    const overGrpc = await failure(grpc.generate({ prompt: "hi", model: "down" }).result());
    const overWs = await failure(ws.generate({ prompt: "hi", model: "down" }).result());

    assert.equal(overWs.code, Code.Unavailable);
    assert.deepEqual(
      overWs.attempts.map((attempt) => [attempt.attempt, attempt.backend, attempt.errorReason]),
      [
        [1, "down", "BACKEND_CONNECT"],
        [2, "down", "BACKEND_CONNECT"],
      ],
    );
    assert.deepEqual(
      overWs.attempts.map((attempt) => attempt.errorReason),
      overGrpc.attempts.map((attempt) => attempt.errorReason),
    );
  });

  it("refuses a client without a key, and one with a wrong key, as UNAUTHENTICATED", async () => {
    // Without a key the socket opens and the gateway closes it (4401) at the
    // first frame; a wrong key is refused at the upgrade (HTTP 401).
    const cases = [
      { apiKey: undefined, states: ["connecting", "open", "closed"] },
      { apiKey: "not-the-key", states: ["connecting", "closed"] },
    ];
    for (const { apiKey, states: expected } of cases) {
      const client = connect({ url: server.wsUrl, apiKey, WebSocket });
      const states: string[] = [];
      client.connection.onChange((state) => states.push(state));
      const error = await failure(client.listModels());
      client.close();

      assert.equal(error.code, Code.Unauthenticated, `apiKey ${apiKey}: ${error.message}`);
      assert.deepEqual(states, expected, `apiKey ${apiKey}`);
    }
  });
});

/** Resolves when the connection reaches `state`. */
function reaches(connection: Connection, state: ConnectionState): Promise<void> {
  return new Promise((resolve) => {
    const stop = connection.onChange((now) => {
      if (now === state) {
        stop();
        resolve();
      }
    });
  });
}

// These reach the gateway through a proxy that drops (or stalls) every
// connection mid-stream; the client must come back by itself, deliver each
// event exactly once and send the steering it was given meanwhile.
describe("reconnecting", () => {
  const reconnect = { maxAttempts: 5, backoffMs: 50 };

  /**
   * Drops the connection under a generation held by its credits; `steer`
   * registers what pauses it and grants more credits once its call is down.
   */
  async function dropMidStream(
    through: BaseClient,
    proxy: Proxy,
    steer: (generation: Generation, whileDown: () => void) => void,
  ): Promise<void> {
    const want = (await grpc.generate(greedy(32)).result()).text;
    const generation = through.generate(greedy(32, { flow: credit(2) }));
    const reader = new Reader(generation);
    const events = [await reader.next(), await reader.next()];
    let steered = false;
    steer(generation, () => {
      generation.pause("while down");
      generation.grant(1000);
      steered = true;
    });

    proxy.drop();
    while (events.at(-1)?.kind.case !== "paused") {
      events.push(await reader.next());
    }
    generation.resume();
    events.push(...(await reader.rest()));
    through.close();
    proxy.stop();

    assert.ok(steered);
    assert.deepEqual(offsets(events), consecutive(events.length));
    assert.equal(generation.text, want);
    assert.equal(generation.completed?.usage?.completionTokens, 32);
    const kinds = events.map((event) => event.kind.case);
    assert.deepEqual([kinds.filter((kind) => kind === "paused").length, kinds.filter((kind) => kind === "resumed").length], [1, 1]);
    const paused = events.find((event) => event.kind.case === "paused");
    assert.equal(paused?.kind.case === "paused" && paused.kind.value.reason, "while down");
    assert.ok(proxy.connections >= 2, `the proxy saw ${proxy.connections} connections`);
  }

  it("re-attaches a generation after the socket drops, then sends the steering given meanwhile", async () => {
    const proxy = await new Proxy(server.gatewayAddress).start();
    const through = connect({ url: `ws://${proxy.address}/v1/ws`, apiKey: KEY, WebSocket, reconnect, backoffMs: 20 });
    await dropMidStream(through, proxy, (generation, whileDown) => {
      // The calls on a lost socket have failed by the time it says so.
      const stop = through.connection.onChange((state) => {
        if (state === "reconnecting") {
          stop();
          whileDown();
        }
      });
      assert.ok(generation.streamId !== "");
    });
  });

  it("re-attaches a gRPC generation the same way", async () => {
    const proxy = await new Proxy(server.address).start();
    const through = new RouterClient({ address: proxy.address, apiKey: KEY, reconnect });
    await dropMidStream(through, proxy, (generation, whileDown) => {
      generation.onLost = (error, attempt) => {
        assert.deepEqual([error.code, attempt], [Code.Unavailable, 1]);
        generation.onLost = undefined;
        whileDown();
      };
    });
  });

  it("resubscribes after the socket drops", async () => {
    const proxy = await new Proxy(server.gatewayAddress).start();
    const through = connect({ url: `ws://${proxy.address}/v1/ws`, apiKey: KEY, WebSocket, reconnect, backoffMs: 20 });
    await resubscribesAcrossADrop(ws, through, proxy, 2);
  });

  it("counts a server that answers no ping as lost, and opens a new socket", async () => {
    const proxy = await new Proxy(server.gatewayAddress).start();
    const url = `ws://${proxy.address}/v1/ws`;
    const through = connect({ url, apiKey: KEY, WebSocket, backoffMs: 20, pingIntervalMs: 100, pingTimeoutMs: 1000 });
    const control = through.control();
    await control.list();
    const reopened = reaches(through.connection, "reconnecting").then(() => reaches(through.connection, "open"));

    proxy.stall();
    const error = await failure(control.list());
    await reopened;
    const models = await through.listModels();
    through.close();
    proxy.stop();

    assert.equal(error.code, Code.Unavailable);
    assert.match(error.rawMessage, /did not answer a ping within 1000 ms/);
    assert.deepEqual(models, await grpc.listModels());
    assert.equal(through.connection.state, "closed");
  });

  it("fails the calls in flight with CANCELED when the client closes", async () => {
    const client = wsClient();
    const subscription = client.subscribe();
    const items = new Reader(subscription).pending();
    await client.listModels();

    client.close();

    const error = await failure(items);
    assert.equal(error.code, Code.Canceled);
    assert.equal(client.connection.state, "closed");
    assert.equal((await failure(client.listModels())).code, Code.Canceled);
  });
});
