/**
 * Starts `llmrouter serve` on a free loopback port for a test file (and its
 * WebSocket gateway on another, when asked), and stops it with SIGTERM.
 */
import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";

/** $LLMROUTER_BIN, or the repository's .venv/bin/llmrouter (this file runs from dist/test). */
export function llmrouterBin(): string {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "..");
  return process.env["LLMROUTER_BIN"] ?? path.join(root, ".venv", "bin", "llmrouter");
}

/** A running server. */
export interface RunningServer {
  /** host:port on 127.0.0.1. */
  address: string;
  /** The gateway's WebSocket URL (ws://127.0.0.1:<port>/v1/ws); "" without `gateway`. */
  wsUrl: string;
  /** The gateway's host:port; "" without `gateway`. */
  gatewayAddress: string;
  /** Sends SIGTERM and waits for a clean exit. */
  stop(): Promise<void>;
}

/** How a test server differs from the default one. */
export interface ServerOptions {
  /** The text of a YAML configuration file, passed with `--config`; none by default. */
  config?: string;
  /** Serve the WebSocket gateway too, on a free loopback port. */
  gateway?: boolean;
}

export async function startServer(options: ServerOptions = {}): Promise<RunningServer> {
  const config = options.config === undefined ? undefined : await writeConfig(options.config);
  const args = config === undefined ? ["serve"] : ["serve", "--config", config.file];
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const gatewayAddress = options.gateway === true ? `127.0.0.1:${await freePort()}` : "";
  const wsUrl = gatewayAddress === "" ? "" : `ws://${gatewayAddress}/v1/ws`;
  const gatewayEnv =
    gatewayAddress === ""
      ? {}
      : { LLMROUTER_GATEWAY__HOST: "127.0.0.1", LLMROUTER_GATEWAY__PORT: gatewayAddress.split(":")[1] ?? "" };
  const env = {
    ...process.env,
    ...gatewayEnv,
    LLMROUTER_SERVER__HOST: "127.0.0.1",
    LLMROUTER_SERVER__PORT: String(port),
    // A small window: a generation whose caller holds back its credits stops
    // a few events ahead and stays RUNNING for as long as a test needs it to.
    LLMROUTER_STREAMS__WINDOW_EVENTS: "4",
  };
  const child = spawn(llmrouterBin(), args, { env, stdio: ["ignore", "ignore", "pipe"] });
  let logs = "";
  child.stderr.on("data", (data: Buffer) => (logs += data.toString()));
  const exited = once(child, "exit") as Promise<[number | null, string | null]>;
  // If this test process ends without calling stop(), the server goes too.
  const stopWithUs = () => child.kill("SIGTERM");
  process.on("exit", stopWithUs);
  const stop = async () => {
    child.kill("SIGTERM");
    const result = await Promise.race([exited, sleep(15_000, undefined, { ref: false })]);
    process.off("exit", stopWithUs);
    await config?.remove();
    if (result === undefined) {
      child.kill("SIGKILL");
      throw new Error("llmrouter serve did not stop within 15 s of SIGTERM");
    }
    if (result[0] !== 0) {
      throw new Error(`llmrouter serve ended with ${result[0] ?? result[1]}\n${logs}`);
    }
  };
  for (const deadline = Date.now() + 60_000; Date.now() < deadline; await sleep(200)) {
    if (child.exitCode !== null || child.signalCode !== null) {
      await config?.remove();
      throw new Error(`llmrouter serve exited before it was healthy\n${logs}`);
    }
    if ((await healthy(address)) && (gatewayAddress === "" || (await listening(gatewayAddress)))) {
      return { address, wsUrl, gatewayAddress, stop };
    }
  }
  await stop().catch(() => undefined);
  throw new Error(`llmrouter serve was not healthy on ${address} within 60 s\n${logs}`);
}

/** Writes `text` to a new temporary file; `remove` deletes it. */
async function writeConfig(text: string): Promise<{ file: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), "llmrouter-"));
  const file = path.join(dir, "llmrouter.yaml");
  await writeFile(file, text);
  return { file, remove: () => rm(dir, { recursive: true, force: true }) };
}

function healthy(address: string): Promise<boolean> {
  return new Promise((resolve) => {
    execFile(llmrouterBin(), ["health", "--address", address], (error) => resolve(error === null));
  });
}

/** True when something accepts TCP connections at host:port. */
function listening(address: string): Promise<boolean> {
  const [host, port] = address.split(":");
  return new Promise((resolve) => {
    const socket = connect(Number(port), host);
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** A loopback port that was free a moment ago. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  server.close();
  if (address === null || typeof address === "string") {
    throw new Error("no port");
  }
  return address.port;
}
