/**
 * A Connect Transport over the gateway's WebSocket protocol (llmrouter.v1):
 * every call of a client on one socket, by call id, its messages in proto3
 * JSON. It needs no Node built-in, so browsers can use it.
 */
import {
  type DescMessage,
  type DescMethodStreaming,
  type DescMethodUnary,
  fromJson,
  type MessageInitShape,
  type MessageShape,
  toJson,
} from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ContextValues,
  createContextValues,
  type Interceptor,
  type StreamResponse,
  type Transport,
  type UnaryResponse,
} from "@connectrpc/connect";
import { runStreamingCall, runUnaryCall } from "@connectrpc/connect/protocol";
import { errorOf, registry } from "./frames.js";
import { AsyncQueue } from "./queue.js";
import { type CallLine, type Connection, Socket, type SocketOptions } from "./socket.js";

/** How the transport reaches the gateway. */
export interface WebSocketTransportOptions extends SocketOptions {
  /** Connect interceptors, run around every call (request headers are not sent: the protocol has none). */
  interceptors?: Interceptor[];
}

/** A Transport that also shows and closes its socket. */
export interface WebSocketTransport extends Transport {
  /** The socket's state, for a connection indicator. */
  readonly connection: Connection;
  /** Closes the socket for good; calls in flight fail with CANCELED. */
  close(): void;
}

/**
 * A Transport whose calls share one WebSocket to the gateway (`url`, such as
 * `wss://router.example.com/v1/ws`), opened on the first call and re-opened
 * with a capped exponential backoff when lost. Calls in flight when a socket
 * is lost fail with UNAVAILABLE, as gRPC calls on a dropped connection do, so
 * a ReconnectPolicy re-attaches them. A call's status becomes a ConnectError
 * with the gRPC code and the binary details RouterError decodes.
 *
 * A call's responses wait in memory until they are read: the socket cannot
 * stop one call without stopping all. Use CREDIT flow to bound them.
 */
export function createWebSocketTransport(options: WebSocketTransportOptions): WebSocketTransport {
  const socket = new Socket(options);
  const { interceptors, url } = options;
  const request = <I extends DescMessage, O extends DescMessage, M>(
    method: DescMethodUnary<I, O> | DescMethodStreaming<I, O>,
    header: HeadersInit | undefined,
    contextValues: ContextValues | undefined,
    message: M,
  ) => ({
    service: method.parent,
    requestMethod: "POST",
    url: `${url}#${method.parent.typeName}/${method.name}`,
    header: new Headers(header),
    contextValues: contextValues ?? createContextValues(),
    message,
  });
  return {
    connection: socket,
    close: () => socket.close(),

    unary<I extends DescMessage, O extends DescMessage>(
      method: DescMethodUnary<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: HeadersInit | undefined,
      input: MessageInitShape<I>,
      contextValues?: ContextValues,
    ): Promise<UnaryResponse<I, O>> {
      return runUnaryCall<I, O>({
        interceptors,
        signal,
        timeoutMs,
        req: { stream: false, method, ...request(method, header, contextValues, input) },
        next: async (req) => {
          const response = await call(socket, method, { single: req.message }, req.signal, () => {});
          let message: MessageShape<O> | undefined;
          for await (const received of response) {
            if (message !== undefined) {
              throw new ConnectError("protocol error: more than one response to a unary call", Code.Internal);
            }
            message = received;
          }
          if (message === undefined) {
            throw new ConnectError("protocol error: no response to a unary call", Code.Internal);
          }
          return { stream: false, service: method.parent, method, header: new Headers(), trailer: new Headers(), message };
        },
      });
    },

    stream<I extends DescMessage, O extends DescMessage>(
      method: DescMethodStreaming<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: HeadersInit | undefined,
      input: AsyncIterable<MessageInitShape<I>>,
      contextValues?: ContextValues,
    ): Promise<StreamResponse<I, O>> {
      // The caller's own request iterable, told at once when the call ends
      // (as Connect tells it when a call is aborted): a request queue then
      // stops taking messages the call can no longer send.
      const stopInput = () => void input[Symbol.asyncIterator]().return?.()?.catch(() => {});
      return runStreamingCall<I, O>({
        interceptors,
        signal,
        timeoutMs,
        req: { stream: true, method, ...request(method, header, contextValues, input) },
        next: async (req) => {
          const message = await call(socket, method, { stream: req.message }, req.signal, stopInput);
          return { stream: true, service: method.parent, method, header: new Headers(), trailer: new Headers(), message };
        },
      });
    },
  };
}

