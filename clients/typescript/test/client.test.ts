import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code, RouterClient, RouterError, v1 } from "../src/index.js";
import { type RunningServer, startServer } from "./server.js";

const PROMPT = "Write a story about a lighthouse keeper.";

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

/** Collects the error a promise rejects with. */
async function failure(promise: Promise<unknown>): Promise<RouterError> {
  const error = await promise.then(
    () => assert.fail("expected the call to fail"),
    (error: unknown) => error,
  );
  assert.ok(error instanceof RouterError, `${String(error)} is not a RouterError`);
  return error;
}

describe("generate", () => {
  it("streams chunks in offset order and completes with LENGTH", async () => {
    const generation = client.generate({ prompt: PROMPT, sampling: { maxTokens: 8, temperature: 0 } });

    const events: v1.StreamEvent[] = [];
    for await (const event of generation) {
      events.push(event);
    }

    assert.equal(events[0]?.kind.case, "started");
    assert.deepEqual(
      events.map((event) => event.offset),
      events.map((_, index) => BigInt(index)),
    );
    assert.ok(events.every((event) => event.streamId === generation.streamId && event.streamId !== ""));
    const chunks = events.flatMap((event) => (event.kind.case === "chunk" ? [event.kind.value.text] : []));
    assert.ok(generation.text.length > 0);
    assert.equal(generation.text, chunks.join(""));
    const last = events.at(-1)?.kind;
    assert.equal(last?.case, "completed");
    assert.equal(last.value.finishReason, v1.FinishReason.LENGTH);
    assert.equal(last.value.usage?.completionTokens, 8);
  });

  it("yields the text of each chunk and the result", async () => {
    const generation = client.generate({ prompt: PROMPT, sampling: { maxTokens: 6, temperature: 0 } });

    const chunks: string[] = [];
    for await (const text of generation.chunks()) {
      chunks.push(text);
    }

    assert.ok(chunks.length > 0);
    assert.equal(chunks.join(""), generation.text);
    assert.equal(generation.completed?.finishReason, v1.FinishReason.LENGTH);
  });

  it("ends with CANCELLED after cancel()", async () => {
    const generation = client.generate({ prompt: "Write a long story about the sea.", sampling: { maxTokens: 256 } });

    for await (const event of generation) {
      if (event.kind.case === "chunk") {
        generation.cancel("enough");
      }
    }

    assert.equal(generation.completed?.finishReason, v1.FinishReason.CANCELLED);
    assert.ok((generation.completed?.usage?.completionTokens ?? 256) < 256);
  });

  it("fails with NOT_FOUND naming start.model for an unknown model", async () => {
    const error = await failure(client.generate({ prompt: "hi", model: "gpt-17" }).result());

    assert.equal(error.code, Code.NotFound);
    assert.equal(error.codeName, "NOT_FOUND");
    assert.equal(error.field, "start.model");
    assert.equal(error.reason, "NOT_FOUND");
    assert.equal(error.errorInfo?.domain, "llmrouter.v1");
    assert.match(error.rawMessage, /unknown model 'gpt-17'/);
  });

  it("fails with INVALID_ARGUMENT and a field violation for max_tokens 0", async () => {
    const error = await failure(client.generate({ prompt: "hi", sampling: { maxTokens: 0 } }).result());

    assert.equal(error.code, Code.InvalidArgument);
    assert.deepEqual(
      error.badRequest?.fieldViolations.map((violation) => violation.field),
      ["start.sampling.max_tokens"],
    );
    assert.equal(error.field, "start.sampling.max_tokens");
    assert.equal(error.retryDelayMs, 0);
  });
});

describe("chat", () => {
  it("keeps the history and the stop sequences", async () => {
    const chat = client.chat({ system: "You are a terse assistant.", stop: ["."], sampling: { maxTokens: 8, temperature: 0 } });

    const first = await chat.ask("Name a colour.");
    const second = await chat.ask("Name another one.");

    assert.ok(first.length > 0 && second.length > 0);
    assert.ok(!(first + second).includes("."));
    assert.deepEqual(chat.messages, [
      { role: v1.ChatRole.SYSTEM, content: "You are a terse assistant." },
      { role: v1.ChatRole.USER, content: "Name a colour." },
      { role: v1.ChatRole.ASSISTANT, content: first },
      { role: v1.ChatRole.USER, content: "Name another one." },
      { role: v1.ChatRole.ASSISTANT, content: second },
    ]);
  });

  it("leaves the history unchanged when a reply fails", async () => {
    const chat = client.chat({ model: "gpt-17" });

    await failure(chat.ask("Hello?"));

    assert.deepEqual(chat.messages, []);
  });
});

describe("lookups and operator calls", () => {
  it("lists the default route", async () => {
    const routes = await client.listModels();

    assert.deepEqual(
      routes.map((route) => [route.name, route.isDefault]),
      [["smollm2-135m-instruct", true]],
    );
  });

  // Servers without Subscribe and Control answer UNIMPLEMENTED; the client
  // must surface that as a RouterError.
  it("surfaces UNIMPLEMENTED from subscribe", async () => {
    const subscription = client.subscribe();
    subscription.add({ streamId: "gen-unknown" });

    const error = await failure(
      (async () => {
        for await (const _ of subscription) {
          // No item is expected.
        }
      })(),
    );

    assert.equal(error.code, Code.Unimplemented);
    assert.equal(error.errorInfo?.domain, "llmrouter.v1");
  });

  it("surfaces UNIMPLEMENTED from control", async () => {
    const control = client.control();

    const error = await failure(control.status("gen-unknown"));

    assert.equal(error.code, Code.Unimplemented);
    assert.equal(control.error?.code, Code.Unimplemented);
    for await (const _ of control.changes()) {
      assert.fail("no change is expected");
    }
  });
});
