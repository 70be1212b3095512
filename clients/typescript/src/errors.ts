/**
 * RouterError: a failed call or command with its gRPC code and the decoded
 * status details.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import {
  type BadRequest,
  BadRequestSchema,
  type ErrorInfo,
  ErrorInfoSchema,
  type RetryInfo,
  RetryInfoSchema,
} from "./details.js";
import { type AttemptFailed, type RouteFailure, RouteFailureSchema } from "./gen/llmrouter/v1/events_pb.js";
import type { CommandError, SubscriptionEnded } from "./gen/llmrouter/v1/operations_pb.js";

/**
 * A failed call or command: a ConnectError (so `code`, `rawMessage` and
 * `metadata` work as usual) with the server's ErrorInfo, BadRequest, RetryInfo
 * and RouteFailure decoded. A command refused in-band carries the same details
 * as a failed call. `code` uses Connect's Code enum, whose numbers are the
 * gRPC status codes.
 */
export class RouterError extends ConnectError {
  // The name stays "ConnectError": ConnectError's instanceof recognises
  // subclasses by it. Its instanceof also accepts any error shaped like a
  // ConnectError, so this brand keeps `instanceof RouterError` to RouterErrors.
  readonly #brand = true;
  /** The ErrorInfo detail (domain "llmrouter.v1"), if the server sent one. */
  readonly errorInfo: ErrorInfo | undefined;
  /** The invalid request fields, if any. */
  readonly badRequest: BadRequest | undefined;
  /** How long the server asks the caller to wait, if it said. */
  readonly retryInfo: RetryInfo | undefined;
  /** Every failed attempt of a generation that failed on its route, if it did. */
  readonly routeFailure: RouteFailure | undefined;

  constructor(error: ConnectError) {
    super(error.rawMessage, error.code, error.metadata, undefined, error.cause);
    this.details = error.details;
    this.errorInfo = error.findDetails(ErrorInfoSchema)[0];
    this.badRequest = error.findDetails(BadRequestSchema)[0];
    this.retryInfo = error.findDetails(RetryInfoSchema)[0];
    this.routeFailure = error.findDetails(RouteFailureSchema)[0];
  }

  /** The gRPC name of the code, such as "NOT_FOUND". */
  get codeName(): string {
    return Code[this.code].replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
  }

  /** The stable ErrorInfo reason, such as "NOT_FOUND"; "" when absent. */
  get reason(): string {
    return this.errorInfo?.reason ?? "";
  }

  /** The request field at fault, such as "start.model"; "" when unknown. */
  get field(): string {
    return this.errorInfo?.metadata["field"] ?? "";
  }

  /** The generation the error belongs to; "" when unknown. */
  get streamId(): string {
    return this.errorInfo?.metadata["stream_id"] ?? "";
  }

  /** The offset the next event would have had; undefined when unknown. */
  get offset(): bigint | undefined {
    const offset = this.errorInfo?.metadata["offset"];
    return offset === undefined ? undefined : BigInt(offset);
  }

  /** The wait the server asks for before a retry, in milliseconds; 0 when none. */
  get retryDelayMs(): number {
    const delay = this.retryInfo?.retryDelay;
    return delay === undefined ? 0 : Number(delay.seconds) * 1000 + delay.nanos / 1e6;
  }

  /** The route's failed attempts, oldest first; empty without a RouteFailure detail. */
  get attempts(): AttemptFailed[] {
    return this.routeFailure?.attempts ?? [];
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === "object" && value !== null && #brand in value;
  }

  /** Converts anything a call threw (Connect errors, aborts, ...) into a RouterError. */
  static override from(error: unknown): RouterError {
    return error instanceof RouterError ? error : new RouterError(ConnectError.from(error));
  }

  /**
   * Converts what a call threw, knowing the call's AbortSignal. A call that
   * Node's HTTP/2 stack ended with CANCELED although nobody aborted it and the
   * server sent no status lost its connection, and one whose connection failed
   * its TLS handshake (which Connect reports as INTERNAL) never reached the
   * server: both become UNAVAILABLE, as gRPC reports them in other languages.
   */
  static fromCall(error: unknown, signal: AbortSignal): RouterError {
    const failure = RouterError.from(error);
    const message = signal.aborted ? undefined : connectionFailure(failure);
    if (message === undefined) {
      return failure;
    }
    return new RouterError(new ConnectError(message, Code.Unavailable, undefined, undefined, failure));
  }

  /**
   * A command the server refused in-band (Control), or a failed subscription,
   * with its details decoded as a failed call's are: `reason` is the ErrorInfo
   * reason (NOT_FOUND for an unknown stream id), `streamId` the generation,
   * `badRequest` the invalid fields.
   */
  static fromCommandError(error: CommandError): RouterError {
    const failure = new ConnectError(error.message, error.code as Code);
    // As the gRPC transport reads a status's details: the type name after the last "/".
    failure.details = error.details.map(({ typeUrl, value }) => ({
      type: typeUrl.slice(typeUrl.lastIndexOf("/") + 1),
      value,
    }));
    return new RouterError(failure);
  }

  /**
   * Why a subscription ended: undefined when it was removed or its generation
   * finished (a cancelled one included: its completed event says who cancelled
   * it), otherwise the code, message and details the server gave (NOT_FOUND for
   * an unknown stream id, the generation's error when it failed, ...).
   */
  static fromEnded(ended: SubscriptionEnded): RouterError | undefined {
    const error = ended.error;
    return error === undefined || error.code === 0 ? undefined : RouterError.fromCommandError(error);
  }
}

/** The UNAVAILABLE message for a call that lost its connection or never had one; undefined otherwise. */
function connectionFailure(error: ConnectError): string | undefined {
  if (lostConnection(error)) {
    return `the connection was lost: ${error.rawMessage}`;
  }
  const tls = tlsFailure(error);
  return tls === undefined ? undefined : `the TLS handshake failed (${tls}): ${error.rawMessage.trim()}`;
}

/**
 * The code of the TLS error Node failed a connection with (ERR_TLS_*, ERR_SSL_*
 * or an X.509 verification code such as UNABLE_TO_VERIFY_LEAF_SIGNATURE), for
 * an INTERNAL error without a status from the server; undefined otherwise.
 */
function tlsFailure(error: ConnectError): string | undefined {
  const code: unknown = (error.cause as { code?: unknown } | undefined)?.code;
  if (error.code !== Code.Internal || error.metadata.has("grpc-status") || typeof code !== "string") {
    return undefined;
  }
  return TLS_ERROR.test(code) ? code : undefined;
}

/** Node's TLS error codes and OpenSSL's X.509 verification codes (Node's tls docs list them). */
const TLS_ERROR =
  /^(ERR_TLS_|ERR_SSL_|UNABLE_TO_|CERT_|CRL_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|ERROR_IN_C|INVALID_CA|INVALID_PURPOSE|PATH_LENGTH_EXCEEDED|HOSTNAME_MISMATCH)/;

/** True for a call reset by the transport: CANCELED with no grpc-status from the server. */
function lostConnection(error: ConnectError): boolean {
  return error.code === Code.Canceled && !error.metadata.has("grpc-status");
}
