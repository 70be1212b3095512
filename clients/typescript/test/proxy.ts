/**
 * A loopback TCP proxy in front of the test server, so a test can drop every
 * connection at once, as a failing network or a restarting load balancer
 * does, or stall them, as a dead peer does, while new connections still get
 * through.
 */
import { once } from "node:events";
import { connect, createServer, type Server, type Socket } from "node:net";

export class Proxy {
  /** host:port clients connect to. */
  address = "";
  /** Connections accepted so far. */
  connections = 0;
  readonly #server: Server;
  readonly #open = new Set<Socket>();
  readonly #pairs = new Map<Socket, Socket>();

  constructor(target: string) {
    const [host = "127.0.0.1", port = "0"] = target.split(":");
    this.#server = createServer((client) => {
      this.connections += 1;
      const server = connect(Number(port), host);
      for (const [from, to] of [
        [client, server],
        [server, client],
      ] as const) {
        this.#open.add(from);
        this.#pairs.set(from, to);
        from.pipe(to);
        from.on("error", () => to.destroy());
        from.on("close", () => {
          this.#open.delete(from);
          this.#pairs.delete(from);
          to.destroy();
        });
      }
    });
  }

  async start(): Promise<this> {
    this.#server.listen(0, "127.0.0.1");
    await once(this.#server, "listening");
    const bound = this.#server.address();
    if (bound === null || typeof bound === "string") {
      throw new Error("the proxy has no port");
    }
    this.address = `127.0.0.1:${bound.port}`;
    return this;
  }

  /** Closes every relayed connection, on both sides. */
  drop(): void {
    for (const socket of this.#open) {
      socket.destroy();
    }
  }

  /** Stops relaying on every open connection, in both directions, without closing it. */
  stall(): void {
    for (const [from, to] of this.#pairs) {
      from.unpipe(to);
      from.pause();
    }
  }

  stop(): void {
    this.drop();
    this.#server.close();
  }
}
