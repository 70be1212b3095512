/** The generated llmrouter.v1 messages, enums and service descriptor. */
export * from "./gen/llmrouter/v1/events_pb.js";
export * from "./gen/llmrouter/v1/generation_pb.js";
export * from "./gen/llmrouter/v1/operations_pb.js";
export * from "./gen/llmrouter/v1/service_pb.js";
