/**
 * The API key check shared by the gRPC metadata and the WebSocket subprotocol
 * that carry it (no Node built-ins: the browser entry uses it).
 */

/** Returns `key`; throws a TypeError, without the key, unless it is printable ASCII without spaces. */
export function checkKey(key: string): string {
  if (!/^[\x21-\x7e]+$/.test(key)) {
    throw new TypeError("the API key must be printable ASCII without spaces or newlines");
  }
  return key;
}

/** The WebSocket subprotocol that carries `key`: `llmrouter.bearer.` and the key as base64url without padding. */
export function bearerProtocol(key: string): string {
  const encoded = btoa(checkKey(key)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  return `llmrouter.bearer.${encoded}`;
}
