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
import { Credits, Cursor, type ReconnectPolicy, reconnectDelay, wait } from "./reconnect.js";

/** What add() takes: the generated AddSubscription, as an init object. */
export type AddSubscriptionInit = MessageInitShape<typeof AddSubscriptionSchema>;

/** One subscription as it would be added again after a reconnect. */
interface Following {
  add: AddSubscriptionInit;
  credits: Credits;
  /** Its `added` item was delivered: the one a re-add brings is not. */
  announced: boolean;
}

/**
 * Follows generations: replay from an offset, then live events. Iterate it
 * once for its items; the call starts when the iteration does and fails with
 * a RouterError. Each subscription delivers an `added` item, its events in
 * offset order and an `ended` item (RouterError.fromEnded says why it ended).
 * A subscription that fails, for example on an unknown stream id, ends alone;
 * the call and the others go on. A subscription whose generation is
 * cancelled (by its caller, an operator, a detach TTL or a server shutdown)
 * gets the generation's last event, completed with finish reason CANCELLED, at
 * once, even in CREDIT flow with no credits left (its offsets jump), and then
 * an `ended` item without an error. add(), remove(), grant() and closeSend()
 * may be called at any time; after closeSend() the iteration ends once every
 * subscription has ended.
 */
export class Subscription implements AsyncIterable<SubscribeResponse> {
  readonly #rpc: Client<typeof RouterService>;
  readonly #policy: ReconnectPolicy | undefined;
  readonly #abort = new AbortController();
  #requests = new AsyncQueue<SubscribeRequest>();
  readonly #active = new Map<string, Following>();
  readonly #cursors = new Map<string, Cursor>();
  #items: AsyncGenerator<SubscribeResponse, void> | undefined;
  #attempts = 0;
  #sendClosed = false;

  constructor(rpc: Client<typeof RouterService>, policy?: ReconnectPolicy, signal?: AbortSignal) {
    this.#rpc = rpc;
    this.#policy = policy;
    signal?.addEventListener("abort", () => this.close(), { once: true });
  }

  /** Follows a generation from `fromOffset` (0 replays it from the start). */
  add(add: AddSubscriptionInit): void {
    this.#active.set(add.streamId ?? "", { add, credits: new Credits(add.flow), announced: false });
    this.#send({ case: "add", value: add });
  }

  /** Stops following a generation; its `ended` item follows. */
  remove(streamId: string): void {
    this.#active.delete(streamId);
    this.#send({ case: "remove", value: { streamId } });
  }

  /**
   * Allows `credits` more events on one subscription (CREDIT flow mode).
   * While the call is down they are counted into the credits it is added
   * again with.
   */
  grant(streamId: string, credits: number): void {
    if (!this.#abort.signal.aborted) {
      this.#active.get(streamId)?.credits.grant(credits);
    }
    this.#send({ case: "grant", value: { streamId, credits } });
  }

  /** Says no more requests follow: the call then ends once every subscription has ended. */
  closeSend(): void {
    this.#sendClosed = true;
    this.#requests.close();
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

  #send(action: MessageInitShape<typeof SubscribeRequestSchema>["action"]): boolean {
    return this.#requests.push(create(SubscribeRequestSchema, { action }));
  }

  async *#run(): AsyncGenerator<SubscribeResponse, void> {
    try {
      for (;;) {
        try {
          yield* this.#call();
          return;
        } catch (error) {
          const failure = RouterError.fromCall(error, this.#abort.signal);
          this.#attempts += 1;
          const delay = reconnectDelay(this.#policy, failure, this.#attempts);
          if (delay === undefined || !(await wait(delay, this.#abort.signal))) {
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
    for (const [streamId, following] of this.#active) {
      const cursor = this.#cursors.get(streamId);
      const fromOffset = cursor?.next ?? following.add.fromOffset ?? 0n;
      const flow = following.credits.flow() ?? following.add.flow;
      const slowPolicy = following.add.slowPolicy;
      this.#send({ case: "add", value: { streamId, fromOffset, flow, slowPolicy } });
    }
    if (this.#sendClosed) {
      this.#requests.close();
    }
  }

  /**
   * Drops what a reconnect repeats (events already delivered, the `added` item
   * of a subscription added again), counts credits, forgets ended subscriptions.
   */
  #accept(response: SubscribeResponse): boolean {
    const item = response.item;
    switch (item.case) {
      case "added": {
        const following = this.#active.get(item.value.streamId);
        const repeated = following?.announced === true;
        if (following !== undefined) {
          following.announced = true;
        }
        return !repeated;
      }
      case "ended":
        this.#active.delete(item.value.streamId);
        this.#cursors.delete(item.value.streamId);
        return true;
      case "event": {
        let cursor = this.#cursors.get(item.value.streamId);
        if (cursor === undefined) {
          cursor = new Cursor();
          this.#cursors.set(item.value.streamId, cursor);
        }
        if (!cursor.accept(item.value)) {
          return false;
        }
        this.#active.get(item.value.streamId)?.credits.spend();
        return true;
      }
      default:
        return true;
    }
  }
}
