/**
 * useChat: a conversation whose turns stream one at a time.
 */
import { type ChatMessageInit, type ChatOptions, v1 } from "@llmrouter/client/browser";
import { useCallback, useRef, useState } from "react";
import { type GenerationState, type GenerationStatus, isActive } from "./state.js";
import { type GenerationClient, type GenerationControls, useGeneration } from "./useGeneration.js";

/** One prompt and its reply. */
export interface ChatTurn {
  prompt: string;
  reply: string;
  status: GenerationStatus;
  /** What ended the reply, when status is `error`. */
  error: Error | undefined;
  /** The server's id for the reply's generation. */
  streamId: string;
  /** The offset of the reply's next event: the number of its events received. */
  nextOffset: bigint;
}

export type ChatState = ReturnType<typeof useGeneration> & {
  /** Every turn, oldest first; the last one is live while a reply streams. */
  turns: ChatTurn[];
  /**
   * Sends `prompt` with the history; false (and nothing sent) while a reply
   * is still streaming or paused. Options are read at each send, so the model
   * may change between turns.
   */
  send(prompt: string): boolean;
};

/**
 * A chat over `client`. Only replies that completed join the history sent
 * with the next turn (as a ChatSession keeps it); stopped and failed ones
 * stay in `turns` for the page to show.
 */
export function useChat(client: GenerationClient, options: ChatOptions = {}): ChatState {
  const generation = useGeneration(client);
  const [past, setPast] = useState<ChatTurn[]>([]);
  const [prompt, setPrompt] = useState<string | undefined>(undefined);
  const latest = useRef({ options, generation, past, prompt });
  latest.current = { options, generation, past, prompt };

  const live: ChatTurn | undefined =
    prompt === undefined
      ? undefined
      : liveTurn(prompt, generation);
  const turns = live === undefined ? past : [...past, live];

  const send = useCallback((text: string): boolean => {
    const { options, generation, past, prompt } = latest.current;
    if (isActive(generation.status)) {
      return false;
    }
    const finished: ChatTurn[] =
      prompt === undefined
        ? past
        : [...past, liveTurn(prompt, generation)];
    setPast(finished);
    setPrompt(text);
    const messages: ChatMessageInit[] = options.system ? [{ role: v1.ChatRole.SYSTEM, content: options.system }] : [];
    for (const turn of finished.filter((turn) => turn.status === "done")) {
      messages.push({ role: v1.ChatRole.USER, content: turn.prompt }, { role: v1.ChatRole.ASSISTANT, content: turn.reply });
    }
    messages.push({ role: v1.ChatRole.USER, content: text });
    const { model, stop, sampling } = options;
    generation.start({ messages, model, stop, sampling });
    return true;
  }, []);

  return { ...generation, turns, send } satisfies GenerationControls & ChatState;
}

function liveTurn(prompt: string, generation: GenerationState): ChatTurn {
  const { text, status, error, streamId, nextOffset } = generation;
  return { prompt, reply: text, status, error, streamId, nextOffset };
}
