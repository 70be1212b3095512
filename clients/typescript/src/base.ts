/**
 * BaseClient: the client API over any Connect transport. RouterClient (Node,
 * gRPC over HTTP/2) and the browser entry's client (WebSocket) add how they
 * connect; nothing here needs Node.
 */
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { type CallOptions, type Client, createClient, type Transport } from "@connectrpc/connect";
import { ChatSession, type ChatOptions } from "./chat.js";
import { ControlChannel } from "./control.js";
import { RouterError } from "./errors.js";
import { StartGenerationSchema } from "./gen/llmrouter/v1/generation_pb.js";
import type { Route } from "./gen/llmrouter/v1/operations_pb.js";
import {
  type GetStatsResponse,
  type GetStreamResponse,
  type ListStreamsRequestSchema,
  type ListStreamsResponse,
  RouterService,
} from "./gen/llmrouter/v1/service_pb.js";
import { type AttachRequest, Generation, type StartRequest } from "./generation.js";
import { detachPolicy, type ReconnectPolicy } from "./reconnect.js";
import { Subscription } from "./subscription.js";

/** A client of one llmrouter server over a Connect transport. Call close() when done. */
export class BaseClient {
  /** The generated Connect client, for calls this class does not wrap. */
  readonly rpc: Client<typeof RouterService>;
  readonly #reconnect: ReconnectPolicy | undefined;

  constructor(transport: Transport, reconnect?: ReconnectPolicy) {
    this.rpc = createClient(RouterService, transport);
    this.#reconnect = reconnect;
  }

  /** Starts a generation; iterate the result for its events. */
  generate(start: StartRequest, options: { signal?: AbortSignal } = {}): Generation {
    const message = create(StartGenerationSchema, start);
    if (this.#reconnect !== undefined && this.#reconnect.maxAttempts > 0) {
      message.onDisconnect ??= detachPolicy(this.#reconnect);
    }
    return new Generation(this.rpc, { case: "start", value: message }, this.#reconnect, options.signal);
  }

  /**
   * Re-attaches to a generation started with on_disconnect DETACH whose caller
   * has gone (or replays a finished one the server retains) from `fromOffset`.
   * An unknown stream id fails with NOT_FOUND, a generation another caller
   * holds with FAILED_PRECONDITION.
   */
  attach(attach: AttachRequest, options: { signal?: AbortSignal } = {}): Generation {
    return new Generation(this.rpc, { case: "attach", value: attach }, this.#reconnect, options.signal);
  }

  /** Starts a conversation that keeps its history. */
  chat(options: ChatOptions = {}): ChatSession {
    return new ChatSession(this, options);
  }

  /** Opens a Subscribe call; add subscriptions to it with add(). */
  subscribe(options: { signal?: AbortSignal } = {}): Subscription {
    return new Subscription(this.rpc, this.#reconnect, options.signal);
  }

  /** Opens a Control call for operator commands. */
  control(options: { signal?: AbortSignal } = {}): ControlChannel {
    return new ControlChannel(this.rpc, options.signal);
  }

  /** The configured routes, the default one marked. */
  async listModels(options?: CallOptions): Promise<Route[]> {
    return (await unary(this.rpc.listModels({}, options), options)).routes;
  }

  /** One page of generations, newest first. */
  listStreams(request: MessageInitShape<typeof ListStreamsRequestSchema> = {}, options?: CallOptions): Promise<ListStreamsResponse> {
    return unary(this.rpc.listStreams(request, options), options);
  }

  /** The status of one generation and up to `recentEvents` of its latest events. */
  getStream(streamId: string, recentEvents = 0, options?: CallOptions): Promise<GetStreamResponse> {
    return unary(this.rpc.getStream({ streamId, recentEvents }, options), options);
  }

  /** The analytics report, overall and per route; `model` selects one route (NOT_FOUND when unknown; admin keys only when auth is on). */
  getStats(model = "", options?: CallOptions): Promise<GetStatsResponse> {
    return unary(this.rpc.getStats({ model }, options), options);
  }

  /** Closes the connection this client opened, if any; calls in flight fail. */
  close(): void {}
}

/** The signal of a call the caller cannot abort. */
const NEVER_ABORTED = new AbortController().signal;

async function unary<T>(call: Promise<T>, options?: CallOptions): Promise<T> {
  try {
    return await call;
  } catch (error) {
    throw RouterError.fromCall(error, options?.signal ?? NEVER_ABORTED);
  }
}
