/**
 * Windowed confirmed publishing through the SDK: at most `window` publishes unconfirmed, each
 * confirm releasing the next send, as a producer that keeps a bounded number in flight would.
 * Records every confirm's latency (from the `publish()` call to its resolution).
 */
import type { FlotillaClient } from '@flotilla/client';
import { LatencyRecorder } from './latency.js';

export interface WindowedPublishOptions {
  client: FlotillaClient;
  queue: string;
  /** Messages to publish; ids 0..count-1. */
  count: number;
  /** Unconfirmed publishes at most. */
  window: number;
  /** The body of message `id`. */
  body: (id: number) => Uint8Array;
}

export interface WindowedPublishResult {
  confirmed: number;
  failed: number;
  /** The first failure's code and message, if any failed. */
  firstError: string | null;
  /** From the first send to the last confirm (or failure). */
  elapsedMs: number;
  latency: LatencyRecorder;
}

export function publishWindowed(options: WindowedPublishOptions): Promise<WindowedPublishResult> {
  const { client, queue, count, window, body } = options;
  const latency = new LatencyRecorder();
  let next = 0;
  let confirmed = 0;
  let failed = 0;
  let firstError: string | null = null;
  const startedMs = performance.now();
  return new Promise((resolve) => {
    const settle = () => {
      if (confirmed + failed === count) {
        resolve({ confirmed, failed, firstError, elapsedMs: performance.now() - startedMs, latency });
      } else if (next < count) {
        send();
      }
    };
    const send = () => {
      const id = next++;
      const sentMs = performance.now();
      client.publish(queue, body(id)).then(
        () => {
          latency.recordMs(performance.now() - sentMs);
          confirmed++;
          settle();
        },
        (error: unknown) => {
          failed++;
          firstError ??= describeError(error);
          settle();
        },
      );
    };
    if (count === 0) settle();
    while (next < Math.min(count, window)) send();
  });
}

/** `CODE: message` for FlotillaErrors, the message otherwise. */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' ? `${code}: ${error.message}` : error.message;
  }
  return String(error);
}
