/**
 * The gateway's frames: JSON objects carrying a call's messages (proto3 JSON)
 * and its end, a google.rpc.Status.
 */
import { createRegistry, fromJson, type JsonValue } from "@bufbuild/protobuf";
import { AnySchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { registry as detailsRegistry } from "./details.js";
import { file_llmrouter_v1_events } from "./gen/llmrouter/v1/events_pb.js";
import { file_llmrouter_v1_generation } from "./gen/llmrouter/v1/generation_pb.js";
import { file_llmrouter_v1_operations } from "./gen/llmrouter/v1/operations_pb.js";
import { file_llmrouter_v1_service } from "./gen/llmrouter/v1/service_pb.js";

/**
 * Every message a frame may name in an `Any` (status details, a command
 * error's details): the contract's own and the google.rpc details.
 */
export const registry = createRegistry(
  file_llmrouter_v1_events,
  file_llmrouter_v1_generation,
  file_llmrouter_v1_operations,
  file_llmrouter_v1_service,
  detailsRegistry,
);

/** A call's end as the gateway sends it: google.rpc.Status in proto3 JSON. */
export interface StatusJson {
  code?: number;
  message?: string;
  details?: JsonValue[];
}

/** A frame from the gateway. */
export interface ServerFrame {
  id?: string;
  message?: JsonValue;
  status?: StatusJson;
  pong?: JsonValue;
}

/** The frame in a WebSocket message's data; undefined for anything but a JSON object in a text frame. */
export function parseFrame(data: unknown): ServerFrame | undefined {
  if (typeof data !== "string") {
    return undefined;
  }
  try {
    const frame: unknown = JSON.parse(data);
    return typeof frame === "object" && frame !== null && !Array.isArray(frame) ? (frame as ServerFrame) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A ConnectError with a final status: its metadata holds the code as gRPC
 * trailers would (grpc-status), which is how RouterError.fromCall tells a
 * status from a connection reset.
 */
export function statusError(message: string, code: Code, details: ConnectError["details"] = []): ConnectError {
  const metadata = new Headers({ "grpc-status": String(code) });
  const error = new ConnectError(message, code, metadata);
  error.details = details;
  return error;
}

/**
 * The error of a status frame, undefined for OK. Its details, JSON `Any`s,
 * become binary details named by type, as the gRPC transport reads them from
 * grpc-status-details-bin, so RouterError decodes them the same way. A detail
 * of a type this client does not know is left out.
 */
export function errorOf(status: StatusJson): ConnectError | undefined {
  const code = status.code ?? 0;
  if (code === 0) {
    return undefined;
  }
  const details: ConnectError["details"] = [];
  for (const json of status.details ?? []) {
    try {
      const any = fromJson(AnySchema, json, { registry, ignoreUnknownFields: true });
      details.push({ type: any.typeUrl.slice(any.typeUrl.lastIndexOf("/") + 1), value: any.value });
    } catch {
      // An unknown type or a malformed detail: the status stands without it.
    }
  }
  const known = code in Code ? (code as Code) : Code.Unknown;
  return statusError(status.message ?? "", known, details);
}
