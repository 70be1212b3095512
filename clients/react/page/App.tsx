/**
 * The chat page: a conversation with one of the server's routes, streamed
 * over the gateway's WebSocket, with its progress and controls.
 */
import type { WebSocketClient } from "@llmrouter/client/browser";
import { type FormEvent, type KeyboardEvent, useState } from "react";
import { isActive, useChat, useConnectionState } from "../src/index.js";
import { KeyForm } from "./KeyForm.js";
import { ModelPicker, useRoutes } from "./ModelPicker.js";
import { ProgressBar } from "./ProgressBar.js";
import { Transcript } from "./Transcript.js";

const STATUS_LABELS = {
  idle: "Ready",
  streaming: "Streaming",
  paused: "Paused",
  done: "Done",
  cancelled: "Stopped",
  error: "Failed",
} as const;

export function App({ client }: { client: WebSocketClient }) {
  const connection = useConnectionState(client.connection);
  const routes = useRoutes(client, connection);
  const [model, setModel] = useState<string | undefined>(undefined);
  const [maxTokens, setMaxTokens] = useState(256);
  // Empty: the server's default.
  const [temperature, setTemperature] = useState("");
  const [draft, setDraft] = useState("");
  // Until the user picks one, the default route.
  const chosen = model ?? routes.routes.find((route) => route.isDefault)?.name ?? "";
  const sampling = { maxTokens, temperature: temperature === "" ? undefined : Number(temperature) };
  const chat = useChat(client, { model: chosen, sampling });
  const active = isActive(chat.status);

  const submit = (event?: FormEvent) => {
    event?.preventDefault();
    if (draft.trim() !== "" && chat.send(draft.trim())) {
      setDraft("");
    }
  };
  const onKeyDown = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    if (event.key === "Enter" && !event.shiftKey) {
      submit(event);
    }
  };

  return (
    <div className="page">
      <header>
        <h1>llmrouter</h1>
        <ModelPicker routes={routes} value={chosen} onChange={setModel} disabled={active} />
        <span className={`connection ${connection}`} data-testid="connection" data-state={connection}>
          {connection}
        </span>
      </header>
      {routes.error !== "" && <KeyForm error={routes.error} />}
      <Transcript turns={chat.turns} />
      <section className="controls">
        <ProgressBar progress={chat.progress} />
        <span className={`status ${chat.status}`} data-testid="status" data-status={chat.status}>
          {STATUS_LABELS[chat.status]}
        </span>
        <button type="button" data-testid="pause" disabled={chat.status !== "streaming"} onClick={() => chat.pause()}>
          Pause
        </button>
        <button type="button" data-testid="resume" disabled={chat.status !== "paused"} onClick={() => chat.resume()}>
          Resume
        </button>
        <button type="button" data-testid="stop" disabled={!active} onClick={() => chat.stop("stopped on the page")}>
          Stop
        </button>
      </section>
      <form className="composer" onSubmit={submit}>
        <textarea
          data-testid="prompt"
          placeholder="Ask something (Enter sends, Shift+Enter for a new line)"
          rows={3}
          value={draft}
          onChange={(event) => setDraft(event.target.value)}
          onKeyDown={onKeyDown}
        />
        <label>
          Max tokens
          <input
            type="number"
            data-testid="max-tokens"
            min={1}
            max={8192}
            value={maxTokens}
            onChange={(event) => setMaxTokens(Math.max(1, Number(event.target.value) || 1))}
          />
        </label>
        <label>
          Temperature
          <input
            type="number"
            data-testid="temperature"
            min={0}
            max={2}
            step={0.1}
            placeholder="default"
            value={temperature}
            onChange={(event) => setTemperature(event.target.value)}
          />
        </label>
        <button type="submit" data-testid="send" disabled={active || draft.trim() === ""}>
          Send
        </button>
      </form>
    </div>
  );
}
