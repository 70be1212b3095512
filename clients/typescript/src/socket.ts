/**
 * Socket: the one WebSocket a client keeps to the gateway, opened on first
 * use and re-opened when lost, carrying its calls by id.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { bearerProtocol } from "./apikey.js";
import { type ServerFrame, type StatusJson, parseFrame, statusError } from "./frames.js";

/**
 * Where the connection is: `connecting` while its first socket opens (or the
 * first after `closed`); `open`; `reconnecting` after a socket was lost or
 * could not be opened, until one is open (waiting, then opening, again and
 * again); `closed` when there is no socket and none is on its way: before
 * the first call, after close(), or after the server refused the
 * credentials (the next call tries again).
 */
export type ConnectionState = "connecting" | "open" | "reconnecting" | "closed";

/** What a client's connection shows of itself, for a connection indicator. */
export interface Connection {
  readonly state: ConnectionState;
  /** Calls `listener` with each new state; returns the function that stops it. */
  onChange(listener: (state: ConnectionState) => void): () => void;
  /** Opens the socket now rather than on the first call (also cutting short a wait to reconnect). */
  open(): void;
}

/** Handlers that are declared as methods are checked bivariantly, so both the DOM's and the `ws` package's sockets fit. */
type Handler<E> = { handle(event: E): void }["handle"];

/** The part of the WebSocket API this client uses: the browser's, or the `ws` package's. */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: Handler<unknown> | null;
  onmessage: Handler<{ data: unknown }> | null;
  onclose: Handler<{ code: number; reason: string }> | null;
  onerror: Handler<unknown> | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

/** A WebSocket constructor: globalThis.WebSocket in browsers, the `ws` package's in Node. */
export type WebSocketConstructor = new (url: string, protocols: string[]) => WebSocketLike;

/** How a client reaches the gateway. */
export interface SocketOptions {
  /** The gateway's WebSocket URL, such as `wss://router.example.com/v1/ws`. */
  url: string;
  /** Sent as the subprotocol `llmrouter.bearer.<key as base64url>` beside `llmrouter.v1`. */
  apiKey?: string;
  /** The WebSocket class; globalThis.WebSocket by default. */
  WebSocket?: WebSocketConstructor;
  /** The wait before re-opening a lost socket, doubled after each failed attempt; 250 ms by default. */
  backoffMs?: number;
  /** The longest wait before re-opening; 10 s by default. */
  maxBackoffMs?: number;
  /** How often an open socket sends `{"ping": n}`; 15 s by default, 0 for never. */
  pingIntervalMs?: number;
  /** How long a ping may go without any frame from the server before the socket counts as lost; 10 s by default. */
  pingTimeoutMs?: number;
}

/** What the socket tells a call. */
export interface CallSink {
  message(json: NonNullable<ServerFrame["message"]>): void;
  status(status: StatusJson): void;
  /** The socket was lost or closed before the call's status arrived. */
  lost(error: ConnectError): void;
}

/** A call registered on the open socket. */
export interface CallLine {
  readonly id: string;
  /** Sends a frame of this call (its id added) while it is registered. */
  send(fields: Record<string, unknown>): void;
  /** Unregisters the call: frames for it are ignored from now on. */
  done(): void;
}

const OPEN = 1;
const ignore = () => {};
/** The close code of a socket whose first frame did not authenticate it (the gateway's). */
const UNAUTHENTICATED_CLOSE = 4401;

interface Waiter {
  resolve(): void;
  reject(error: ConnectError): void;
}

export class Socket implements Connection {
  readonly #options: SocketOptions;
  readonly #WebSocket: WebSocketConstructor;
  readonly #protocols: string[];
  #state: ConnectionState = "closed";
  readonly #listeners = new Set<(state: ConnectionState) => void>();
  /** The socket being opened or open. */
  #socket: WebSocketLike | undefined;
  #open = false;
  #waiters: Waiter[] = [];
  readonly #calls = new Map<string, CallSink>();
  #nextId = 0;
  /** Failed attempts to open since a socket was last open. */
  #failures = 0;
  #retry: ReturnType<typeof setTimeout> | undefined;
  #pings: ReturnType<typeof setInterval> | undefined;
  #pingDeadline: ReturnType<typeof setTimeout> | undefined;
  #pingCount = 0;
  #closed = false;

