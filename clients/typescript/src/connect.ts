/**
 * connect(): a client over the gateway's WebSocket, with the same API as the
 * Node RouterClient and a connection state for the page to show.
 */
import { BaseClient } from "./base.js";
import type { ReconnectPolicy } from "./reconnect.js";
import type { Connection } from "./socket.js";
import { createWebSocketTransport, type WebSocketTransport, type WebSocketTransportOptions } from "./websocket.js";

/** What connect() takes: where the gateway is, the key, and how to come back after a lost socket. */
export interface ConnectOptions extends WebSocketTransportOptions {
  /** Re-attach generations and subscriptions after a lost socket; see ReconnectPolicy. */
  reconnect?: ReconnectPolicy;
}

/** A client of one llmrouter server over one WebSocket. Call close() when done. */
export class WebSocketClient extends BaseClient {
  /** The socket's state and its changes. */
  readonly connection: Connection;
  readonly #transport: WebSocketTransport;

  constructor(options: ConnectOptions) {
    const transport = createWebSocketTransport(options);
    super(transport, options.reconnect);
    this.#transport = transport;
    this.connection = transport.connection;
  }

  /** Closes the socket for good; calls in flight fail with CANCELED. */
  override close(): void {
    this.#transport.close();
  }
}

/**
 * A client of the gateway at `url` (such as `wss://router.example.com/v1/ws`).
 * The socket opens on the first call (or connection.open()) and is re-opened
 * when lost. Throws a TypeError when there is no WebSocket class (Node
 * without the `WebSocket` option) or the API key is not printable ASCII
 * without spaces.
 */
export function connect(options: ConnectOptions): WebSocketClient {
  return new WebSocketClient(options);
}
