import { connect } from "@llmrouter/client/browser";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App.js";
import { KEY_STORAGE } from "./KeyForm.js";
import "./style.css";

// The gateway serves this page, so its socket is on the same host and port.
const scheme = location.protocol === "https:" ? "wss" : "ws";
// A lost socket re-attaches the reply that was streaming; the server keeps it
// for 10 s without a caller, then cancels it.
const client = connect({
  url: `${scheme}://${location.host}/v1/ws`,
  apiKey: sessionStorage.getItem(KEY_STORAGE) || undefined,
  reconnect: { maxAttempts: 5, detachTtlMs: 10_000 },
});

const root = document.getElementById("root");
if (root === null) {
  throw new Error("the page has no #root element");
}
createRoot(root).render(
  <StrictMode>
    <App client={client} />
  </StrictMode>,
);
