import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code, RouterClient, v1 } from "../src/index.js";
import { collect, consecutive, credit, failure, greedy, later, offsets, PROMPT, Reader, referenceText } from "./helpers.js";
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

  it("ends normally when read after the server has finished the call", async () => {
    const generation = client.generate({ prompt: PROMPT, sampling: { maxTokens: 4, temperature: 0 } });
    const reader = new Reader(generation);
    const started = await reader.next();
    while ((await client.getStream(started.streamId)).status?.state !== v1.StreamState.COMPLETED) {
      await later(10);
    }
    await later(100);

    const rest = await reader.rest();

    assert.equal(rest.at(-1)?.kind.case, "completed");
    assert.deepEqual(offsets([started, ...rest]), consecutive(rest.length + 1));
    assert.equal((await generation.result()).completed.finishReason, v1.FinishReason.LENGTH);
  });

  it("ends with CANCELLED after cancel()", async () => {
    const generation = client.generate({ prompt: "Write a long story about the sea.", sampling: { maxTokens: 256 } });

    for await (const event of generation) {
      if (event.kind.case === "chunk") {
        generation.cancel("enough");
      }
    }

    assert.equal(generation.completed?.finishReason, v1.FinishReason.CANCELLED);
    assert.equal(generation.completed.cancelledBy, v1.CancelledBy.CALLER);
    assert.equal(generation.completed.cancelReason, "enough");
    assert.ok((generation.completed.usage?.completionTokens ?? 256) < 256);
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

  it("gets the stats report of every route", async () => {
    const report = await client.getStats();

    assert.equal(report.window?.seconds, 300n);
    assert.deepEqual(
      report.perModel.map((row) => row.model),
      ["smollm2-135m-instruct"],
    );
    assert.equal(report.total?.model, "");
  });

  it("surfaces NOT_FOUND from getStats for an unknown model", async () => {
    const error = await failure(client.getStats("gpt-17"));

    assert.equal(error.code, Code.NotFound);
    assert.equal(error.errorInfo?.domain, "llmrouter.v1");
  });
});

describe("flow", () => {
  it("marks a pause and a resume in the stream and loses nothing", async () => {
    const want = await referenceText(client, greedy(32));
    // Two credits (started, then the first chunk) hold the generation a few
    // events ahead, so the pause surely arrives while it runs.
    const generation = client.generate(greedy(32, { flow: credit(2) }));
    const reader = new Reader(generation);
    const events = [await reader.next(), await reader.next()];

    generation.pause("stepped away");
    generation.grant(1000);
    while (events.at(-1)?.kind.case !== "paused") {
      events.push(await reader.next());
    }
    generation.resume();
    events.push(...(await reader.rest()));

    const kinds = events.map((event) => event.kind.case);
    const paused = events[kinds.indexOf("paused")]?.kind;
    assert.equal(paused?.case === "paused" && paused.value.reason, "stepped away");
    assert.ok(kinds.indexOf("resumed") > kinds.indexOf("paused"));
    assert.deepEqual(offsets(events), consecutive(events.length));
    assert.equal(generation.text, want);
    assert.equal(generation.completed?.usage?.completionTokens, 32);
  });

  it("reports a steering request the server cannot apply and goes on", async () => {
    const want = await referenceText(client, greedy(8));
    const generation = client.generate(greedy(8, { flow: credit(2) }));
    const reader = new Reader(generation);
    const events = [await reader.next(), await reader.next()];

    generation.resume(); // not paused: refused, nothing changes
    generation.grant(1000);
    events.push(...(await reader.rest()));

    assert.deepEqual(
      generation.rejected.map((error) => error.code),
      [Code.FailedPrecondition],
    );
    assert.match(generation.rejected[0]?.message ?? "", /not paused/);
    assert.deepEqual(offsets(events), consecutive(events.length));
    assert.equal(generation.text, want);
  });

  it("never sends more events than granted", async () => {
    const generation = client.generate(greedy(16, { flow: credit(2) }));
    const reader = new Reader(generation);
    const events = [await reader.next(), await reader.next()];
    // The server has produced more than it may send...
    while (((await client.getStream(generation.streamId)).status?.nextOffset ?? 0n) <= 3n) {
      await later(10);
    }
    // ... and sends none of it until the next grant.
    const next = reader.pending();
    assert.equal(await Promise.race([next, later(300)]), undefined, "an event arrived with no credit left");

    generation.grant(3);
    const granted = await next;
    assert.ok(granted.done !== true);
    events.push(granted.value, await reader.next(), await reader.next());
    assert.deepEqual(offsets(events), consecutive(5));
    generation.grant(1000);
    events.push(...(await reader.rest()));

    assert.deepEqual(offsets(events), consecutive(events.length));
    assert.equal(generation.completed?.usage?.completionTokens, 16);
  });

  it("attaches to a finished generation from an offset", async () => {
    const live = await collect(client.generate(greedy(8)));

    const generation = client.attach({ streamId: live[0]?.streamId ?? "", fromOffset: 3n });
    const replayed = await collect(generation);

    assert.deepEqual(replayed, live.slice(3));
    assert.equal(generation.completed?.finishReason, v1.FinishReason.LENGTH);
  });

  it("fails an attach to an unknown stream with NOT_FOUND", async () => {
    const error = await failure(client.attach({ streamId: "no-such-stream" }).result());

    assert.equal(error.code, Code.NotFound);
    assert.equal(error.reason, "NOT_FOUND");
    assert.equal(error.streamId, "no-such-stream");
  });
});
