/**
 * How each event changes a generation's state.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { v1 } from "@llmrouter/client";
import { applyError, applyEvent, type GenerationState, idle } from "../src/state.js";

const starting: GenerationState = { ...idle, status: "streaming" };
let offset = 0n;
const event = (kind: MessageInitShape<typeof v1.StreamEventSchema>["kind"]) =>
  create(v1.StreamEventSchema, { streamId: "s1", offset: offset++, kind });
const run = (...events: v1.StreamEvent[]) => events.reduce(applyEvent, starting);
const chunk = (text: string, completionTokens: number) =>
  event({ case: "chunk", value: { text, progress: { completionTokens, maxTokens: 10, fraction: completionTokens / 10, tokensPerSecond: 5 } } });
const completed = (finishReason: v1.FinishReason) => event({ case: "completed", value: { finishReason } });

test("chunks add text and progress; the started event gives the budget", () => {
  offset = 0n;
  const started = run(event({ case: "started", value: { model: "m", maxTokens: 10 } }));
  assert.deepEqual(started.progress, { completionTokens: 0, maxTokens: 10, fraction: 0, tokensPerSecond: 0 });
  assert.equal(started.model, "m");
  const state = [chunk("Hel", 1), chunk("lo", 2)].reduce(applyEvent, started);
  assert.equal(state.text, "Hello");
  assert.deepEqual(state.progress, { completionTokens: 2, maxTokens: 10, fraction: 0.2, tokensPerSecond: 5 });
  assert.equal(state.streamId, "s1");
  assert.equal(state.nextOffset, 3n);
  assert.equal(state.status, "streaming");
});

test("paused and resumed events set the status; the text stays", () => {
  offset = 0n;
  const paused = run(chunk("a", 1), event({ case: "paused", value: { reason: "" } }));
  assert.equal(paused.status, "paused");
  assert.equal(paused.text, "a");
  const resumed = applyEvent(paused, event({ case: "resumed", value: {} }));
  assert.equal(resumed.status, "streaming");
  assert.equal(resumed.text, "a");
});

test("the completed event ends it as done, or cancelled when it was", () => {
  offset = 0n;
  const done = run(chunk("a", 1), completed(v1.FinishReason.STOP));
  assert.equal(done.status, "done");
  assert.equal(done.finishReason, v1.FinishReason.STOP);
  assert.equal(run(completed(v1.FinishReason.LENGTH)).status, "done");
  const cancelled = run(chunk("a", 1), completed(v1.FinishReason.CANCELLED));
  assert.equal(cancelled.status, "cancelled");
  assert.equal(cancelled.text, "a");
});

test("a restart on another model starts the text again", () => {
  offset = 0n;
  const restarted = run(chunk("abc", 1), event({ case: "fallbackUsed", value: { toModel: "b", action: v1.MidStreamAction.RESTART } }));
  assert.equal(restarted.text, "");
  assert.equal(restarted.model, "b");
  const continued = run(chunk("abc", 1), event({ case: "fallbackUsed", value: { toModel: "b", action: v1.MidStreamAction.CONTINUE } }));
  assert.equal(continued.text, "abc");
});

test("an error keeps the text and records the error", () => {
  offset = 0n;
  const failed = applyError(run(chunk("a", 1)), new Error("gone"));
  assert.equal(failed.status, "error");
  assert.equal(failed.error?.message, "gone");
  assert.equal(failed.text, "a");
  assert.equal(applyError(starting, "text").error?.message, "text");
});
