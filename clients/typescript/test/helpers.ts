/**
 * Helpers shared by the tests that run against `llmrouter serve`.
 */
import assert from "node:assert/strict";
import type { Proxy } from "./proxy.js";
import { type BaseClient, type ControlChannel, type Generation, RouterError, type StartRequest, type Subscription, v1 } from "../src/index.js";

export const PROMPT = "Write a story about a lighthouse keeper.";

/** CREDIT flow with `initialCredits` up front. */
export function credit(initialCredits: number): { mode: v1.FlowMode; initialCredits: number } {
  return { mode: v1.FlowMode.CREDIT, initialCredits };
}

/** A start request for `maxTokens` tokens at temperature 0. */
export function greedy(maxTokens: number, extra: { flow?: ReturnType<typeof credit>; streamId?: string } = {}): StartRequest {
  return { prompt: PROMPT, sampling: { maxTokens, temperature: 0 }, ...extra };
}

/** Reads an async iterable step by step, then the rest. */
export class Reader<T> {
  readonly #iterator: AsyncIterator<T, void>;

  constructor(iterable: AsyncIterable<T>) {
    this.#iterator = iterable[Symbol.asyncIterator]() as AsyncIterator<T, void>;
  }

  /** The next item; fails when there is none. */
  async next(): Promise<T> {
    const result = await this.#iterator.next();
    assert.ok(result.done !== true, "the iteration ended early");
    return result.value;
  }

  /** The pending next item, as a promise. */
  pending(): Promise<IteratorResult<T, void>> {
    return this.#iterator.next();
  }

  /** Every item until the end. */
  async rest(): Promise<T[]> {
    const items: T[] = [];
    for (let result = await this.#iterator.next(); result.done !== true; result = await this.#iterator.next()) {
      items.push(result.value);
    }
    return items;
  }
}

/** The whole text of an uninterrupted generation of `start`. */
export async function referenceText(client: BaseClient, start: StartRequest): Promise<string> {
  return (await client.generate(start).result()).text;
}

/** Every event of a generation. */
export async function collect(generation: Generation): Promise<v1.StreamEvent[]> {
  return new Reader(generation).rest();
}

/** The offsets of some events. */
export function offsets(events: v1.StreamEvent[]): bigint[] {
  return events.map((event) => event.offset);
}

/** `count` consecutive offsets from `from`. */
export function consecutive(count: number, from = 0n): bigint[] {
  return Array.from({ length: count }, (_, index) => from + BigInt(index));
}

/** The events among subscription items. */
export function eventsOf(items: v1.SubscribeResponse[]): v1.StreamEvent[] {
  return items.flatMap((item) => (item.item.case === "event" ? [item.item.value] : []));
}

/** Subscribes to `streamIds` from offset 0, half-closes, and returns every item. */
export async function subscribeAll(client: BaseClient, ...streamIds: string[]): Promise<v1.SubscribeResponse[]> {
  const subscription: Subscription = client.subscribe();
  for (const streamId of streamIds) {
    subscription.add({ streamId });
  }
  subscription.closeSend();
  return new Reader(subscription).rest();
}

/** Collects the error a promise rejects with. */
export async function failure(promise: Promise<unknown>): Promise<RouterError> {
  const error = await promise.then(
    () => assert.fail("expected the call to fail"),
    (error: unknown) => error,
  );
  assert.ok(error instanceof RouterError, `${String(error)} is not a RouterError`);
  return error;
}

/** Resolves after `ms`, to `undefined`. */
export function later(ms: number): Promise<undefined> {
  return new Promise((resolve) => setTimeout(() => resolve(undefined), ms));
}

/** The next state `control`'s watch pushes for `streamId`, one per call; fails when the channel ends. */
export function stateChanges(control: ControlChannel, streamId: string): () => Promise<v1.StreamState> {
  const changes = control.changes()[Symbol.asyncIterator]();
  return async () => {
    for (;;) {
      const change = await changes.next();
      assert.ok(change.done !== true, "the channel ended");
      if (change.value.streamId === streamId) {
        return change.value.state;
      }
    }
  };
}

/**
 * Subscribes `through` (a client connected by `proxy`) to the generation `owner`
 * holds at one credit, reads `before` items, drops the proxy's connections and
 * lets the owner finish: the subscription must come back by itself and carry
 * every event once, then `ended`.
 */
export async function resubscribesAcrossADrop(client: BaseClient, through: BaseClient, proxy: Proxy, before: number): Promise<void> {
  const owner = client.generate(greedy(16, { flow: credit(1) }));
  const ownerReader = new Reader(owner);
  const started = await ownerReader.next();
  const subscription = through.subscribe();
  subscription.add({ streamId: started.streamId });
  subscription.closeSend();
  const reader = new Reader(subscription);
  const items: v1.SubscribeResponse[] = [];
  for (let read = 0; read < before; read += 1) {
    items.push(await reader.next());
  }

  proxy.drop();
  owner.grant(1000);
  const ownerEvents = [started, ...(await ownerReader.rest())];
  items.push(...(await reader.rest()));
  through.close();
  proxy.stop();

  assert.deepEqual(
    items.map((item) => item.item.case),
    ["added", ...ownerEvents.map(() => "event"), "ended"],
  );
  assert.deepEqual(eventsOf(items), ownerEvents);
  assert.ok(proxy.connections >= 2, `the proxy saw ${proxy.connections} connections`);
}

/**
 * Subscribes to a generation that `client` started and holds at one credit,
 * then lets it finish: the subscription is added while the generation runs and
 * carries the owner's every event once, ending at the offset after the last.
 */
export async function followsARunningGeneration(client: BaseClient): Promise<void> {
  const owner = client.generate(greedy(16, { flow: credit(1) }));
  const ownerReader = new Reader(owner);
  const started = await ownerReader.next();
  const subscription = client.subscribe();
  subscription.add({ streamId: started.streamId });
  const reader = new Reader(subscription);
  const added = (await reader.next()).item;
  assert.equal(added.case, "added");
  assert.ok([v1.StreamState.QUEUED, v1.StreamState.RUNNING].includes(added.value.state));
  subscription.closeSend();

  owner.grant(1000);
  const ownerEvents = [started, ...(await ownerReader.rest())];
  const items = await reader.rest();

  assert.deepEqual(eventsOf(items), ownerEvents);
  const ended = items.at(-1)?.item;
  assert.equal(ended?.case === "ended" && ended.value.nextOffset, BigInt(ownerEvents.length));
}
