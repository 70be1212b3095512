// Connect's public types name the Fetch API's HeadersInit, which only
// TypeScript's DOM lib declares; a browser project has it anyway.
/// <reference lib="dom" preserve="true" />
/**
 * The browser entry point (`@llmrouter/client/browser`): connect() to the
 * gateway's WebSocket and the same client API as the Node entry. Nothing
 * reachable from here imports a Node built-in or Connect's Node transport.
 */
export * from "./common.js";
