/**
 * API keys and TLS, against an in-process server that records what each call
 * carried (the server side of authentication is not wired yet). The Python
 * and Go clients have the same tests.
 */
import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { loadTLS, RouterClient, type RouterClientOptions } from "../src/index.js";
import { failure } from "./helpers.js";
import { Authority, type Call, type Issued, RecordingServer, type ServerTLS } from "./recording.js";

const KEY = "k-3f9a";

let authority: Authority;
let serverCert: Issued;
const open: { servers: RecordingServer[]; clients: RouterClient[] } = { servers: [], clients: [] };

before(async () => {
  authority = await Authority.create("llmrouter test CA");
  serverCert = await authority.issue("llmrouter server", ["IP:127.0.0.1", "DNS:localhost"]);
});

after(() => authority.remove());

afterEach(async () => {
  for (const client of open.clients.splice(0)) {
    client.close();
  }
  await Promise.all(open.servers.splice(0).map((server) => server.stop()));
});

async function serve(tls?: ServerTLS): Promise<RecordingServer> {
  const server = await new RecordingServer().start(tls);
  open.servers.push(server);
  return server;
}

function connect(address: string, options: Omit<RouterClientOptions, "address"> = {}): RouterClient {
  const client = new RouterClient({ address, ...options });
  open.clients.push(client);
  return client;
}

/** A unary and a streaming call; the streaming one's text. */
async function listAndGenerate(client: RouterClient): Promise<string> {
  await client.listModels();
  return (await client.generate({ prompt: "hi" }).result()).text;
}

function call(method: string, authorization: string, security = "insecure", clientName = ""): Call {
  return { method, authorization, security, clientName };
}

describe("api key", () => {
  it("goes with unary and streaming calls", async () => {
    const server = await serve();

    const text = await listAndGenerate(connect(server.address, { apiKey: KEY }));

    assert.equal(text, "hi");
    assert.deepEqual(server.calls, [call("ListModels", `Bearer ${KEY}`), call("Generate", `Bearer ${KEY}`)]);
  });

  it("is not sent when not given", async () => {
    const server = await serve();

    await listAndGenerate(connect(server.address));

    assert.deepEqual(server.calls, [call("ListModels", ""), call("Generate", "")]);
  });

  for (const code of [Code.Unauthenticated, Code.PermissionDenied]) {
    it(`refused with ${Code[code]} is a RouterError with that code`, async () => {
      const server = await serve();
      server.refusal = new ConnectError("the key is not allowed", code);
      const client = connect(server.address, { apiKey: KEY });

      const unary = await failure(client.listModels());
      const streaming = await failure(client.generate({ prompt: "hi" }).result());

      for (const error of [unary, streaming]) {
        assert.equal(error.code, code);
        assert.equal(error.rawMessage, "the key is not allowed");
      }
    });
  }

  for (const key of ["", "two words", "trailing-newline\n", "café"]) {
    it(`${JSON.stringify(key)} cannot be metadata: a TypeError that leaves it out`, () => {
      assert.throws(
        () => new RouterClient({ address: "127.0.0.1:1", apiKey: key }),
        (error: unknown) => error instanceof TypeError && (key.trim() === "" || !error.message.includes(key.trim())),
      );
    });
  }
});

describe("tls", () => {
  it("trusts the given authority", async () => {
    const server = await serve(serverCert);

    const text = await listAndGenerate(connect(server.address, { apiKey: KEY, tls: { ca: authority.pem } }));

    assert.equal(text, "hi");
    assert.deepEqual(server.calls, [call("ListModels", `Bearer ${KEY}`, "tls"), call("Generate", `Bearer ${KEY}`, "tls")]);
  });

  it("presents the client certificate to a server that asks for one, and fails without", async () => {
    const server = await serve({ ...serverCert, clientCA: authority.pem });
    const client = await authority.issue("client-7");

    const refused = await failure(connect(server.address, { tls: { ca: authority.pem } }).listModels());
    await connect(server.address, { tls: { ca: authority.pem, ...client } }).listModels();

    assert.equal(refused.code, Code.Unavailable);
    assert.match(refused.rawMessage, /^the TLS handshake failed \(ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED\): /);
    assert.deepEqual(server.calls, [call("ListModels", "", "tls", "client-7")]);
  });

  it("does not trust a server from another authority", async () => {
    const other = await Authority.create("another CA");
    try {
      const server = await serve(serverCert);

      const refused = await failure(connect(server.address, { tls: { ca: other.pem } }).listModels());

      assert.equal(refused.code, Code.Unavailable);
      assert.equal(refused.rawMessage, "the TLS handshake failed (UNABLE_TO_VERIFY_LEAF_SIGNATURE): unable to verify the first certificate");
      assert.deepEqual(server.calls, []);
    } finally {
      await other.remove();
    }
  });

  it("checks the certificate for serverName instead of the address's host", async () => {
    const server = await serve(await authority.issue("llmrouter server", ["DNS:router.internal"]));

    const refused = await failure(connect(server.address, { tls: { ca: authority.pem } }).listModels());
    await connect(server.address, { tls: { ca: authority.pem, serverName: "router.internal" } }).listModels();

    assert.equal(refused.code, Code.Unavailable);
    assert.match(refused.rawMessage, /^the TLS handshake failed \(ERR_TLS_CERT_ALTNAME_INVALID\): /);
    assert.deepEqual(server.calls, [call("ListModels", "", "tls")]);
  });

  it("loadTLS reads the PEM files", async () => {
    const client = await authority.issue("client-7");
    const files = {
      ca: await authority.write("ca-copy.pem", authority.pem),
      cert: await authority.write("client.pem", client.cert),
      key: await authority.write("client.key", client.key),
    };

    const tls = await loadTLS({ ...files, serverName: "router.internal" });

    assert.deepEqual(tls, { ca: authority.pem, cert: client.cert, key: client.key, serverName: "router.internal" });
  });

  it("needs both cert and key, or neither", () => {
    assert.throws(() => new RouterClient({ address: "127.0.0.1:1", tls: { cert: "x" } }), TypeError);
    assert.throws(() => new RouterClient({ address: "127.0.0.1:1", tls: { key: "x" } }), TypeError);
  });
});

describe("a transport of one's own", () => {
  for (const options of [{ apiKey: KEY }, { tls: {} }]) {
    it(`takes no ${Object.keys(options)[0]}`, () => {
      const transport = createGrpcTransport({ baseUrl: "http://127.0.0.1:1" });
      assert.throws(() => new RouterClient({ transport, ...options }), TypeError);
    });
  }
});
