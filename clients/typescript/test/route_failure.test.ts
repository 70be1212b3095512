import assert from "node:assert/strict";
import { once } from "node:events";
import http2 from "node:http2";
import { after, before, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import type { ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { Code, RouterClient, v1 } from "../src/index.js";
import { failure, later, Reader } from "./helpers.js";
import { freePort, type RunningServer, startServer } from "./server.js";

// One route, "down", whose only target is an OpenAI-compatible backend on a
// loopback port nobody listens on: every attempt fails to connect.
const downConfig = (port: number) => `
backends:
  down: {kind: openai, base_url: "http://127.0.0.1:${port}/v1", api_key_env: null}
routes:
  down:
    targets: [{backend: down, model: m}]
    max_attempts: 2
    retry: {initial_backoff_seconds: 0.01, max_backoff_seconds: 0.02}
default_route: down
`;

// A scripted server that streams "Once", falls back with RESTART, then
// streams "Twice" and completes.
const restartScript: v1.StreamEvent["kind"][] = [
  { case: "started", value: create(v1.StartedSchema) },
  { case: "chunk", value: create(v1.ChunkSchema, { text: "Once" }) },
  { case: "attemptFailed", value: create(v1.AttemptFailedSchema, { attempt: 1, willRetry: true }) },
  {
    case: "fallbackUsed",
    value: create(v1.FallbackUsedSchema, { action: v1.MidStreamAction.RESTART, toTarget: 1 }),
  },
  { case: "chunk", value: create(v1.ChunkSchema, { text: "Twice" }) },
  { case: "completed", value: create(v1.CompletedSchema, { finishReason: v1.FinishReason.STOP }) },
];

async function* generate(requests: AsyncIterable<v1.GenerateRequest>) {
  for await (const _ of requests) {
    break;
  }
  for (const [offset, kind] of restartScript.entries()) {
    yield { event: create(v1.StreamEventSchema, { streamId: "gen-1", offset: BigInt(offset), kind }) };
  }
}

let down: RunningServer;
let scripted: http2.Http2Server;
let scriptedAddress: string;

before(async () => {
  down = await startServer({ config: downConfig(await freePort()) });
  const routes = (router: ConnectRouter) => router.service(v1.RouterService, { generate });
  scripted = http2.createServer(connectNodeAdapter({ routes, grpc: true, connect: false, grpcWeb: false }));
  scripted.listen(0, "127.0.0.1");
  await once(scripted, "listening");
  const bound = scripted.address();
  assert.ok(bound !== null && typeof bound !== "string");
  scriptedAddress = `127.0.0.1:${bound.port}`;
});

after(async () => {
  scripted.close();
  await down.stop();
});

it("fails a route out of attempts with every attempt", async () => {
  const client = new RouterClient({ address: down.address });

  const generation = client.generate({ prompt: "hi", model: "down" });
  const events: v1.StreamEvent[] = [];
  const error = await failure(
    (async () => {
      for await (const event of generation) {
        events.push(event);
      }
    })(),
  );
  client.close();

  assert.deepEqual(
    events.map((event) => event.kind.case),
    ["started", "attemptFailed", "fallbackUsed", "attemptFailed"],
  );
  assert.equal(error.code, Code.Unavailable);
  assert.equal(error.reason, "BACKEND_CONNECT");
  assert.equal(error.errorInfo?.metadata["attempts"], "2");
  assert.ok(error.routeFailure !== undefined);
  assert.deepEqual(
    error.attempts.map((a) => [a.attempt, a.errorReason, a.willRetry, a.backend, a.model, a.target, a.httpStatus]),
    [
      [1, "BACKEND_CONNECT", true, "down", "m", 0, 0],
      [2, "BACKEND_CONNECT", false, "down", "m", 0, 0],
    ],
  );
  const fallback = events[2]?.kind;
  assert.equal(fallback?.case, "fallbackUsed");
  assert.deepEqual([fallback.value.fromBackend, fallback.value.backend], ["down", "down"]);
});

it("keeps the failure of a call read after the server has ended it", async () => {
  const client = new RouterClient({ address: down.address });
  const reader = new Reader(client.generate({ prompt: "hi", model: "down" }));
  const started = await reader.next();
  while ((await client.getStream(started.streamId)).status?.state !== v1.StreamState.FAILED) {
    await later(10);
  }
  await later(100);

  const error = await failure(reader.rest());
  client.close();

  assert.equal(error.code, Code.Unavailable);
  assert.match(error.rawMessage, /^route 'down'/);
  assert.ok(error.attempts.length > 0);
});

it("drops the text before a RESTART fallback", async () => {
  const client = new RouterClient({ address: scriptedAddress });

  const generation = client.generate({ prompt: "hi" });
  const events = await new Reader(generation).rest();
  const result = await client.generate({ prompt: "hi" }).result();
  const chat = client.chat();
  const reply = await chat.ask("hi");
  client.close();

  assert.deepEqual(
    events.map((event) => event.kind.case),
    ["started", "chunk", "attemptFailed", "fallbackUsed", "chunk", "completed"],
  );
  assert.deepEqual([generation.text, result.text, reply], ["Twice", "Twice", "Twice"]);
  assert.deepEqual(
    chat.messages.map((message) => message.content),
    ["hi", "Twice"],
  );
});
