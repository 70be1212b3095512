/**
 * Subscription: follows generations by stream id on one Subscribe call.
 */
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";
import { RouterError } from "./errors.js";
import type { AddSubscriptionSchema } from "./gen/llmrouter/v1/operations_pb.js";
import {
  type RouterService,
  type SubscribeRequest,
  SubscribeRequestSchema,
  type SubscribeResponse,
} from "./gen/llmrouter/v1/service_pb.js";
import { AsyncQueue } from "./queue.js";
import { Cursor, type ReconnectPolicy, waitToReconnect } from "./reconnect.js";

/** What add() takes: the generated AddSubscription, as an init object. */
export type AddSubscriptionInit = MessageInitShape<typeof AddSubscriptionSchema>;

/**
 * Follows generations: replay from an offset, then live events. Iterate it
 * once for its items (events, subscriptions added, subscriptions ended); the
 * call starts when the iteration does and fails with a RouterError. add(),
 * remove() and grant() may be called at any time.
 */
export class Subscription implements AsyncIterable<SubscribeResponse> {
  readonly #rpc: Client<typeof RouterService>;
  readonly #policy: ReconnectPolicy | undefined;
  readonly #abort = new AbortController();
  #requests = new AsyncQueue<SubscribeRequest>();
  readonly #active = new Map<string, AddSubscriptionInit>();
  readonly #cursors = new Map<string, Cursor>();
  #items: AsyncGenerator<SubscribeResponse, void> | undefined;
  #attempts = 0;

  constructor(rpc: Client<typeof RouterService>, policy?: ReconnectPolicy, signal?: AbortSignal) {
    this.#rpc = rpc;
    this.#policy = policy;
    signal?.addEventListener("abort", () => this.close(), { once: true });
  }

  /** Follows a generation from `fromOffset` (0 replays it from the start). */
  add(add: AddSubscriptionInit): void {
    this.#active.set(add.streamId ?? "", add);
    this.#send({ case: "add", value: add });
  }

  /** Stops following a generation. */
  remove(streamId: string): void {
    this.#active.delete(streamId);
    this.#send({ case: "remove", value: { streamId } });
  }

  /** Allows `credits` more events on one subscription (CREDIT flow mode). */
  grant(streamId: string, credits: number): void {
    this.#send({ case: "grant", value: { streamId, credits } });
  }

  /** Ends the call and every subscription on it. */
  close(): void {
    this.#requests.close();
    this.#abort.abort();
  }

  [Symbol.asyncIterator](): AsyncIterator<SubscribeResponse, void> {
    if (this.#items !== undefined) {
      throw new Error("a Subscription can be iterated only once");
    }
    this.#items = this.#run();
    return this.#items;
  }

  #send(action: MessageInitShape<typeof SubscribeRequestSchema>["action"]): void {
    this.#requests.push(create(SubscribeRequestSchema, { action }));
  }

  async *#run(): AsyncGenerator<SubscribeResponse, void> {
    try {
      for (;;) {
        try {
          yield* this.#call();
          return;
        } catch (error) {
          const failure = RouterError.from(error);
          this.#attempts += 1;
          if (!(await waitToReconnect(this.#policy, failure, this.#attempts, this.#abort.signal))) {
            throw failure;
          }
          this.#resubscribe();
        }
      }
    } finally {
      this.close();
    }
  }

  async *#call(): AsyncGenerator<SubscribeResponse, void> {
    for await (const response of this.#rpc.subscribe(this.#requests, { signal: this.#abort.signal })) {
      if (this.#accept(response)) {
        this.#attempts = 0;
        yield response;
      }
    }
  }

  /** A new request queue that adds every active subscription again from its next offset. */
  #resubscribe(): void {
    this.#requests.close();
    this.#requests = new AsyncQueue<SubscribeRequest>();
    for (const [streamId, add] of this.#active) {
      const cursor = this.#cursors.get(streamId);
      this.#send({ case: "add", value: { ...add, fromOffset: cursor?.next ?? add.fromOffset ?? 0n } });
    }
  }

  /** Drops events replayed after reconnecting and forgets ended subscriptions. */
  #accept(response: SubscribeResponse): boolean {
    const item = response.item;
    if (item.case === "ended") {
      this.#active.delete(item.value.streamId);
      this.#cursors.delete(item.value.streamId);
    }
    if (item.case !== "event") {
      return true;
    }
    let cursor = this.#cursors.get(item.value.streamId);
    if (cursor === undefined) {
      cursor = new Cursor();
      this.#cursors.set(item.value.streamId, cursor);
    }
    return cursor.accept(item.value);
  }
}
