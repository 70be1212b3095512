/**
 * Starts `llmrouter serve` with its gateway on free loopback ports, serving the
 * page this package built, and stops it with SIGTERM.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { RouterClient } from "@llmrouter/client";

/** The repository's root (this file runs from clients/react/dist/test). */
export const ROOT = fileURLToPath(new URL("../../../../", import.meta.url));
/** Where `npm run build` puts the page. */
export const PAGE_DIR = `${ROOT}server/llmrouter_server/gateway/page`;

export interface TestServer {
  /** The gRPC port's host:port. */
  grpcAddress: string;
  /** The chat page: http://127.0.0.1:<gateway port>/ */
  pageUrl: string;
  stop(): Promise<void>;
}

/** With `config`, the text of the YAML file the server runs with; `apiKey`, the key its readiness check uses. */
export async function startServer(options: { config?: string; apiKey?: string } = {}): Promise<TestServer> {
  const grpcPort = await freePort();
  const gatewayPort = await freePort();
  const env = {
    ...process.env,
    LLMROUTER_SERVER__HOST: "127.0.0.1",
    LLMROUTER_SERVER__PORT: String(grpcPort),
    LLMROUTER_GATEWAY__HOST: "127.0.0.1",
    LLMROUTER_GATEWAY__PORT: String(gatewayPort),
    LLMROUTER_GATEWAY__PAGE_DIR: PAGE_DIR,
  };
  const bin = process.env["LLMROUTER_BIN"] ?? `${ROOT}.venv/bin/llmrouter`;
  const dir = await mkdtemp(path.join(tmpdir(), "llmrouter-react-"));
  const args = ["serve"];
  if (options.config !== undefined) {
    await writeFile(path.join(dir, "llmrouter.yaml"), options.config);
    args.push("--config", path.join(dir, "llmrouter.yaml"));
  }
  const child = spawn(bin, args, { env, stdio: ["ignore", "ignore", "pipe"] });
  let logs = "";
  child.stderr.on("data", (data: Buffer) => (logs += data.toString()));
  const exited = once(child, "exit");
  const killOnExit = () => child.kill("SIGTERM");
  process.on("exit", killOnExit);
  const stop = async () => {
    process.off("exit", killOnExit);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  };
  const server = { grpcAddress: `127.0.0.1:${grpcPort}`, pageUrl: `http://127.0.0.1:${gatewayPort}/`, stop };
  for (const deadline = Date.now() + 90_000; Date.now() < deadline; await sleep(250)) {
    if (child.exitCode !== null || child.signalCode !== null) {
      await stop();
      throw new Error(`llmrouter serve exited early:\n${logs}`);
    }
    if ((await answers(server.pageUrl)) && (await grpcReady(server.grpcAddress, options.apiKey))) {
      return server;
    }
  }
  await stop();
  throw new Error(`llmrouter serve was not ready within 90 s:\n${logs}`);
}

async function answers(url: string): Promise<boolean> {
  try {
    return (await fetch(url)).ok;
  } catch {
    return false;
  }
}

async function grpcReady(address: string, apiKey: string | undefined): Promise<boolean> {
  const client = new RouterClient({ address, apiKey });
  try {
    await client.listModels();
    return true;
  } catch {
    return false;
  } finally {
    client.close();
  }
}

async function freePort(): Promise<number> {
  const server = createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  server.close();
  if (address === null || typeof address === "string") {
    throw new Error("no free port");
  }
  return address.port;
}
