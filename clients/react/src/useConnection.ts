/**
 * useConnectionState: the state of a client's socket, re-rendered on change.
 */
import type { Connection, ConnectionState } from "@llmrouter/client/browser";
import { useSyncExternalStore } from "react";

export function useConnectionState(connection: Connection): ConnectionState {
  return useSyncExternalStore(
    (listener) => connection.onChange(listener),
    () => connection.state,
  );
}
