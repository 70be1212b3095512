/**
 * For the credential tests: a throwaway certificate authority (made with the
 * `openssl` command, which Node cannot replace) and an in-process gRPC server
 * (Connect's Node adapter) that records the authorization metadata and the TLS
 * peer of every call and can refuse calls with a status, as the server's auth
 * interceptor does.
 */
import { execFile } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import * as http2 from "node:http2";
import { tmpdir } from "node:os";
import path from "node:path";
import type { TLSSocket } from "node:tls";
import { promisify } from "node:util";
import { type ConnectError, type ConnectRouter, createContextKey, createContextValues, type HandlerContext } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { v1 } from "../src/index.js";
import { RouterService } from "../src/gen/llmrouter/v1/service_pb.js";

const run = promisify(execFile);

/** A certificate and its private key, PEM. */
export interface Issued {
  cert: Buffer;
  key: Buffer;
}

/** A certificate authority in a temporary folder; `remove` deletes it. */
export class Authority {
  /** The authority's certificate, the root clients and servers trust. */
  pem = Buffer.alloc(0);
  #dir = "";

  static async create(name: string): Promise<Authority> {
    const authority = new Authority();
    authority.#dir = await mkdtemp(path.join(tmpdir(), "llmrouter-pki-"));
    // An empty configuration: no default extensions, only the ones given.
    await writeFile(authority.#file("openssl.cnf"), "[req]\ndistinguished_name = dn\n[dn]\n");
    await authority.#openssl(name, "ca", ["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"]);
    authority.pem = await readFile(authority.#file("ca.pem"));
    return authority;
  }

  /** A certificate for servers and clients alike, for `names` ("IP:127.0.0.1", "DNS:host"). */
  async issue(commonName: string, names: string[] = []): Promise<Issued> {
    const base = `leaf-${commonName}`;
    const extensions = ["-addext", "extendedKeyUsage=serverAuth,clientAuth"];
    if (names.length > 0) {
      extensions.push("-addext", `subjectAltName=${names.join(",")}`);
    }
    await this.#openssl(commonName, base, ["-CA", this.#file("ca.pem"), "-CAkey", this.#file("ca.key"), ...extensions]);
    return { cert: await readFile(this.#file(`${base}.pem`)), key: await readFile(this.#file(`${base}.key`)) };
  }

  /** Writes `data` to a file in the authority's folder and returns its path. */
  async write(name: string, data: string | Buffer): Promise<string> {
    await writeFile(this.#file(name), data);
    return this.#file(name);
  }

  remove(): Promise<void> {
    return rm(this.#dir, { recursive: true, force: true });
  }

  #file(name: string): string {
    return path.join(this.#dir, name);
  }

  async #openssl(commonName: string, base: string, extra: string[]): Promise<void> {
    const args = ["req", "-config", this.#file("openssl.cnf"), "-x509", "-days", "1", "-nodes"];
    args.push("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-subj", `/CN=${commonName}`);
    args.push("-keyout", this.#file(`${base}.key`), "-out", this.#file(`${base}.pem`), ...extra);
    await run("openssl", args);
  }
}

/** What one call carried. */
export interface Call {
  method: string;
  /** The authorization header, "" when absent. */
  authorization: string;
  /** "tls" or "insecure". */
  security: string;
  /** The client certificate's common name, "" when none. */
  clientName: string;
}

const PEER = createContextKey({ security: "insecure", clientName: "" }, { description: "the TLS peer" });

/** The server's TLS: its certificate, and with `clientCA`, mutual TLS. */
export interface ServerTLS extends Issued {
  clientCA?: Buffer;
}

/** Answers ListModels and Generate on a loopback port, recording every call. */
export class RecordingServer {
  /** host:port on 127.0.0.1. */
  address = "";
  readonly calls: Call[] = [];
  /** An error every call ends with after it is recorded, if set. */
  refusal: ConnectError | undefined;
  readonly #sessions = new Set<http2.ServerHttp2Session>();
  #server: http2.Http2Server | undefined;

  async start(tls?: ServerTLS): Promise<this> {
    const handler = connectNodeAdapter({
      grpcWeb: false,
      connect: false,
      routes: (router: ConnectRouter) => this.#routes(router),
      contextValues: (request) => {
        const socket = request.socket as Partial<TLSSocket>;
        const values = createContextValues();
        if (socket.encrypted === true && socket.getPeerCertificate !== undefined) {
          const name = socket.getPeerCertificate().subject?.CN ?? "";
          values.set(PEER, { security: "tls", clientName: Array.isArray(name) ? name.join(",") : name });
        }
        return values;
      },
    });
    const server =
      tls === undefined
        ? http2.createServer(handler)
        : http2.createSecureServer(
            { cert: tls.cert, key: tls.key, ca: tls.clientCA, requestCert: tls.clientCA !== undefined, rejectUnauthorized: true },
            handler,
          );
    server.on("session", (session) => {
      this.#sessions.add(session);
      session.once("close", () => this.#sessions.delete(session));
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const bound = server.address();
    if (bound === null || typeof bound === "string") {
      throw new Error("the server has no port");
    }
    this.address = `127.0.0.1:${bound.port}`;
    this.#server = server;
    return this;
  }

  async stop(): Promise<void> {
    for (const session of this.#sessions) {
      session.destroy();
    }
    const server = this.#server;
    if (server !== undefined) {
      await new Promise((resolve) => server.close(resolve));
    }
  }

  #routes(router: ConnectRouter): void {
    const record = (method: string, context: HandlerContext) => this.#record(method, context);
    router.service(RouterService, {
      listModels: (_request, context) => {
        record("ListModels", context);
        return { routes: [{ name: "fake", isDefault: true }] };
      },
      async *generate(requests, context) {
        record("Generate", context);
        await requests[Symbol.asyncIterator]().next();
        yield { event: { kind: { case: "chunk", value: { text: "hi" } } } };
        yield { event: { offset: 1n, kind: { case: "completed", value: { finishReason: v1.FinishReason.STOP } } } };
      },
    });
  }

  #record(method: string, context: HandlerContext): void {
    const peer = context.values.get(PEER);
    this.calls.push({ method, authorization: context.requestHeader.get("authorization") ?? "", ...peer });
    if (this.refusal !== undefined) {
      throw this.refusal;
    }
  }
}
