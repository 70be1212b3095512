/**
 * Cancel has one meaning, whoever cancels: a generation in CREDIT flow whose
 * caller took its 3 events and has no credits left keeps running a few events
 * ahead (the server's window is 4). Cancelled by its caller or by an operator,
 * the caller's iteration ends normally within a second with one completed
 * event (CANCELLED, who, why), skipping the events it had no credit for; a
 * subscriber out of credits gets the same event and its subscription ends
 * normally.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type Generation, RouterClient, RouterError, v1 } from "../src/index.js";
import { consecutive, credit, eventsOf, later, offsets, Reader } from "./helpers.js";
import { type RunningServer, startServer } from "./server.js";

const LONG_PROMPT = "Write a long story about a lighthouse keeper who talks to the sea every night.";
/** How long a cancelled call may take to end, out of credits or not. */
const ENDS_WITHIN_MS = 1000;
const CANCELLERS = [v1.CancelledBy.CALLER, v1.CancelledBy.OPERATOR];

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

/** A long generation whose caller took its 3 credits and that produced past them. */
async function held(): Promise<{ generation: Generation; reader: Reader<v1.StreamEvent> }> {
  const generation = client.generate({ prompt: LONG_PROMPT, sampling: { maxTokens: 200 }, flow: credit(3) });
  const reader = new Reader(generation);
  assert.deepEqual(offsets([await reader.next(), await reader.next(), await reader.next()]), consecutive(3));
  while (((await client.getStream(generation.streamId)).status?.nextOffset ?? 0n) < 5n) {
    await later(10);
  }
  return { generation, reader };
}

/** Cancels the generation as its caller, or as an operator through Control. */
async function cancelAs(generation: Generation, by: v1.CancelledBy, reason: string): Promise<void> {
  if (by === v1.CancelledBy.CALLER) {
    generation.cancel(reason);
    return;
  }
  const control = client.control();
  try {
    assert.equal((await control.cancel(generation.streamId, reason))?.state, v1.StreamState.CANCELLED);
  } finally {
    control.close();
  }
}

/** Resolves as `promise` does, or rejects unless it settles within `ms`. */
async function within<T>(ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the call did not end within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function assertCancelled(event: v1.StreamEvent | undefined, by: v1.CancelledBy, reason: string): v1.Completed {
  assert.equal(event?.kind.case, "completed");
  const completed = event.kind.value;
  assert.equal(completed.finishReason, v1.FinishReason.CANCELLED);
  assert.equal(completed.cancelledBy, by);
  assert.equal(completed.cancelReason, reason);
  return completed;
}

describe("a cancel ends the caller's call at once with no credits left", () => {
  for (const by of CANCELLERS) {
    it(`cancelled by ${v1.CancelledBy[by]}`, async () => {
      const { generation, reader } = await held();

      await cancelAs(generation, by, "seen enough");
      const rest = await within(ENDS_WITHIN_MS, reader.rest());

      assert.equal(rest.length, 1);
      assert.ok((rest[0]?.offset ?? 0n) >= 5n, "the completed event waited for credits");
      const completed = assertCancelled(rest[0], by, "seen enough");
      assert.ok((completed.usage?.promptTokens ?? 0) > 0);
      const result = await generation.result();
      assert.equal(result.completed, completed);
      assert.deepEqual([result.cancelledBy, result.cancelReason], [by, "seen enough"]);
    });
  }
});

describe("a subscriber out of credits gets the same terminal event", () => {
  for (const by of CANCELLERS) {
    it(`cancelled by ${v1.CancelledBy[by]}`, async () => {
      const { generation, reader } = await held();
      const subscription = client.subscribe();
      subscription.add({ streamId: generation.streamId, flow: credit(3) });
      subscription.closeSend();
      const items = new Reader(subscription);
      const seen = [await items.next(), await items.next(), await items.next(), await items.next()];

      await cancelAs(generation, by, "seen enough");
      const [owner, followed] = await within(ENDS_WITHIN_MS, Promise.all([reader.rest(), items.rest()]));

      assert.equal(seen[0]?.item.case === "added" && seen[0].item.value.streamId, generation.streamId);
      assert.deepEqual(offsets(eventsOf(seen)), consecutive(3));
      assert.equal(owner.length, 1);
      const end = owner[0];
      assertCancelled(end, by, "seen enough");
      assert.deepEqual(
        followed.map((item) => item.item.case),
        ["event", "ended"],
      );
      assert.deepEqual(eventsOf(followed), [end]);
      const ended = followed[1]?.item;
      assert.equal(ended?.case, "ended");
      assert.equal(ended.value.nextOffset, (end?.offset ?? 0n) + 1n);
      assert.equal(RouterError.fromEnded(ended.value), undefined);
    });
  }
});
