// Connect's public types (CallOptions, Transport, ConnectError) name the Fetch API's
// HeadersInit, which only TypeScript's DOM lib declares (@types/node has Headers but not
// HeadersInit), so the declarations pull that lib in for consumers that leave it out.
/// <reference lib="dom" preserve="true" />
/**
 * A TypeScript client for the llmrouter gRPC service (llmrouter.v1), over
 * Connect's gRPC transport for Node. The generated messages are re-exported
 * as `v1`. RouterClient's `apiKey` is sent on every call and its `tls`
 * (loadTLS reads PEM files) makes the connection TLS, mutual TLS with a
 * client certificate. connect() reaches the gateway's WebSocket instead, as
 * the browser entry does.
 */
export * from "./common.js";
export { RouterClient, type RouterClientOptions } from "./client.js";
export { loadTLS, type TLSFiles, type TLSOptions } from "./credentials.js";
