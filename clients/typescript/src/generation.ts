/**
 * Generation: one generation on one Generate call, read as an async iterable
 * of events and steered with pause, resume, cancel and grant.
 */
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";
import { RouterError } from "./errors.js";
import { type CancelledBy, type Completed, type StreamEvent } from "./gen/llmrouter/v1/events_pb.js";
import {
  type AttachGenerationSchema,
  MidStreamAction,
  type StartGenerationSchema,
} from "./gen/llmrouter/v1/generation_pb.js";
import { type GenerateRequest, GenerateRequestSchema, type RouterService } from "./gen/llmrouter/v1/service_pb.js";
import { AsyncQueue } from "./queue.js";
import { Credits, Cursor, type ReconnectPolicy, reconnectDelay, wait } from "./reconnect.js";

/** What a generation is started with: the generated StartGeneration, as an init object. */
export type StartRequest = MessageInitShape<typeof StartGenerationSchema>;

/** What a re-attach names: the generated AttachGeneration, as an init object. */
export type AttachRequest = MessageInitShape<typeof AttachGenerationSchema>;

/** The first request of a Generate call. */
export type FirstRequest = { case: "start"; value: StartRequest } | { case: "attach"; value: AttachRequest };

/** The whole output of a generation. */
export interface GenerationResult {
  /** The concatenated chunks. */
  text: string;
  /** The last event: finish reason, usage, timings and, when cancelled, who and why. */
  completed: Completed;
  /**
   * Who cancelled it: CALLER (cancel(), or the call ended under the CANCEL
   * disconnect policy), OPERATOR (ControlChannel.cancel()), DETACH_TIMEOUT or
   * SHUTDOWN; UNSPECIFIED when it was not cancelled. The same as `completed.cancelledBy`.
   */
  cancelledBy: CancelledBy;
  /** Why it was cancelled, as the canceller gave it; "" when it was not. The same as `completed.cancelReason`. */
  cancelReason: string;
}

function resultOf(text: string, completed: Completed): GenerationResult {
  return { text, completed, cancelledBy: completed.cancelledBy, cancelReason: completed.cancelReason };
}

/**
 * One generation. Iterate it once for its events in offset order; the call
 * starts when the iteration does. A failed generation throws a RouterError. A
 * cancelled one does not: whoever cancels it (this caller, an operator, a
 * detach TTL, a server shutdown), the iteration ends normally with a completed
 * event whose finish reason is CANCELLED (see cancel()). pause(), resume(),
 * cancel() and grant() may be called at any time; they queue their request and
 * return, and do nothing once the generation has ended. With a ReconnectPolicy,
 * those sent while a lost call waits to be re-attached go after the re-attach
 * request.
 */
export class Generation implements AsyncIterable<StreamEvent> {
  readonly #rpc: Client<typeof RouterService>;
  readonly #policy: ReconnectPolicy | undefined;
  readonly #abort = new AbortController();
  #requests = new AsyncQueue<GenerateRequest>();
  #attempts = 0;
  /** True while the call is a re-attach the server has not answered yet. */
  #attaching = false;
  /** True from a lost call until its re-attach is queued: steering waits in #held. */
  #down = false;
  /** Steering to send after the next re-attach request, oldest first. */
  #held: GenerateRequest[] = [];
  /** Steering sent after a re-attach the server has not answered yet: it is held again if the attach fails. */
  #sentAfterAttach: GenerateRequest[] = [];
  #events: AsyncGenerator<StreamEvent, void> | undefined;
  readonly #cursor: Cursor;
  readonly #credits: Credits;
  #streamId: string;
  #text = "";
  #completed: Completed | undefined;
  readonly #rejected: RouterError[] = [];
  /** Called with the whole text when the completed event arrives. */
  onCompleted: ((result: GenerationResult) => void) | undefined;
  /**
   * Called when the call was lost and the generation is about to wait and
   * re-attach (ReconnectPolicy), with the error that ended the call and the
   * attempt number (from 1). Steering sent from then on goes after the
   * re-attach request.
   */
  onLost: ((error: RouterError, attempt: number) => void) | undefined;

  constructor(rpc: Client<typeof RouterService>, first: FirstRequest, policy?: ReconnectPolicy, signal?: AbortSignal) {
    this.#rpc = rpc;
    this.#policy = policy;
    this.#send(first);
    this.#streamId = first.value.streamId ?? "";
    this.#credits = new Credits(first.value.flow);
    this.#cursor = first.case === "attach" ? new Cursor(first.value.fromOffset ?? 0n) : new Cursor();
    signal?.addEventListener("abort", () => this.close(), { once: true });
  }

  /** The generation's id, known once the first event has arrived (or at once when the request named it). */
  get streamId(): string {
    return this.#streamId;
  }

  /** The text received so far (after an attach, since its offset). */
  get text(): string {
    return this.#text;
  }

  /** The completed event, once it has arrived. */
  get completed(): Completed | undefined {
    return this.#completed;
  }

