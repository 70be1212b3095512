/**
 * The conversation: each prompt and its reply, the live one with a cursor.
 */
import { useEffect, useRef } from "react";
import type { ChatTurn } from "../src/index.js";

export function Transcript({ turns }: { turns: ChatTurn[] }) {
  const end = useRef<HTMLDivElement>(null);
  const last = turns.at(-1);
  // Keep the newest text in view as it streams. (The braces matter: newer
  // browsers return a promise from scrollIntoView, which is no cleanup.)
  useEffect(() => {
    end.current?.scrollIntoView({ block: "end" });
  }, [turns.length, last?.reply]);
  return (
    <main className="transcript" data-testid="messages">
      {turns.length === 0 && <p className="empty">Send a prompt to start.</p>}
      {turns.map((turn, index) => (
        <div key={index} className="turn">
          <div className="message user" data-testid="message-user">
            {turn.prompt}
          </div>
          <div
            className={`message assistant ${turn.status}`}
            data-testid="message-assistant"
            data-status={turn.status}
            data-stream-id={turn.streamId}
            data-next-offset={String(turn.nextOffset)}
          >
            <span data-testid="reply-text">{turn.reply}</span>
            {turn.status === "streaming" && <span className="cursor" data-testid="cursor" aria-hidden="true" />}
            {turn.status === "paused" && <span className="tag">paused</span>}
            {turn.status === "cancelled" && <span className="tag">stopped</span>}
            {turn.error !== undefined && (
              <div className="error" data-testid="error">
                {turn.error.message}
              </div>
            )}
          </div>
        </div>
      ))}
      <div ref={end} />
    </main>
  );
}
