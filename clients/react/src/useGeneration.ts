/**
 * useGeneration: one generation at a time, its state and its controls.
 */
import type { StartRequest, v1 } from "@llmrouter/client/browser";
import { useCallback, useEffect, useRef, useState } from "react";
import { applyError, applyEvent, type GenerationState, idle, starting } from "./state.js";

/** What the hook needs of a generation; the client's Generation has it. */
export interface Steerable extends AsyncIterable<v1.StreamEvent> {
  pause(reason?: string): void;
  resume(): void;
  cancel(reason?: string): void;
}

/** What the hook needs of a client; the client from connect() has it. */
export interface GenerationClient {
  generate(start: StartRequest): Steerable;
}

export interface GenerationControls {
  /** Starts a generation, cancelling the one before if it still runs. */
  start(request: StartRequest): void;
  /** Cancels the generation; it ends with status `cancelled`. */
  stop(reason?: string): void;
  /** Asks the server to pause; status becomes `paused` when it has. */
  pause(reason?: string): void;
  /** Asks the server to resume; status becomes `streaming` when it has. */
  resume(): void;
}

/**
 * The state of the latest generation started on `client`, with progress on
 * every chunk unless the request sets its own streamOptions. The generation
 * is cancelled when the component unmounts.
 */
export function useGeneration(client: GenerationClient): GenerationState & GenerationControls {
  const [state, setState] = useState<GenerationState>(idle);
  const current = useRef<Steerable | undefined>(undefined);

  const start = useCallback(
    (request: StartRequest) => {
      // Cancelled rather than its call closed: a client that reconnects starts
      // generations that outlive their call for a while.
      current.current?.cancel("replaced");
      const generation = client.generate(withProgress(request));
      current.current = generation;
      setState(starting);
      const update = (change: (state: GenerationState) => GenerationState) => {
        // Events of a generation that was replaced are no longer shown.
        if (current.current === generation) {
          setState(change);
        }
      };
      void (async () => {
        try {
          for await (const event of generation) {
            update((state) => applyEvent(state, event));
          }
          update((state) => (state.status === "done" || state.status === "cancelled" ? state : applyError(state, new Error("the call ended without a completed event"))));
        } catch (error) {
          update((state) => applyError(state, error));
        }
      })();
    },
    [client],
  );

  const stop = useCallback((reason?: string) => current.current?.cancel(reason), []);
  const pause = useCallback((reason?: string) => current.current?.pause(reason), []);
  const resume = useCallback(() => current.current?.resume(), []);

  useEffect(
    () => () => {
      current.current?.cancel("the page went away");
      current.current = undefined;
    },
    [],
  );

  return { ...state, start, stop, pause, resume };
}

/** The request asking for progress on every chunk, unless it sets its own streamOptions. */
function withProgress(request: StartRequest): StartRequest {
  // A created message is sent as it is: an init object cannot be mixed into it.
  if ("$typeName" in request || request.streamOptions !== undefined) {
    return request;
  }
  return { ...request, streamOptions: { includeProgress: true } };
}
