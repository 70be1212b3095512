/**
 * The route picker, filled from ListModels.
 */
import type { ConnectionState, v1, WebSocketClient } from "@llmrouter/client/browser";
import { useEffect, useRef, useState } from "react";

export interface Routes {
  routes: v1.Route[];
  error: string;
}

/** The server's routes, asked for once the socket is open (again after a failure). */
export function useRoutes(client: WebSocketClient, connection: ConnectionState): Routes {
  const [routes, setRoutes] = useState<Routes>({ routes: [], error: "" });
  const loading = useRef(false);
  const loaded = routes.routes.length > 0;
  useEffect(() => {
    if (loaded || loading.current || connection === "connecting" || connection === "reconnecting") {
      return;
    }
    loading.current = true;
    client
      .listModels()
      .then(
        (list) => setRoutes({ routes: list, error: "" }),
        (error: unknown) => setRoutes({ routes: [], error: error instanceof Error ? error.message : String(error) }),
      )
      .finally(() => (loading.current = false));
  }, [client, connection, loaded]);
  return routes;
}

export function ModelPicker(props: { routes: Routes; value: string; onChange: (model: string) => void; disabled: boolean }) {
  const { routes, error } = props.routes;
  return (
    <select
      data-testid="model"
      aria-label="Model"
      title={error}
      value={props.value}
      disabled={props.disabled || routes.length === 0}
      onChange={(event) => props.onChange(event.target.value)}
    >
      {routes.length === 0 && <option value="">{error === "" ? "Loading models…" : "No models"}</option>}
      {routes.map((route) => (
        <option key={route.name} value={route.name}>
          {route.name}
          {route.isDefault ? " (default)" : ""}
        </option>
      ))}
    </select>
  );
}
