/**
 * A `ConsumerPort` that records what the runtime tells it, for the runtime's tests: replies by
 * token, deliveries by subscription, ended subscriptions and finished pulls, plus a helper that
 * waits (with a deadline) until a condition on those records holds.
 */
import type { ErrorCode, FlotillaError } from '@flotilla/shared';
import type { Command, DeliveredMessage, Reply } from '../../queues/index.js';
import type { ConsumerPort } from '../types.js';

export interface Recorded {
  token: number;
  command?: Command;
  reply?: Reply;
  error?: FlotillaError;
}

export class FakePort implements ConsumerPort {
  congested = false;
  readonly replies = new Map<number, Recorded>();
  readonly deliveries: { subId: number; queue: string; messages: readonly DeliveredMessage[] }[] = [];
  readonly ended: { subId: number; code: ErrorCode; message: string }[] = [];
  readonly unsubscribedTokens: number[] = [];
  readonly pulls = new Map<number, { queue: string; messages: readonly DeliveredMessage[] }>();
  /** Order in which events arrived, for ordering assertions. */
  readonly events: string[] = [];

  commandApplied(token: number, command: Command, reply: Reply): void {
    this.replies.set(token, { token, command, reply });
    this.events.push(`applied:${token}`);
  }

  commandFailed(token: number, error: FlotillaError): void {
    this.replies.set(token, { token, error });
    this.events.push(`failed:${token}:${error.code}`);
  }

  pushDeliveries(subId: number, queue: string, messages: readonly DeliveredMessage[]): void {
    this.deliveries.push({ subId, queue, messages });
    this.events.push(`deliver:${subId}:${messages.length}`);
  }

  subscriptionEnded(subId: number, code: ErrorCode, message: string): void {
    this.ended.push({ subId, code, message });
    this.events.push(`ended:${subId}:${code}`);
  }

  unsubscribed(subId: number, token: number): void {
    this.unsubscribedTokens.push(token);
    this.events.push(`unsubscribed:${subId}`);
  }

  receiveDone(token: number, queue: string, messages: readonly DeliveredMessage[]): void {
    this.pulls.set(token, { queue, messages });
    this.events.push(`pulled:${token}:${messages.length}`);
  }

  /** Messages delivered to `subId` so far. */
  delivered(subId: number): DeliveredMessage[] {
    return this.deliveries.filter((d) => d.subId === subId).flatMap((d) => [...d.messages]);
  }
}

/** Resolves once `condition()` is true; rejects with `what` if it is still false after `timeoutMs`. */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** Lets every pending setImmediate/microtask of the current state run (one commit round of LocalLog). */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
