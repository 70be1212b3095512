/**
 * RouterClient: the entry point, one HTTP/2 connection to one server.
 */
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { type CallOptions, type Client, createClient, type Transport } from "@connectrpc/connect";
import { createGrpcTransport, type Http2SessionManager } from "@connectrpc/connect-node";
import { ChatSession, type ChatOptions } from "./chat.js";
import { ControlChannel } from "./control.js";
import { bearerKey, sessionOptions, type TLSOptions } from "./credentials.js";
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
import { CallSessionManager } from "./session.js";
import { Subscription } from "./subscription.js";

/** How a RouterClient connects. */
export interface RouterClientOptions {
  /** The server's host:port, such as "localhost:50051"; plaintext HTTP/2 unless `tls` is given. */
  address?: string;
  /**
   * Sent as `authorization: Bearer <key>` metadata on every call, `rpc`'s
   * included; a server that does not know it answers UNAUTHENTICATED, one
   * whose role does not allow a call PERMISSION_DENIED.
   */
  apiKey?: string;
  /** TLS for the connection (mutual TLS with `cert` and `key`); `{}` trusts Node's default roots. */
  tls?: TLSOptions;
  /**
   * A transport to use instead of `address` (add a key with an interceptor of
   * your own); close() leaves it open. `apiKey` and `tls` do not apply to it.
   */
  transport?: Transport;
  /** Re-attach generations and subscriptions after a lost connection; see ReconnectPolicy. */
  reconnect?: ReconnectPolicy;
}

/** A client of one llmrouter server. Call close() when done. */
export class RouterClient {
  /** The generated Connect client, for calls this class does not wrap. */
  readonly rpc: Client<typeof RouterService>;
  readonly #sessions: Http2SessionManager | undefined;
  readonly #reconnect: ReconnectPolicy | undefined;

  /**
   * Throws a TypeError when neither `address` nor `transport` is given, when
   * `transport` comes with `apiKey` or `tls`, when the key is empty or not
   * printable ASCII without spaces (the message leaves it out), or when `tls`
   * has a certificate without its key.
   */
  constructor(options: RouterClientOptions) {
    let transport = options.transport;
    if (transport !== undefined && (options.apiKey !== undefined || options.tls !== undefined)) {
      throw new TypeError("apiKey and tls apply to the connection RouterClient opens, not to a transport");
    }
    if (transport === undefined) {
      if (options.address === undefined) {
        throw new TypeError("RouterClient needs an address or a transport");
      }
      const interceptors = options.apiKey === undefined ? [] : [bearerKey(options.apiKey)];
      const tls = options.tls === undefined ? undefined : sessionOptions(options.tls);
      const baseUrl = `${tls === undefined ? "http" : "https"}://${options.address}`;
      this.#sessions = new CallSessionManager(baseUrl, undefined, tls);
      transport = createGrpcTransport({ baseUrl, sessionManager: this.#sessions, interceptors });
    }
    this.rpc = createClient(RouterService, transport);
    this.#reconnect = options.reconnect;
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

  /** Closes the connection this client opened; calls in flight fail. */
  close(): void {
    this.#sessions?.abort();
  }
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
