/**
 * ChatSession: a conversation that keeps its message history and settings.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { BaseClient } from "./base.js";
import { FinishReason } from "./gen/llmrouter/v1/events_pb.js";
import { ChatRole, type ChatMessageSchema, type SamplingParamsSchema } from "./gen/llmrouter/v1/generation_pb.js";
import type { Generation } from "./generation.js";

/** A chat message as an init object. */
export type ChatMessageInit = MessageInitShape<typeof ChatMessageSchema>;

/** The settings every turn of a ChatSession is sent with. */
export interface ChatOptions {
  /** The system message opening the conversation. */
  system?: string;
  /** A route name or "backend/model"; empty selects the default route. */
  model?: string;
  /** Strings that end each reply; they are not part of it. */
  stop?: string[];
  /** Sampling parameters; unset ones take the server's defaults. */
  sampling?: MessageInitShape<typeof SamplingParamsSchema>;
}

/**
 * A conversation: each turn sends the whole history with the same model,
 * sampling and stop sequences. A turn joins the history when its reply
 * completes; a failed or cancelled reply leaves the history unchanged. A
 * session runs one turn at a time.
 */
export class ChatSession {
  readonly #client: BaseClient;
  readonly #options: ChatOptions;
  readonly #messages: ChatMessageInit[] = [];

  constructor(client: BaseClient, options: ChatOptions) {
    this.#client = client;
    this.#options = options;
    if (options.system) {
      this.#messages.push({ role: ChatRole.SYSTEM, content: options.system });
    }
  }

  /** A copy of the history, oldest first. */
  get messages(): ChatMessageInit[] {
    return this.#messages.map((message) => ({ ...message }));
  }

  /** Starts the reply to `text`; iterate the generation to stream it. */
  send(text: string, options: { signal?: AbortSignal } = {}): Generation {
    const turn: ChatMessageInit = { role: ChatRole.USER, content: text };
    const { model, stop, sampling } = this.#options;
    const generation = this.#client.generate({ messages: [...this.#messages, turn], model, stop, sampling }, options);
    generation.onCompleted = ({ text: reply, completed }) => {
      if (completed.finishReason !== FinishReason.CANCELLED) {
        this.#messages.push(turn, { role: ChatRole.ASSISTANT, content: reply });
      }
    };
    return generation;
  }

  /** Sends `text` and resolves to the whole reply. */
  async ask(text: string, options: { signal?: AbortSignal } = {}): Promise<string> {
    return (await this.send(text, options).result()).text;
  }
}
