/**
 * The producer: publishes product events in batches (`publishBatch`), several batches in flight at
 * once, optionally paced to a rate. Each batch resolves once every event in it is stored; the
 * SDK's own bound on unconfirmed publishes keeps memory flat however fast this loop runs.
 */

import type { FlotillaClient } from '@flotilla/client';
import { type Logger, plainLogger } from '../common/log.js';
import { EVENTS_QUEUE, makeEvent } from './events.js';

export interface ProducerOptions {
  client: FlotillaClient;
  /** Events to publish. */
  count: number;
  /** Prefix of the event ids (default: a new one); the same run id makes a re-run a no-op. */
  runId?: string;
  /** Events per publishBatch call (default 500). */
  batchSize?: number;
  /** Batches in flight at once (default 4). */
  concurrency?: number;
  /** Events per second at most; 0 = as fast as the cluster confirms (default 0). */
  ratePerSec?: number;
  log?: Logger;
}

export interface ProducerResult {
  runId: string;
  /** Events stored by this run. */
  published: number;
  /** Events whose id had been stored before (a re-run). */
  duplicates: number;
  elapsedMs: number;
}

export async function runProducer(options: ProducerOptions): Promise<ProducerResult> {
  const { client, count } = options;
  const log = options.log ?? plainLogger('producer');
  const runId = options.runId ?? `run-${Date.now().toString(36)}`;
  const batchSize = options.batchSize ?? 500;
  const ratePerSec = options.ratePerSec ?? 0;
  const result: ProducerResult = { runId, published: 0, duplicates: 0, elapsedMs: 0 };
  const startedMs = performance.now();
  let next = 0;

  const lane = async () => {
    while (next < count) {
      const first = next;
      next = Math.min(count, next + batchSize);
      if (ratePerSec > 0) await waitUntil(startedMs + (first * 1000) / ratePerSec);
      const now = Date.now();
      const entries = [];
      for (let i = first; i < next; i++) {
        const event = makeEvent(runId, i, now);
        entries.push({ body: event, idempotencyKey: event.eventId });
      }
      const receipts = await client.publishBatch(EVENTS_QUEUE, entries);
      for (const receipt of receipts) {
        if (receipt.duplicate) result.duplicates++;
        else result.published++;
      }
    }
  };
  const stopProgress = logProgress(result, count, log);
  try {
    await Promise.all(Array.from({ length: options.concurrency ?? 4 }, lane));
  } finally {
    stopProgress();
  }
  result.elapsedMs = Math.round(performance.now() - startedMs);
  return result;
}

function waitUntil(monotonicMs: number): Promise<void> {
  const delayMs = monotonicMs - performance.now();
  return delayMs <= 0 ? Promise.resolve() : new Promise((resolve) => setTimeout(resolve, delayMs));
}

function logProgress(result: ProducerResult, count: number, log: Logger): () => void {
  const timer = setInterval(() => {
    log.info(`published ${result.published + result.duplicates} of ${count}`);
  }, 2_000);
  timer.unref();
  return () => clearInterval(timer);
}
