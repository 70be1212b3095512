/**
 * The state of one generation as a page shows it, and how each event changes
 * it. Pure functions, so the hooks stay thin and the rules are testable.
 */
import { v1 } from "@llmrouter/client/browser";

/**
 * Where a generation is: `idle` before start(), `streaming` from start() (also
 * while queued), `paused` from the server's paused event until its resumed
 * event, then `done`, `cancelled` (by anyone) or `error`.
 */
export type GenerationStatus = "idle" | "streaming" | "paused" | "done" | "cancelled" | "error";

/** How far a generation is, from the contract's Progress. */
export interface Progress {
  completionTokens: number;
  /** The token budget; 0 when unknown. */
  maxTokens: number;
  /** completionTokens / maxTokens, from 0 to 1. */
  fraction: number;
  tokensPerSecond: number;
}

export interface GenerationState {
  status: GenerationStatus;
  /** The reply so far. */
  text: string;
  /** Undefined until the started event. */
  progress: Progress | undefined;
  /** What ended the generation, when status is `error`. */
  error: Error | undefined;
  /** The server's id for the generation; "" until its first event. */
  streamId: string;
  /** The offset the next event will have: the number of events received. */
  nextOffset: bigint;
  /** The model that answers, from the started event. */
  model: string;
  /** UNSPECIFIED until the completed event. */
  finishReason: v1.FinishReason;
}

export const idle: GenerationState = {
  status: "idle",
  text: "",
  progress: undefined,
  error: undefined,
  streamId: "",
  nextOffset: 0n,
  model: "",
  finishReason: v1.FinishReason.UNSPECIFIED,
};

export const starting: GenerationState = { ...idle, status: "streaming" };

/** True while a generation runs (streaming or paused). */
export function isActive(status: GenerationStatus): boolean {
  return status === "streaming" || status === "paused";
}

/** The state after `event`. */
export function applyEvent(state: GenerationState, event: v1.StreamEvent): GenerationState {
  const next = { ...state, streamId: event.streamId, nextOffset: event.offset + 1n };
  const kind = event.kind;
  switch (kind.case) {
    case "started":
      return { ...next, model: kind.value.model, progress: { completionTokens: 0, maxTokens: kind.value.maxTokens, fraction: 0, tokensPerSecond: 0 } };
    case "chunk": {
      const progress = kind.value.progress;
      return {
        ...next,
        text: state.text + kind.value.text,
        progress: progress === undefined ? state.progress : fromProgress(progress),
      };
    }
    case "fallbackUsed":
      // A restart on another model streams the reply again from its start.
      return kind.value.action === v1.MidStreamAction.RESTART ? { ...next, text: "", model: kind.value.toModel } : { ...next, model: kind.value.toModel };
    case "paused":
      return { ...next, status: "paused" };
    case "resumed":
      return { ...next, status: "streaming" };
    case "completed": {
      const cancelled = kind.value.finishReason === v1.FinishReason.CANCELLED;
      return { ...next, status: cancelled ? "cancelled" : "done", finishReason: kind.value.finishReason };
    }
    default:
      return next;
  }
}

/** The state after the generation failed with `error`. */
export function applyError(state: GenerationState, error: unknown): GenerationState {
  return { ...state, status: "error", error: error instanceof Error ? error : new Error(String(error)) };
}

function fromProgress(progress: v1.Progress): Progress {
  const { completionTokens, maxTokens, fraction, tokensPerSecond } = progress;
  return { completionTokens, maxTokens, fraction, tokensPerSecond };
}
