/**
 * Webhook processors: consume the stored webhooks and run a processing function on each. A
 * function that throws nacks the message, so the queue's retry policy brings it back after an
 * exponentially growing delay; after `maxDeliveries` attempts it moves to the dead-letter queue.
 * Because every webhook of a customer is in that customer's message group, the broker keeps one
 * of them in flight at a time — a retrying webhook holds back the customer's later ones, so
 * processing order per customer is arrival order, with any number of processors.
 */

import type { FlotillaClient, Message, QueueOptionsPatch } from '@flotilla/client';
import { type Logger, plainLogger } from '../common/log.js';
import { ensureQueue } from '../common/queues.js';
import { describeError } from '../common/shutdown.js';
import { jsonBody, toWebhookEvent, WEBHOOK_DLQ, WEBHOOK_QUEUE, type WebhookEvent } from './webhook.js';

/** Five attempts, retried after 1 s, 2 s, 4 s, 8 s (capped at 60 s), then the dead-letter queue. */
export const WEBHOOK_QUEUE_OPTIONS: QueueOptionsPatch = {
  maxDeliveries: 5,
  visibilityTimeoutMs: 30_000,
  retry: { backoff: 'exponential', delayMs: 1_000, maxDelayMs: 60_000 },
};

/** Creates (or updates) the webhook queue and its dead-letter queue. */
export async function setupWebhookQueues(
  client: FlotillaClient,
  options: QueueOptionsPatch = WEBHOOK_QUEUE_OPTIONS,
): Promise<void> {
  await ensureQueue(client, WEBHOOK_DLQ);
  await ensureQueue(client, WEBHOOK_QUEUE, { ...options, deadLetterQueue: WEBHOOK_DLQ });
}

/** Does the work for one webhook; throwing means "try again later". */
export type ProcessWebhook = (event: WebhookEvent) => Promise<void>;

export interface WebhookProcessorOptions {
  client: FlotillaClient;
  process: ProcessWebhook;
  /** Webhooks in progress at once, across customers (default 50). */
  prefetch?: number;
  log?: Logger;
}

export interface WebhookProcessor {
  /** Stops taking webhooks and waits for those in progress to finish and settle. */
  close(): Promise<void>;
}

export async function startWebhookProcessor(options: WebhookProcessorOptions): Promise<WebhookProcessor> {
  const { client, process } = options;
  const log = options.log ?? plainLogger('webhook-worker');
  // The queue's own setting decides when a failure is the last one; read it rather than assume it.
  const { maxDeliveries } = (await client.queueStats(WEBHOOK_QUEUE)).options;

  const handle = async (message: Message) => {
    const event = toWebhookEvent(message);
    try {
      await process(event);
    } catch (error) {
      const last = maxDeliveries > 0 && event.attempt >= maxDeliveries;
      const next = last ? `giving up: it moves to ${WEBHOOK_DLQ}` : 'will retry after the backoff';
      log.warn(
        `${event.customer}/${event.deliveryId} attempt ${event.attempt}/${maxDeliveries || '∞'} failed ` +
          `(${describeError(error)}); ${next}`,
      );
      throw error;
    }
  };

  const subscription = await client.consume(WEBHOOK_QUEUE, handle, { prefetch: options.prefetch ?? 50 });
  log.info(
    `processing ${WEBHOOK_QUEUE} (prefetch ${subscription.prefetch}, ${maxDeliveries} attempts, then ${WEBHOOK_DLQ})`,
  );
  return { close: () => subscription.close() };
}

/** A failure the demo processor makes up, to show retries. */
export class FlakyFailure extends Error {
  override readonly name = 'FlakyFailure';
}

/** A webhook the demo processor can never handle (its JSON body has `"poison": true`). */
export class PoisonWebhook extends Error {
  override readonly name = 'PoisonWebhook';
}

export interface DemoProcessorOptions {
  /** Share of attempts that fail at random, 0..1 (default 0). */
  failRate?: number;
  random?: () => number;
  /** Overrides the random choice of which attempts fail (tests use it to be exact). */
  shouldFail?: (event: WebhookEvent) => boolean;
  /** Told about every webhook processed successfully. */
  onProcessed?: (event: WebhookEvent) => void;
  log?: Logger;
}

/**
 * The demo's processing: refuses poison webhooks every time, fails a share of attempts at random
 * (a flaky downstream), and otherwise "processes" the webhook by logging it.
 */
export function demoProcessor(options: DemoProcessorOptions = {}): ProcessWebhook {
  const failRate = options.failRate ?? 0;
  const random = options.random ?? Math.random;
  const shouldFail = options.shouldFail ?? (() => failRate > 0 && random() < failRate);
  return async (event) => {
    const payload = jsonBody(event);
    if (
      typeof payload === 'object' &&
      payload !== null &&
      (payload as { poison?: unknown }).poison === true
    ) {
      throw new PoisonWebhook('payload marked poison');
    }
    if (shouldFail(event)) throw new FlakyFailure('downstream timed out');
    options.log?.info(
      `${event.customer}/${event.deliveryId} processed (#${event.seq}, attempt ${event.attempt})`,
    );
    options.onProcessed?.(event);
  };
}
