/**
 * What both entry points export: the client API, which needs no Node built-in.
 */
export { BaseClient } from "./base.js";
export { ChatSession, type ChatMessageInit, type ChatOptions } from "./chat.js";
export { ControlChannel } from "./control.js";
export type { BadRequest, ErrorInfo, FieldViolation, RetryInfo } from "./details.js";
export { RouterError } from "./errors.js";
export { type AttachRequest, Generation, type GenerationResult, type StartRequest } from "./generation.js";
export type { ReconnectPolicy } from "./reconnect.js";
export type { Connection, ConnectionState, SocketOptions, WebSocketConstructor, WebSocketLike } from "./socket.js";
export { Subscription, type AddSubscriptionInit } from "./subscription.js";
export { connect, type ConnectOptions, WebSocketClient } from "./connect.js";
export { createWebSocketTransport, type WebSocketTransport, type WebSocketTransportOptions } from "./websocket.js";
export { Code } from "@connectrpc/connect";
export * as v1 from "./v1.js";