  /**
   * Steering requests the server could not apply (a `resume` when not paused,
   * credits in AUTO flow), oldest first; the call went on after each.
   */
  get rejected(): readonly RouterError[] {
    return [...this.#rejected];
  }

  [Symbol.asyncIterator](): AsyncIterator<StreamEvent, void> {
    if (this.#events !== undefined) {
      throw new Error("a Generation can be iterated only once");
    }
    this.#events = this.#run();
    return this.#events;
  }

  /** The text of each chunk, in order. */
  async *chunks(): AsyncGenerator<string, void> {
    for await (const event of this) {
      if (event.kind.case === "chunk") {
        yield event.kind.value.text;
      }
    }
  }

  /**
   * Reads the remaining events (continuing an iteration already begun);
   * resolves to the whole text and the completed event.
   */
  async result(): Promise<GenerationResult> {
    const events = (this.#events ??= this.#run());
    while ((await events.next()).done !== true) {
      // Every event is recorded as it passes.
    }
    if (this.#completed === undefined) {
      throw new Error("the call ended without a completed event");
    }
    return resultOf(this.#text, this.#completed);
  }

  /** Asks the server to stop producing until resume(); a paused event marks the place. */
  pause(reason = ""): void {
    this.#send({ case: "pause", value: { reason } });
  }

  /** Continues a paused generation at the next offset, after a resumed event. */
  resume(): void {
    this.#send({ case: "resume", value: {} });
  }

  /**
   * Cancels the generation; `reason` comes back as the completed event's
   * `cancelReason`. The call then ends normally (no error) with one completed
   * event: finish reason CANCELLED, `cancelledBy` CALLER, this reason and the
   * usage so far. That event needs no credit: in CREDIT flow with none left
   * the iteration skips straight to it (its offset jumps; the skipped events
   * stay on the server for replay through a subscription or attach()). Every
   * subscriber of the generation gets the same event at once. An operator's
   * ControlChannel.cancel(), a detach TTL and a server shutdown end the
   * iteration the same way, with `cancelledBy` saying who.
   */
  cancel(reason = ""): void {
    this.#send({ case: "cancel", value: { reason } });
  }

  /** Allows the server to send `credits` more events (CREDIT flow mode). */
  grant(credits: number): void {
    if (this.#send({ case: "grant", value: { credits } })) {
      this.#credits.grant(credits);
    }
  }

  /** Ends the call; the server then cancels the generation unless it was started with DETACH. */
  close(): void {
    this.#requests.close();
    this.#abort.abort();
  }

  /**
   * Queues a request on the call, or for after the re-attach while the call is
   * down; false once the generation has ended.
   */
  #send(action: MessageInitShape<typeof GenerateRequestSchema>["action"]): boolean {
    if (this.#abort.signal.aborted || this.#completed !== undefined) {
      return false;
    }
    const request = create(GenerateRequestSchema, { action });
    if (!this.#down && this.#requests.push(request)) {
      if (this.#attaching) {
        this.#sentAfterAttach.push(request);
      }
      return true;
    }
    // The call has ended: held until the generation re-attaches, or dropped with it.
    this.#held.push(request);
    return true;
  }

  async *#run(): AsyncGenerator<StreamEvent, void> {
    try {
      for (;;) {
        try {
          yield* this.#call();
          return;
        } catch (error) {
          if (this.#completed !== undefined) {
            // The completed event is the last one: the generation has ended. When
            // the server closes the call before the request side is closed and the
            // response is read to its end, Node's HTTP/2 stream reports "Premature
            // close" instead of the call's OK status; that is not a failure.
            return;
          }
          const failure = RouterError.fromCall(error, this.#abort.signal);
          this.#attempts += 1;
          this.#lose();
          const delay = reconnectDelay(this.#policy, failure, this.#attempts, this.#attaching);
          if (this.#streamId === "" || delay === undefined) {
            throw failure;
          }
          this.onLost?.(failure, this.#attempts);
          if (!(await wait(delay, this.#abort.signal))) {
            throw failure;
          }
          this.#reattach();
        }
      }
    } finally {
      this.close();
    }
  }

  async *#call(): AsyncGenerator<StreamEvent, void> {
    for await (const response of this.#rpc.generate(this.#requests, { signal: this.#abort.signal })) {
      // Any response means the server took the attach.
      this.#attaching = false;
      this.#sentAfterAttach = [];
      if (response.rejected !== undefined) {
        this.#rejected.push(RouterError.fromCommandError(response.rejected));
        continue;
      }
      const event = response.event;
      if (event !== undefined && this.#cursor.accept(event)) {
        this.#attempts = 0;
        this.#record(event);
        yield event;
      }
    }
  }

  /**
   * Marks the call as lost: steering it had not sent, or sent after a re-attach
   * the server refused, is held for the next re-attach, before what is sent
   * from now on.
   */
  #lose(): void {
    this.#down = true;
    this.#requests.close();
    const unsent = this.#attaching ? this.#sentAfterAttach : this.#requests.unread();
    this.#held = [...unsent, ...this.#held];
    this.#sentAfterAttach = [];
  }

  /**
   * Replaces the request queue with one that starts with `attach`, followed by
   * the held steering in order. Credits granted while the call was down are
   * already counted into the attach's initial credits, so their grants are
   * not sent again.
   */
  #reattach(): void {
    this.#requests = new AsyncQueue<GenerateRequest>();
    const attach = { streamId: this.#streamId, fromOffset: this.#cursor.next, flow: this.#credits.flow() };
    this.#requests.push(create(GenerateRequestSchema, { action: { case: "attach", value: attach } }));
    const steering = this.#held.filter(({ action }) => ["pause", "resume", "cancel"].includes(action.case ?? ""));
    for (const request of steering) {
      this.#requests.push(request);
    }
    this.#held = [];
    this.#sentAfterAttach = steering;
    this.#attaching = true;
    this.#down = false;
  }

  #record(event: StreamEvent): void {
    this.#streamId = event.streamId;
    this.#credits.spend();
    const kind = event.kind;
    if (kind.case === "chunk") {
      this.#text += kind.value.text;
    } else if (kind.case === "fallbackUsed" && kind.value.action === MidStreamAction.RESTART) {
      this.#text = "";
    } else if (kind.case === "completed") {
      this.#completed = kind.value;
      this.#requests.close();
      this.onCompleted?.(resultOf(this.#text, kind.value));
    }
  }
}
