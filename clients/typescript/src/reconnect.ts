/**
 * Reconnecting: the policy that re-attaches a generation or a subscription
 * after a lost call, and the cursor that drops replayed events.
 */
import { create } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import type { RouterError } from "./errors.js";
import type { StreamEvent } from "./gen/llmrouter/v1/events_pb.js";
import {
  DisconnectAction,
  type DisconnectPolicy,
  DisconnectPolicySchema,
  type FlowControl,
  FlowControlSchema,
  FlowMode,
} from "./gen/llmrouter/v1/generation_pb.js";

/**
 * Re-attaches a Generation or a Subscription after its call was lost: ended
 * with UNAVAILABLE, which is how gRPC reports a dropped connection, a
 * restarted proxy or a server going away.
 *
 * With a policy set, every generation starts with on_disconnect DETACH (unless
 * the request sets its own), so the server keeps it running for `detachTtlMs`
 * after its call is lost. A Generation then re-attaches with a Generate
 * `attach` request naming its stream id, the offset after the last event it
 * delivered and, in CREDIT flow, the credits it had left; a Subscription adds
 * each of its subscriptions again from its next offset. Events the caller has
 * already seen are dropped and a repeated `added` item is not delivered, so it
 * sees every event once and in order.
 *
 * The server may not have noticed yet that the lost call is gone when the
 * attach arrives; it then refuses it with FAILED_PRECONDITION, and that is
 * retried like UNAVAILABLE. Steering sent while the call is down (pause,
 * resume, cancel) is queued and sent, in order, right after the re-attach
 * request, and so is steering the lost call had not sent yet; credits granted
 * meanwhile are counted into the attach's initial credits. Steering that
 * followed a re-attach the server refused is sent again after the next one.
 * An UNAVAILABLE that carries a RouteFailure is not a lost call but the
 * generation's end (every attempt its route allowed failed): it is thrown at
 * once.
 */
export interface ReconnectPolicy {
  /** Re-attach attempts in a row without an event in between; 0 disables reconnecting. */
  maxAttempts: number;
  /** The wait before the first attempt, doubled after each one; 100 ms by default. */
  backoffMs?: number;
  /** The longest wait; 2 s by default. */
  maxBackoffMs?: number;
  /** How long the server keeps a generation whose caller is gone; 30 s by default. */
  detachTtlMs?: number;
}

/** The on_disconnect a reconnecting client starts generations with. */
export function detachPolicy(policy: ReconnectPolicy): DisconnectPolicy {
  const ttl = policy.detachTtlMs ?? 30_000;
  return create(DisconnectPolicySchema, {
    action: DisconnectAction.DETACH,
    detachTtl: { seconds: BigInt(Math.floor(ttl / 1000)), nanos: (ttl % 1000) * 1e6 },
  });
}

/**
 * The wait before re-attempt number `attempt` (counting from 1) when `error`
 * allows another one; undefined when the caller must give up instead.
 * `attaching` says the error ended a re-attach before it delivered anything.
 */
export function reconnectDelay(
  policy: ReconnectPolicy | undefined,
  error: RouterError,
  attempt: number,
  attaching = false,
): number | undefined {
  const lost = error.code === Code.Unavailable && error.routeFailure === undefined;
  const retryable = lost || (attaching && error.code === Code.FailedPrecondition);
  if (policy === undefined || attempt > policy.maxAttempts || !retryable) {
    return undefined;
  }
  return Math.min((policy.backoffMs ?? 100) * 2 ** (attempt - 1), policy.maxBackoffMs ?? 2_000);
}

/** Resolves after `ms`, or at once when `signal` aborts; true unless it aborted. */
export async function wait(ms: number, signal: AbortSignal): Promise<boolean> {
  await new Promise<void>((resolve) => {
    const stop = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", stop);
      resolve();
    }, ms);
    signal.addEventListener("abort", stop, { once: true });
  });
  return !signal.aborted;
}

/** The next offset of one generation, so events replayed after re-attaching are delivered once. */
export class Cursor {
  /** The offset the next new event has. */
  next = 0n;
  #seen = false;

  /** A cursor that drops events before `from`, when given. */
  constructor(from?: bigint) {
    if (from !== undefined) {
      this.next = from;
      this.#seen = true;
    }
  }

  /** True when the event is new; the cursor then moves past it. */
  accept(event: StreamEvent): boolean {
    if (this.#seen && event.offset < this.next) {
      return false;
    }
    this.next = event.offset + 1n;
    this.#seen = true;
    return true;
  }
}

/**
 * What a consumer in CREDIT flow may still receive, so a re-attach or a
 * resubscription asks for exactly the credits that were left.
 */
export class Credits {
  readonly #enabled: boolean;
  #left: number;

  constructor(flow: { mode?: FlowMode; initialCredits?: number } | undefined) {
    this.#enabled = flow?.mode === FlowMode.CREDIT;
    this.#left = flow?.initialCredits ?? 0;
  }

  grant(credits: number): void {
    this.#left += credits;
  }

  spend(): void {
    if (this.#enabled && this.#left > 0) {
      this.#left -= 1;
    }
  }

  /** The flow a new call continues with; undefined in AUTO flow. */
  flow(): FlowControl | undefined {
    return this.#enabled ? create(FlowControlSchema, { mode: FlowMode.CREDIT, initialCredits: this.#left }) : undefined;
  }
}