/** A unary call's one request, or a streaming call's requests. */
type Requests<I extends DescMessage> = { single: MessageShape<I> } | { stream: AsyncIterable<MessageShape<I>> };

/**
 * Runs one call on the socket: sends its requests as they come, then `end`;
 * resolves to its responses, which end with its status (throwing its error).
 * An aborted signal sends `cancel`.
 */
async function call<I extends DescMessage, O extends DescMessage>(
  socket: Socket,
  method: DescMethodUnary<I, O> | DescMethodStreaming<I, O>,
  requests: Requests<I>,
  signal: AbortSignal,
  stopInput: () => void,
): Promise<AsyncIterable<MessageShape<O>>> {
  const responses = new AsyncQueue<MessageShape<O>>();
  let line: CallLine | undefined;
  // Opened: its first frame is sent, so the gateway knows the id. Ended: its
  // status came, it was lost or given up; nothing more is sent.
  const progress = { opened: false, ended: false };
  const end = (error?: ConnectError) => {
    if (!progress.ended) {
      progress.ended = true;
      signal.removeEventListener("abort", abort);
      line?.done();
      stopInput();
      responses.close(error);
    }
  };
  const abort = () => {
    if (progress.opened && !progress.ended) {
      line?.send({ cancel: true });
    }
    end(ConnectError.from(signal.reason, Code.Canceled));
  };
  line = await socket.call(
    {
      message: (json) => {
        try {
          responses.push(fromJson(method.output, json, { registry, ignoreUnknownFields: true }));
        } catch (error) {
          line?.send({ cancel: true });
          const message = `protocol error: a response that is not a ${method.output.typeName}`;
          end(new ConnectError(message, Code.Internal, undefined, undefined, error));
        }
      },
      status: (status) => end(errorOf(status)),
      lost: (error) => end(error),
    },
    signal,
  );
  if (signal.aborted) {
    abort();
  } else {
    signal.addEventListener("abort", abort, { once: true });
    void pump(line, method, requests, progress, end);
  }
  return responses;
}

/**
 * Sends the call's requests, the first with its method, then `end` (on the
 * one frame of a unary call: a later one could reach the gateway after the
 * call's status, when the id names no call); a failing request iterable
 * cancels the call.
 */
async function pump<I extends DescMessage>(
  line: CallLine,
  method: DescMethodUnary<I, DescMessage> | DescMethodStreaming<I, DescMessage>,
  requests: Requests<I>,
  progress: { opened: boolean; ended: boolean },
  end: (error: ConnectError) => void,
): Promise<void> {
  const send = (fields: Record<string, unknown>) => {
    line.send(progress.opened ? fields : { method: method.name, ...fields });
    progress.opened = true;
  };
  try {
    if ("single" in requests) {
      send({ message: toJson(method.input, requests.single, { registry }), end: true });
      return;
    }
    for await (const request of requests.stream) {
      if (progress.ended) {
        return;
      }
      send({ message: toJson(method.input, request, { registry }) });
    }
    if (!progress.ended) {
      send({ end: true });
    }
  } catch (error) {
    if (!progress.ended) {
      if (progress.opened) {
        line.send({ cancel: true });
      }
      end(ConnectError.from(error));
    }
  }
}
