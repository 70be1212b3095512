/**
 * RouterClient: the Node entry point, one HTTP/2 connection to one server.
 */
import type { Transport } from "@connectrpc/connect";
import { createGrpcTransport, type Http2SessionManager } from "@connectrpc/connect-node";
import { BaseClient } from "./base.js";
import { bearerKey, sessionOptions, type TLSOptions } from "./credentials.js";
import type { ReconnectPolicy } from "./reconnect.js";
import { CallSessionManager } from "./session.js";

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

/** A client of one llmrouter server over gRPC (HTTP/2). Call close() when done. */
export class RouterClient extends BaseClient {
  readonly #sessions: Http2SessionManager | undefined;

  /**
   * Throws a TypeError when neither `address` nor `transport` is given, when
   * `transport` comes with `apiKey` or `tls`, when the key is empty or not
   * printable ASCII without spaces (the message leaves it out), or when `tls`
   * has a certificate without its key.
   */
  constructor(options: RouterClientOptions) {
    const opened = open(options);
    super(opened.transport, options.reconnect);
    this.#sessions = opened.sessions;
  }

  /** Closes the connection this client opened; calls in flight fail. */
  override close(): void {
    this.#sessions?.abort();
  }
}

/** The options' transport, or a gRPC transport on a connection of its own. */
function open(options: RouterClientOptions): { transport: Transport; sessions?: Http2SessionManager } {
  if (options.transport !== undefined) {
    if (options.apiKey !== undefined || options.tls !== undefined) {
      throw new TypeError("apiKey and tls apply to the connection RouterClient opens, not to a transport");
    }
    return { transport: options.transport };
  }
  if (options.address === undefined) {
    throw new TypeError("RouterClient needs an address or a transport");
  }
  const interceptors = options.apiKey === undefined ? [] : [bearerKey(options.apiKey)];
  const tls = options.tls === undefined ? undefined : sessionOptions(options.tls);
  const baseUrl = `${tls === undefined ? "http" : "https"}://${options.address}`;
  const sessions = new CallSessionManager(baseUrl, undefined, tls);
  return { transport: createGrpcTransport({ baseUrl, sessionManager: sessions, interceptors }), sessions };
}
