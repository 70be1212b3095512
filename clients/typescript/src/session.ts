/**
 * CallSessionManager: the HTTP/2 session manager a RouterClient opens its own
 * connection with, which ends a call's request side when the call's trailers
 * arrive.
 */
import type { ClientHttp2Stream } from "node:http2";
import { Http2SessionManager } from "@connectrpc/connect-node";

/**
 * An Http2SessionManager that half-closes each call once its trailers arrive.
 *
 * The trailers end a gRPC call. The server may send them, then RST_STREAM with
 * NO_ERROR, while the request side is still open, as it always is on a Generate
 * call, whose caller may steer until the end. Node's HTTP/2 stream then emits
 * 'aborted', and the async iteration Connect reads the response with fails with
 * "Premature close" unless it had already read to the end: events still
 * buffered and the call's status (OK, or the error with its details) are lost.
 * A request side that has ended is not aborted, so the response is read to its
 * end. Requests written after that are dropped, as Connect drops writes to a
 * call the server has closed.
 */
export class CallSessionManager extends Http2SessionManager {
  override async request(...args: Parameters<Http2SessionManager["request"]>): Promise<ClientHttp2Stream> {
    const stream = await super.request(...args);
    stream.once("trailers", () => {
      if (!stream.writableEnded) {
        stream.end();
      }
    });
    return stream;
  }
}
