/**
 * The chat page in a headless Chromium against `llmrouter serve` and its
 * embedded model: models, streaming, pause, resume and stop, checked in the
 * DOM and against the server's own view of the generation.
 */
import assert from "node:assert/strict";
import { mkdir, stat } from "node:fs/promises";
import { after, before, test } from "node:test";
import { RouterClient, v1 } from "@llmrouter/client";
import type { Page } from "playwright-core";
import { type Browser, launchChromium } from "./browser.js";
import { ROOT, startServer, type TestServer } from "./server.js";

const RESULTS = `${ROOT}clients/react/test-results`;
/** The README's picture of the page; written when missing (or with LLMROUTER_UPDATE_SCREENSHOT=1). */
const README_SHOT = `${ROOT}clients/react/chat.png`;
const PROMPT = "Write a long story about a lighthouse keeper and the sea.";

let server: TestServer;
let rpc: RouterClient;
let browser: Browser;

before(async () => {
  server = await startServer();
  rpc = new RouterClient({ address: server.grpcAddress });
  browser = await launchChromium();
  await mkdir(RESULTS, { recursive: true });
});

after(async () => {
  await browser?.close();
  rpc?.close();
  await server?.stop();
});

const byId = (page: Page, id: string) => page.locator(`[data-testid=${id}]`);
const replyText = (page: Page) => byId(page, "reply-text").last().textContent().then((text) => text ?? "");

/** Waits until the last reply is longer than `length` characters. */
async function replyLongerThan(page: Page, length: number): Promise<void> {
  await page.waitForFunction(
    (length) => (Array.from(document.querySelectorAll("[data-testid=reply-text]")).at(-1)?.textContent?.length ?? 0) > length,
    length,
    { timeout: 60_000 },
  );
}

async function waitForStatus(page: Page, status: string): Promise<void> {
  await page.locator(`[data-testid=status][data-status=${status}]`).waitFor({ timeout: 60_000 });
}

async function buttons(page: Page): Promise<Record<string, boolean>> {
  const enabled = async (id: string) => byId(page, id).isEnabled();
  return { pause: await enabled("pause"), resume: await enabled("resume"), stop: await enabled("stop"), send: await enabled("send") };
}

test("the chat page streams a reply, pauses, resumes and stops it", async () => {
  const page = await browser.context.newPage();
  const failures: string[] = [];
  page.on("pageerror", (error) => failures.push(error.message));
  page.on("console", (message) => message.type() === "error" && failures.push(message.text()));
  // Animations stopped: the cursor shows in every picture.
  const shot = (name: string) => page.screenshot({ path: `${RESULTS}/${name}.png`, animations: "disabled" });

  // Connected, the routes listed with the default one chosen, nothing running.
  await page.goto(server.pageUrl);
  await page.locator("[data-testid=connection][data-state=open]").waitFor({ timeout: 30_000 });
  const routes = await rpc.listModels();
  assert.ok(routes.length > 0);
  await page.locator(`[data-testid=model] option[value="${routes.at(-1)?.name}"]`).waitFor({ state: "attached" });
  const options = await byId(page, "model").locator("option").evaluateAll((nodes) => nodes.map((node) => (node as HTMLOptionElement).value));
  assert.deepEqual(options, routes.map((route) => route.name));
  assert.equal(await byId(page, "model").inputValue(), routes.find((route) => route.isDefault)?.name);
  assert.equal(await byId(page, "status").getAttribute("data-status"), "idle");
  assert.deepEqual(await buttons(page), { pause: false, resume: false, stop: false, send: false });
  await shot("1-connected");

  // Sent: the prompt shows, the reply streams with a cursor and progress.
  await byId(page, "prompt").fill(PROMPT);
  await byId(page, "max-tokens").fill("1024");
  // Greedy: this prompt's reply then runs to the token limit, long after the test stops it.
  await byId(page, "temperature").fill("0");
  await byId(page, "send").click();
  await waitForStatus(page, "streaming");
  assert.equal(await byId(page, "message-user").textContent(), PROMPT);
  assert.equal(await byId(page, "prompt").inputValue(), "");
  await replyLongerThan(page, 0);
  const first = await replyText(page);
  await replyLongerThan(page, first.length);
  assert.ok((await replyText(page)).startsWith(first));
  assert.equal(await byId(page, "cursor").count(), 1);
  assert.match((await byId(page, "progress-text").textContent()) ?? "", /^\d+ \/ 1024 tokens · \d+\.\d tok\/s$/);
  assert.deepEqual(await buttons(page), { pause: true, resume: false, stop: true, send: false });
  await shot("2-streaming");

  // Paused: the page shows it once the server's paused event arrives.
  await byId(page, "pause").click();
  await waitForStatus(page, "paused");
  const reply = byId(page, "message-assistant").last();
  const streamId = (await reply.getAttribute("data-stream-id")) ?? "";
  const received = BigInt((await reply.getAttribute("data-next-offset")) ?? "");
  const atPause = await replyText(page);
  assert.notEqual(streamId, "");
  assert.equal(await byId(page, "cursor").count(), 0);
  assert.deepEqual(await buttons(page), { pause: false, resume: true, stop: true, send: false });
  // The server holds it paused with no event after the last one the page has,
  // and the page's text is still what it was when it showed the pause.
  const { status } = await rpc.getStream(streamId);
  assert.equal(status?.state, v1.StreamState.PAUSED);
  assert.equal(status?.nextOffset, received);
  assert.equal(await replyText(page), atPause);
  await shot("3-paused");

  // Resumed: the next event after the pause is the resumed one (nothing was
  // produced in between), and the reply grows again from where it stopped.
  const watch = rpc.subscribe();
  watch.add({ streamId, fromOffset: received });
  const items = watch[Symbol.asyncIterator]();
  const added = (await items.next()).value as v1.SubscribeResponse;
  assert.equal(added.item.case, "added");
  await byId(page, "resume").click();
  const next = (await items.next()).value as v1.SubscribeResponse;
  assert.equal(next.item.case, "event");
  assert.equal(next.item.value.kind.case, "resumed");
  assert.equal(next.item.value.offset, received);
  watch.close();
  await waitForStatus(page, "streaming");
  await replyLongerThan(page, atPause.length);
  assert.ok((await replyText(page)).startsWith(atPause));
  assert.deepEqual(await buttons(page), { pause: true, resume: false, stop: true, send: false });
  if (process.env["LLMROUTER_UPDATE_SCREENSHOT"] === "1" || !(await exists(README_SHOT))) {
    // A few lines of reply make a better picture.
    await replyLongerThan(page, 400);
    await page.screenshot({ path: README_SHOT, animations: "disabled" });
  }
  await shot("4-resumed");

  // Stopped: cancelled on the server too, the controls back to a new prompt.
  await byId(page, "stop").click();
  await waitForStatus(page, "cancelled");
  assert.equal(await reply.getAttribute("data-status"), "cancelled");
  assert.equal(await byId(page, "status").textContent(), "Stopped");
  assert.equal(await byId(page, "cursor").count(), 0);
  assert.equal((await rpc.getStream(streamId)).status?.state, v1.StreamState.CANCELLED);
  assert.deepEqual(await buttons(page), { pause: false, resume: false, stop: false, send: false });
  await byId(page, "prompt").fill("And then?");
  assert.deepEqual(await buttons(page), { pause: false, resume: false, stop: false, send: true });
  await shot("5-stopped");

  assert.deepEqual(failures, []);
  await page.close();
});

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}
