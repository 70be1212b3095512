/**
 * ControlChannel: operator commands on any generation by stream id, each
 * answered by its own reply, and pushed state changes of watched ones.
 */
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";
import { RouterError } from "./errors.js";
import type { StreamState, StreamStatus } from "./gen/llmrouter/v1/operations_pb.js";
import {
  type ControlRequest,
  ControlRequestSchema,
  type ControlResponse,
  type RouterService,
} from "./gen/llmrouter/v1/service_pb.js";
import { AsyncQueue } from "./queue.js";

type Command = MessageInitShape<typeof ControlRequestSchema>["command"];

interface Pending {
  resolve: (response: ControlResponse) => void;
  reject: (error: RouterError) => void;
}

/**
 * An operator channel. Each method sends one command and resolves to its
 * reply, or rejects with a RouterError: a command the server refuses (an
 * unknown stream id, pausing a finished generation) carries the code and the
 * details the server gave it (`reason` is the ErrorInfo reason, such as
 * "NOT_FOUND"), and the channel stays open. Iterate changes() while watching.
 */
export class ControlChannel {
  readonly #abort = new AbortController();
  readonly #requests = new AsyncQueue<ControlRequest>();
  readonly #changes = new AsyncQueue<StreamStatus>();
  readonly #pending = new Map<string, Pending>();
  #nextId = 0;
  #error: RouterError | undefined;

  constructor(rpc: Client<typeof RouterService>, signal?: AbortSignal) {
    signal?.addEventListener("abort", () => this.close(), { once: true });
    void this.#read(rpc);
  }

  /** Pauses a running generation; resolves to its status. */
  async pause(streamId: string, reason = ""): Promise<StreamStatus | undefined> {
    return status(await this.#do({ case: "pause", value: { streamId, reason } }));
  }

  /** Resumes a paused generation; resolves to its status. */
  async resume(streamId: string): Promise<StreamStatus | undefined> {
    return status(await this.#do({ case: "resume", value: { streamId } }));
  }

  /**
   * Cancels a generation; resolves to its status once it has ended (state
   * CANCELLED). The generation ends as when its caller cancels it: its log
   * ends with one completed event (finish reason CANCELLED, `cancelledBy`
   * OPERATOR, `cancelReason` this reason, the usage so far) that its Generate
   * caller and every subscriber get at once, even with no credits left. The
   * caller's iteration ends normally, without an error; subscriptions end
   * normally too.
   */
  async cancel(streamId: string, reason = ""): Promise<StreamStatus | undefined> {
    return status(await this.#do({ case: "cancel", value: { streamId, reason } }));
  }

  /** The status of one generation. */
  async status(streamId: string): Promise<StreamStatus | undefined> {
    return status(await this.#do({ case: "status", value: { streamId } }));
  }

  /** The generations in the given states (all when none is given). */
  async list(...states: StreamState[]): Promise<StreamStatus[]> {
    const reply = await this.#do({ case: "list", value: { states } });
    return reply.result.case === "list" ? reply.result.value.streams : [];
  }

  /**
   * Pushes later state changes of the named generations (of all when none is
   * named) to changes(); resolves to their current statuses. An unknown stream
   * id rejects with NOT_FOUND and watches nothing.
   */
  async watch(...streamIds: string[]): Promise<StreamStatus[]> {
    const reply = await this.#do({ case: "watch", value: { streamIds } });
    return reply.result.case === "list" ? reply.result.value.streams : [];
  }

  /** Stops pushing state changes of the named generations (of all when none is named). */
  async unwatch(...streamIds: string[]): Promise<void> {
    await this.#do({ case: "unwatch", value: { streamIds } });
  }

  /** The pushed state changes; the iteration ends when the channel does. */
  changes(): AsyncIterable<StreamStatus> {
    return this.#changes;
  }

  /** Why the channel ended, or undefined while it is open. */
  get error(): RouterError | undefined {
    return this.#error;
  }

  /** Ends the channel; waiting commands reject. */
  close(): void {
    this.#requests.close();
    this.#abort.abort();
  }

  #do(command: Command): Promise<ControlResponse> {
    if (this.#error !== undefined) {
      return Promise.reject(this.#error);
    }
    const requestId = String(++this.#nextId);
    return new Promise((resolve, reject) => {
      this.#pending.set(requestId, { resolve, reject });
      this.#requests.push(create(ControlRequestSchema, { requestId, command }));
    });
  }

  /** Dispatches replies and changes until the call ends, then fails what still waits. */
  async #read(rpc: Client<typeof RouterService>): Promise<void> {
    try {
      for await (const response of rpc.control(this.#requests, { signal: this.#abort.signal })) {
        this.#dispatch(response);
      }
      this.#error = RouterError.from(new Error("the Control call has ended"));
    } catch (error) {
      this.#error = RouterError.fromCall(error, this.#abort.signal);
    } finally {
      this.#changes.close();
      for (const pending of this.#pending.values()) {
        pending.reject(this.#error ?? RouterError.from(new Error("closed")));
      }
      this.#pending.clear();
    }
  }

  #dispatch(response: ControlResponse): void {
    if (response.requestId === "") {
      if (response.result.case === "status") {
        this.#changes.push(response.result.value);
      }
      return;
    }
    const pending = this.#pending.get(response.requestId);
    this.#pending.delete(response.requestId);
    if (response.result.case === "error") {
      pending?.reject(RouterError.fromCommandError(response.result.value));
    } else {
      pending?.resolve(response);
    }
  }
}

function status(response: ControlResponse): StreamStatus | undefined {
  return response.result.case === "status" ? response.result.value : undefined;
}
