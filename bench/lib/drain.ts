/**
 * Draining a queue through the SDK's push consumer: `consume()` with a prefetch, acking each
 * message from the handler, counting acks as the broker confirms them. Ends when the expected
 * number is acked or a completion check says the queue is empty; fails when progress stalls.
 */
import type { FlotillaClient, Message } from '@flotilla/client';
import { describeError } from './publish.js';

export interface DrainOptions {
  client: FlotillaClient;
  queue: string;
  prefetch: number;
  /** Stop once this many acks are confirmed; null: rely on `isComplete`. */
  expected: number | null;
  /** Sees every delivery before it is acked. */
  onMessage?: (message: Message) => void;
  /** Polled while draining; true ends the drain (e.g. the queue's depth is 0). */
  isComplete?: () => Promise<boolean>;
  /** No ack confirmed for this long fails the drain. */
  stallMs: number;
}

export interface DrainResult {
  delivered: number;
  acked: number;
  ackFailed: number;
  firstAckError: string | null;
  /** From the `consume()` call to the last confirmed ack. */
  elapsedMs: number;
  /** From the `consume()` call to the last delivery. */
  toLastDeliveryMs: number;
}

const COMPLETION_POLL_MS = 250;

export async function drainQueue(options: DrainOptions): Promise<DrainResult> {
  const { client, queue, prefetch, expected, onMessage, isComplete, stallMs } = options;
  const startedMs = performance.now();
  const result: DrainResult = {
    delivered: 0,
    acked: 0,
    ackFailed: 0,
    firstAckError: null,
    elapsedMs: 0,
    toLastDeliveryMs: 0,
  };
  let progressAtMs = startedMs;
  let finish!: () => void;
  let fail!: (error: Error) => void;
  const done = new Promise<void>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  const onAcked = () => {
    result.acked++;
    progressAtMs = performance.now();
    result.elapsedMs = progressAtMs - startedMs;
    if (expected !== null && result.acked >= expected) finish();
  };
  const onAckFailed = (error: unknown) => {
    result.ackFailed++;
    result.firstAckError ??= describeError(error);
  };
  const subscription = await client.consume(
    queue,
    (message) => {
      result.delivered++;
      result.toLastDeliveryMs = performance.now() - startedMs;
      onMessage?.(message);
      message.ack().then(onAcked, onAckFailed);
    },
    { prefetch },
  );
  const watchdog = setInterval(() => {
    if (performance.now() - progressAtMs > stallMs) {
      fail(new Error(`drain of ${queue} stalled: ${result.acked} acked, none in the last ${stallMs} ms`));
    }
  }, 500);
  const poller = isComplete === undefined ? null : pollCompletion(isComplete, finish, done);
  try {
    await done;
  } finally {
    clearInterval(watchdog);
    finish();
    await poller;
    await subscription.close();
  }
  return result;
}

async function pollCompletion(isComplete: () => Promise<boolean>, finish: () => void, done: Promise<void>) {
  let over = false;
  done.then(
    () => {
      over = true;
    },
    () => {
      over = true;
    },
  );
  while (!over) {
    await new Promise((r) => setTimeout(r, COMPLETION_POLL_MS));
    if (!over && (await isComplete().catch(() => false))) finish();
  }
}
