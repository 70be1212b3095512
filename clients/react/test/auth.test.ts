/**
 * The chat page against a server that wants an API key: it asks for one, then
 * connects with it and lists every route with the default one chosen.
 */
import assert from "node:assert/strict";
import { createHash, randomUUID } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { after, before, test } from "node:test";
import { RouterClient } from "@llmrouter/client";
import { type Browser, launchChromium } from "./browser.js";
import { ROOT, startServer, type TestServer } from "./server.js";

const KEY = `page-${randomUUID()}`;
// The default route is not the first one listed, so choosing it is the page's doing.
const CONFIG = `
backends:
  embedded: {kind: embedded}
routes:
  second:
    targets: [{backend: embedded, model: smollm2-135m-instruct}]
  smollm2-135m-instruct:
    targets: [{backend: embedded, model: smollm2-135m-instruct}]
default_route: smollm2-135m-instruct
auth:
  api_keys:
    - {id: page, sha256: ${createHash("sha256").update(KEY).digest("hex")}, tenant: page}
`;

let server: TestServer;
let browser: Browser;

before(async () => {
  server = await startServer({ config: CONFIG, apiKey: KEY });
  browser = await launchChromium();
  await mkdir(`${ROOT}clients/react/test-results`, { recursive: true });
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test("the page asks for the API key, then connects with it", async () => {
  const page = await browser.context.newPage();
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(error.message));
  const byId = (id: string) => page.locator(`[data-testid=${id}]`);

  // Refused without a key: the socket is closed and the page asks for one.
  await page.goto(server.pageUrl);
  await byId("key-form").waitFor({ timeout: 30_000 });
  assert.equal(await byId("connection").getAttribute("data-state"), "closed");
  assert.match((await byId("models-error").textContent()) ?? "", /unauthenticated/i);
  assert.equal(await byId("model").isDisabled(), true);
  await page.screenshot({ path: `${ROOT}clients/react/test-results/6-key.png`, animations: "disabled" });

  // With the key (the page reloads with it): connected, both routes listed.
  await byId("api-key").fill(KEY);
  await Promise.all([page.waitForEvent("load"), byId("connect").click()]);
  await page.locator("[data-testid=connection][data-state=open]").waitFor({ timeout: 30_000 });
  await page.locator("[data-testid=model]:enabled").waitFor();
  const client = new RouterClient({ address: server.grpcAddress, apiKey: KEY });
  const routes = await client.listModels();
  client.close();
  const options = await byId("model").locator("option").evaluateAll((nodes) => nodes.map((node) => (node as HTMLOptionElement).value));
  assert.deepEqual(options, routes.map((route) => route.name));
  assert.deepEqual(options, ["second", "smollm2-135m-instruct"]);
  assert.equal(await byId("model").inputValue(), "smollm2-135m-instruct");
  assert.equal(await byId("key-form").count(), 0);
  assert.deepEqual(errors, []);
  await page.close();
});
