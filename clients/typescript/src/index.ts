// Connect's public types (CallOptions, Transport, ConnectError) name the Fetch API's
// HeadersInit, which only TypeScript's DOM lib declares (@types/node has Headers but not
// HeadersInit), so the declarations pull that lib in for consumers that leave it out.
/// <reference lib="dom" preserve="true" />
/**
 * A TypeScript client for the llmrouter gRPC service (llmrouter.v1), over
 * Connect's gRPC transport for Node. The generated messages are re-exported
 * as `v1`. RouterClient's `apiKey` is sent on every call and its `tls`
 * (loadTLS reads PEM files) makes the connection TLS, mutual TLS with a
 * client certificate.
 */
export { ChatSession, type ChatMessageInit, type ChatOptions } from "./chat.js";
export { RouterClient, type RouterClientOptions } from "./client.js";
export { ControlChannel } from "./control.js";
export { loadTLS, type TLSFiles, type TLSOptions } from "./credentials.js";
export type { BadRequest, ErrorInfo, FieldViolation, RetryInfo } from "./details.js";
export { RouterError } from "./errors.js";
export { type AttachRequest, Generation, type GenerationResult, type StartRequest } from "./generation.js";
export type { ReconnectPolicy } from "./reconnect.js";
export { Subscription, type AddSubscriptionInit } from "./subscription.js";
export { Code } from "@connectrpc/connect";
export * as v1 from "./v1.js";
