/**
 * The browser entry must load in a browser: nothing it reaches, in this
 * package or in its dependencies, may import a Node built-in or Connect's
 * Node transport. This walks the compiled module graph as a bundler would.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { isBuiltin } from "node:module";
import { it } from "node:test";
import { fileURLToPath } from "node:url";

/** The specifiers a module imports or re-exports, statically or dynamically (comments left out). */
function specifiers(file: string): string[] {
  const code = readFileSync(file, "utf8")
    .replace(/\/\*[\s\S]*?\*\//g, "")
    .replace(/^\s*\/\/.*$/gm, "");
  const patterns = [
    /\b(?:import|export)\s[^'"`;]*?\bfrom\s*["']([^"']+)["']/g,
    /\bimport\s*["']([^"']+)["']/g,
    /\bimport\(\s*["']([^"']+)["']\s*\)/g,
    /\brequire\(\s*["']([^"']+)["']\s*\)/g,
  ];
  return patterns.flatMap((pattern) => [...code.matchAll(pattern)].map((match) => match[1] ?? ""));
}

/** Every module reachable from `entry` (URLs), and the specifiers that name Node-only modules, by importer. */
function walk(entry: string): { modules: Set<string>; nodeOnly: string[] } {
  const modules = new Set<string>();
  const nodeOnly: string[] = [];
  const pending = [entry];
  for (let url = pending.pop(); url !== undefined; url = pending.pop()) {
    if (modules.has(url)) {
      continue;
    }
    modules.add(url);
    for (const specifier of specifiers(fileURLToPath(url))) {
      if (isBuiltin(specifier) || specifier.startsWith("@connectrpc/connect-node")) {
        nodeOnly.push(`${specifier} (from ${url})`);
        continue;
      }
      // Relative specifiers resolve against their module; packages resolve as
      // from this package, whose node_modules holds them all.
      pending.push(specifier.startsWith(".") ? new URL(specifier, url).href : import.meta.resolve(specifier));
    }
  }
  return { modules, nodeOnly };
}

it("reaches no Node built-in and no Connect Node transport from the browser entry", () => {
  const { modules, nodeOnly } = walk(new URL("../src/browser.js", import.meta.url).href);

  assert.deepEqual(nodeOnly, []);
  // The walk did reach the client, the transport and the dependencies.
  const names = [...modules].map((url) => url.replace(/^.*\/(src|node_modules)\//, "$1/"));
  const expected = [
    "src/websocket.js",
    "src/socket.js",
    "src/generation.js",
    "node_modules/@connectrpc/connect/dist/esm/index.js",
    "node_modules/@bufbuild/protobuf/dist/esm/index.js",
  ];
  for (const reached of expected) {
    assert.ok(names.includes(reached), `${reached} is not reached`);
  }
});

it("finds the Node-only imports of the Node entry, which the browser entry leaves out", () => {
  const { nodeOnly } = walk(new URL("../src/index.js", import.meta.url).href);

  assert.ok(nodeOnly.some((found) => found.startsWith("@connectrpc/connect-node")), nodeOnly.join("\n"));
  assert.ok(nodeOnly.some((found) => found.startsWith("node:fs/promises")), nodeOnly.join("\n"));
});
