/**
 * What a RouterClient presents to its server: an API key on every call and
 * TLS settings for the connection it opens.
 *
 * The key travels as `authorization: Bearer <key>` request metadata, set by a
 * Connect interceptor, over TLS and over plaintext alike, as the Python and Go
 * clients send it.
 */
import { readFile } from "node:fs/promises";
import type { SecureClientSessionOptions } from "node:http2";
import type { Interceptor } from "@connectrpc/connect";
import { checkKey } from "./apikey.js";

/** TLS for the connection a RouterClient opens: PEM contents, as Node's tls options take them. */
export interface TLSOptions {
  /** Root certificates the server's certificate must chain to; Node's default roots when absent. */
  ca?: string | Buffer;
  /** This client's certificate chain, for a server that asks for one (mutual TLS); needs `key`. */
  cert?: string | Buffer;
  /** The private key of `cert`. */
  key?: string | Buffer;
  /** The name the server's certificate must carry (also sent as SNI), when not the address's host. */
  serverName?: string;
}

/** Paths of PEM files for loadTLS; each field as in TLSOptions. */
export interface TLSFiles {
  ca?: string;
  cert?: string;
  key?: string;
  serverName?: string;
}

/** Reads the PEM files into TLSOptions; a file that cannot be read rejects the promise. */
export async function loadTLS(files: TLSFiles): Promise<TLSOptions> {
  const read = (path: string | undefined) => (path === undefined ? undefined : readFile(path));
  const [ca, cert, key] = await Promise.all([read(files.ca), read(files.cert), read(files.key)]);
  return { ca, cert, key, serverName: files.serverName };
}

/** The options Node's http2.connect takes for `tls`; throws on a certificate without its key. */
export function sessionOptions(tls: TLSOptions): SecureClientSessionOptions {
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    throw new TypeError("tls needs both cert and key (mutual TLS), or neither");
  }
  const options: SecureClientSessionOptions = {};
  if (tls.ca !== undefined) options.ca = tls.ca;
  if (tls.cert !== undefined) options.cert = tls.cert;
  if (tls.key !== undefined) options.key = tls.key;
  if (tls.serverName !== undefined) options.servername = tls.serverName;
  return options;
}

/**
 * The interceptor that sets `authorization: Bearer <key>` on every call.
 * Throws a TypeError, without the key, when the key is empty or not
 * printable ASCII without spaces.
 */
export function bearerKey(key: string): Interceptor {
  const value = `Bearer ${checkKey(key)}`;
  return (next) => (request) => {
    request.header.set("authorization", value);
    return next(request);
  };
}
