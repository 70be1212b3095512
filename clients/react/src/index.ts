/**
 * React hooks for llmrouter in the browser, over a client from
 * `@llmrouter/client/browser`'s connect().
 */
export { applyError, applyEvent, type GenerationState, type GenerationStatus, idle, isActive, type Progress } from "./state.js";
export { type GenerationClient, type GenerationControls, type Steerable, useGeneration } from "./useGeneration.js";
export { type ChatState, type ChatTurn, useChat } from "./useChat.js";
export { useConnectionState } from "./useConnection.js";