  constructor(options: SocketOptions) {
    const WebSocket = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (WebSocket === undefined) {
      throw new TypeError("there is no global WebSocket here: pass the WebSocket option (such as the ws package's)");
    }
    this.#options = options;
    this.#WebSocket = WebSocket;
    this.#protocols = options.apiKey === undefined ? ["llmrouter.v1"] : ["llmrouter.v1", bearerProtocol(options.apiKey)];
  }

  get state(): ConnectionState {
    return this.#state;
  }

  onChange(listener: (state: ConnectionState) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  open(): void {
    if (!this.#closed && this.#socket === undefined) {
      this.#connect();
    }
  }

  /** Closes the socket for good: calls in flight and waiting fail with CANCELED. */
  close(): void {
    if (this.#closed) {
      return;
    }
    this.#closed = true;
    clearTimeout(this.#retry);
    this.#retry = undefined;
    const error = statusError("the client is closed", Code.Canceled);
    if (this.#socket === undefined) {
      this.#fail(error);
      this.#setState("closed");
    } else {
      this.#lose(this.#socket, error, 1000, "closed by the client");
    }
  }

  /**
   * Registers a call on the open socket, opening one first when needed; rejects
   * with UNAVAILABLE when the socket cannot be opened, and with the signal's
   * reason when it aborts first.
   */
  async call(sink: CallSink, signal: AbortSignal): Promise<CallLine> {
    while (!this.#open) {
      await this.#whenOpen(signal);
    }
    const socket = this.#socket as WebSocketLike;
    const id = `c${++this.#nextId}`;
    this.#calls.set(id, sink);
    return {
      id,
      send: (fields) => {
        if (this.#calls.get(id) === sink && socket.readyState === OPEN) {
          socket.send(JSON.stringify({ id, ...fields }));
        }
      },
      done: () => {
        if (this.#calls.get(id) === sink) {
          this.#calls.delete(id);
        }
      },
    };
  }

  #whenOpen(signal: AbortSignal): Promise<void> {
    if (this.#closed) {
      return Promise.reject(statusError("the client is closed", Code.Canceled));
    }
    if (signal.aborted) {
      return Promise.reject(ConnectError.from(signal.reason, Code.Canceled));
    }
    if (this.#socket === undefined && this.#retry === undefined) {
      this.#connect();
    }
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        this.#waiters = this.#waiters.filter((other) => other !== waiter);
        reject(ConnectError.from(signal.reason, Code.Canceled));
      };
      const waiter: Waiter = {
        resolve: () => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        },
        reject: (error) => {
          signal.removeEventListener("abort", onAbort);
          reject(error);
        },
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  #connect(): void {
    clearTimeout(this.#retry);
    this.#retry = undefined;
    let socket: WebSocketLike;
    try {
      socket = new this.#WebSocket(this.#options.url, this.#protocols);
    } catch (error) {
      // A malformed URL: nothing to retry.
      this.#fail(ConnectError.from(error, Code.InvalidArgument));
      this.#setState("closed");
      return;
    }
    this.#socket = socket;
    this.#setState(this.#state === "reconnecting" ? "reconnecting" : "connecting");
    let failure = "";
    socket.onopen = () => {
      this.#open = true;
      this.#failures = 0;
      this.#setState("open");
      this.#startPings(socket);
      const waiters = this.#waiters;
      this.#waiters = [];
      for (const waiter of waiters) {
        waiter.resolve();
      }
    };
    socket.onmessage = (event) => this.#receive(parseFrame(event.data));
    socket.onerror = (event) => {
      // Browsers say nothing about a failure; Node's `ws` names it (such as "Unexpected server response: 401").
      const message = (event as { message?: unknown } | undefined)?.message;
      failure = typeof message === "string" ? message : "";
    };
    socket.onclose = ({ code, reason }) => {
      const opened = this.#open;
      const what = opened ? "the WebSocket was closed" : "the WebSocket could not be opened";
      const why = [`code ${code}`, reason, failure].filter((part) => part !== "").join(", ");
      this.#lose(socket, lossError(`${what} (${why})`, code, failure), code, reason);
    };
  }

  /** Ends `socket`: fails its calls (and the calls waiting for it), then re-opens unless it should not. */
  #lose(socket: WebSocketLike, error: ConnectError, code: number, reason: string): void {
    if (socket !== this.#socket) {
      return;
    }
    // No-ops rather than null: `ws` throws an 'error' event that has no listener.
    socket.onopen = socket.onmessage = socket.onerror = socket.onclose = ignore;
    if (socket.readyState <= OPEN) {
      socket.close(code >= 4000 || code === 1000 ? code : 1000, reason.slice(0, 120));
    }
    this.#stopPings();
    const opened = this.#open;
    this.#socket = undefined;
    this.#open = false;
    const calls = [...this.#calls.values()];
    this.#calls.clear();
    for (const call of calls) {
      call.lost(error);
    }
    this.#fail(error);
    if (this.#closed || error.code !== Code.Unavailable) {
      // Closed by the client, or credentials refused: the next call opens a socket anew.
      this.#failures = 0;
      this.#setState("closed");
      return;
    }
    const { backoffMs = 250, maxBackoffMs = 10_000 } = this.#options;
    const delay = opened ? backoffMs : Math.min(backoffMs * 2 ** this.#failures, maxBackoffMs);
    this.#failures = opened ? 0 : this.#failures + 1;
    // Half the wait or more, so that clients that lost the same server do not all come back at once.
    this.#retry = setTimeout(() => this.#connect(), delay / 2 + (Math.random() * delay) / 2);
    this.#setState("reconnecting");
  }

  /** Rejects the calls waiting for a socket. */
  #fail(error: ConnectError): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiters) {
      waiter.reject(error);
    }
  }

