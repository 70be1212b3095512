/**
 * Reconnecting: the policy that re-attaches a generation or a subscription
 * after a lost call, and the cursor that drops replayed events.
 */
import { create } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import type { RouterError } from "./errors.js";
import type { StreamEvent } from "./gen/llmrouter/v1/events_pb.js";
import { DisconnectAction, type DisconnectPolicy, DisconnectPolicySchema } from "./gen/llmrouter/v1/generation_pb.js";

/**
 * Re-attaches a Generation or a Subscription after its call was lost: ended
 * with UNAVAILABLE, which is how gRPC reports a dropped connection, a
 * restarted proxy or a server going away.
 *
 * A Generation re-attaches with a Generate `attach` request naming its stream
 * id and the offset after the last event it delivered; a Subscription adds
 * each of its subscriptions again from that offset. Replayed events the caller
 * has already seen are dropped, so it sees every event once and in order.
 *
 * This needs a server that implements DETACH and `attach`: with a policy set,
 * every generation starts with on_disconnect DETACH (unless the request sets
 * its own), so it outlives the lost call for `detachTtlMs`. A server that does
 * not implement DETACH refuses such a start with UNIMPLEMENTED.
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
 * Waits before attempt number `attempt` (counting from 1) when `error` allows
 * another one; resolves false when the caller must give up instead.
 */
export async function waitToReconnect(
  policy: ReconnectPolicy | undefined,
  error: RouterError,
  attempt: number,
  signal: AbortSignal,
): Promise<boolean> {
  if (policy === undefined || attempt > policy.maxAttempts || error.code !== Code.Unavailable) {
    return false;
  }
  const delay = Math.min((policy.backoffMs ?? 100) * 2 ** (attempt - 1), policy.maxBackoffMs ?? 2_000);
  await new Promise<void>((resolve) => {
    const stop = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", stop);
      resolve();
    }, delay);
    signal.addEventListener("abort", stop, { once: true });
  });
  return !signal.aborted;
}

/** The next offset of one generation, so events replayed after re-attaching are delivered once. */
export class Cursor {
  /** The offset the next new event has. */
  next = 0n;
  #seen = false;

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
