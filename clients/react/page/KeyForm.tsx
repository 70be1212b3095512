/**
 * Shown when the server's routes could not be listed: the reason, and a field
 * for the API key a server with an `auth` section asks for.
 */
import { type FormEvent, useState } from "react";

/** Where the page keeps the key: for this tab only, gone when it closes. */
export const KEY_STORAGE = "llmrouter.apiKey";

export function KeyForm({ error }: { error: string }) {
  const [key, setKey] = useState("");
  const submit = (event: FormEvent) => {
    event.preventDefault();
    sessionStorage.setItem(KEY_STORAGE, key.trim());
    // The client takes its key when it is made, so the page starts over with it.
    location.reload();
  };
  return (
    <form className="key-form" data-testid="key-form" onSubmit={submit}>
      <span className="error" data-testid="models-error">
        {error}
      </span>
      <input
        type="password"
        data-testid="api-key"
        aria-label="API key"
        placeholder="API key"
        autoComplete="off"
        value={key}
        onChange={(event) => setKey(event.target.value)}
      />
      <button type="submit" data-testid="connect" disabled={key.trim() === ""}>
        Connect
      </button>
    </form>
  );
}