  #receive(frame: ServerFrame | undefined): void {
    // Any frame shows the server is there.
    clearTimeout(this.#pingDeadline);
    this.#pingDeadline = undefined;
    if (frame === undefined || typeof frame.id !== "string") {
      return;
    }
    const call = this.#calls.get(frame.id);
    if (call === undefined) {
      return;
    }
    if (frame.message !== undefined && frame.message !== null) {
      call.message(frame.message);
    }
    if (frame.status !== undefined) {
      this.#calls.delete(frame.id);
      call.status(frame.status);
    }
  }

  /**
   * Browsers answer the server's WebSocket pings but cannot send their own or
   * see a silent peer: an app-level ping that gets no frame back in time
   * counts the socket as lost.
   */
  #startPings(socket: WebSocketLike): void {
    const { pingIntervalMs = 15_000, pingTimeoutMs = 10_000 } = this.#options;
    if (pingIntervalMs <= 0) {
      return;
    }
    this.#pings = setInterval(() => {
      if (this.#pingDeadline !== undefined) {
        return;
      }
      if (socket.readyState !== OPEN) {
        return;
      }
      socket.send(JSON.stringify({ ping: ++this.#pingCount }));
      this.#pingDeadline = setTimeout(() => {
        const message = `the server did not answer a ping within ${pingTimeoutMs} ms`;
        this.#lose(socket, new ConnectError(message, Code.Unavailable), 4000, "no answer to a ping");
      }, pingTimeoutMs);
    }, pingIntervalMs);
  }

  #stopPings(): void {
    clearInterval(this.#pings);
    clearTimeout(this.#pingDeadline);
    this.#pings = this.#pingDeadline = undefined;
  }

  #setState(state: ConnectionState): void {
    if (state === this.#state) {
      return;
    }
    this.#state = state;
    for (const listener of [...this.#listeners]) {
      try {
        listener(state);
      } catch (error) {
        // A failing listener is reported as uncaught without stopping the socket's work.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}

/**
 * The error the calls of a lost socket end with: UNAUTHENTICATED for refused
 * credentials (the gateway's close code 4401, or an HTTP 401 that Node's `ws`
 * names; browsers cannot tell a refused upgrade from a network failure),
 * PERMISSION_DENIED for an HTTP 403 (an origin the gateway does not allow),
 * otherwise UNAVAILABLE.
 */
function lossError(message: string, code: number, failure: string): ConnectError {
  const status = /Unexpected server response: (\d+)/.exec(failure)?.[1];
  if (code === UNAUTHENTICATED_CLOSE || status === "401") {
    return statusError(message, Code.Unauthenticated);
  }
  if (status === "403") {
    return statusError(message, Code.PermissionDenied);
  }
  return new ConnectError(message, Code.Unavailable);
}
