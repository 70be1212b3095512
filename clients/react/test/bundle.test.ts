/**
 * The built page as the gateway serves it: index.html at the root, its
 * scripts and styles under assets/, nothing that only Node has.
 */
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { builtinModules } from "node:module";
import { test } from "node:test";
import { PAGE_DIR } from "./server.js";

test("the page is built into the server package for a browser", async () => {
  assert.deepEqual((await readdir(PAGE_DIR)).sort(), ["assets", "index.html"]);
  const html = await readFile(`${PAGE_DIR}/index.html`, "utf8");
  const assets = await readdir(`${PAGE_DIR}/assets`);
  const scripts = assets.filter((name) => name.endsWith(".js"));
  assert.equal(scripts.length, 1);
  assert.ok(assets.some((name) => name.endsWith(".css")));
  assert.ok(html.includes(`src="./assets/${scripts[0]}"`));
  const code = await readFile(`${PAGE_DIR}/assets/${scripts[0]}`, "utf8");
  // Vite swaps a Node built-in a browser build imports for this stub.
  assert.ok(!code.includes("__vite-browser-external"));
  const names = builtinModules.filter((name) => !name.startsWith("_")).map((name) => name.replace(/[/]/g, "\\/"));
  const imports = new RegExp(`(from|import|require)\\s*\\(?\\s*["'](node:[\\w/]+|${names.join("|")})["']`);
  assert.doesNotMatch(code, imports);
});
