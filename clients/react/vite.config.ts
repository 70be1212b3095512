import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

// The page is built into the server package, whose gateway serves it at `/`.
const outDir = fileURLToPath(new URL("../../server/llmrouter_server/gateway/page", import.meta.url));

export default defineConfig({
  root: fileURLToPath(new URL("page", import.meta.url)),
  // Relative asset URLs, so the page also works behind a path prefix.
  base: "./",
  build: { outDir, emptyOutDir: true, assetsDir: "assets" },
  // `npm run dev` serves the page with hot reload, its socket passed on to a
  // running gateway (LLMROUTER_GATEWAY_URL, by default the one `make serve` starts).
  server: {
    proxy: { "/v1/ws": { target: process.env["LLMROUTER_GATEWAY_URL"] ?? "http://127.0.0.1:8080", ws: true } },
  },
});
