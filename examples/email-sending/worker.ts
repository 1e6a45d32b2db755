/**
 * The email worker: consumes "send email" jobs and hands them to the sink no faster than a token
 * bucket allows. A job the sink refuses is nacked, so the queue's retry policy (exponential
 * backoff) brings it back later; after `maxDeliveries` attempts it moves to the dead-letter queue.
 * A message that is not an email job fails the same way and ends in the dead-letter queue.
 */

import type { FlotillaClient, Message, QueueOptionsPatch } from '@flotilla/client';
import { type Logger, plainLogger } from '../common/log.js';
import { ensureQueue } from '../common/queues.js';
import { describeError } from '../common/shutdown.js';
import { asEmailJob, EMAIL_DLQ, EMAIL_QUEUE } from './email.js';
import type { EmailSink } from './sink.js';
import { TokenBucket } from './token-bucket.js';

/**
 * The queue's defaults: five attempts, retried after 1 s, 2 s, 4 s, 8 s (capped at 30 s). A lease
 * of 30 s is far longer than a job waits for a token (prefetch / rate = 0.5 s at the defaults).
 */
export const EMAIL_QUEUE_OPTIONS: QueueOptionsPatch = {
  deadLetterQueue: EMAIL_DLQ,
  maxDeliveries: 5,
  visibilityTimeoutMs: 30_000,
  retry: { backoff: 'exponential', delayMs: 1_000, maxDelayMs: 30_000 },
};

/** Creates (or updates) the email queue and its dead-letter queue. */
export async function setupEmailQueues(
  client: FlotillaClient,
  options: QueueOptionsPatch = EMAIL_QUEUE_OPTIONS,
): Promise<void> {
  await ensureQueue(client, EMAIL_DLQ);
  await ensureQueue(client, EMAIL_QUEUE, { ...options, deadLetterQueue: EMAIL_DLQ });
}

export interface EmailWorkerOptions {
  client: FlotillaClient;
  sink: EmailSink;
  /** Sustained sends per second (default 200). */
  ratePerSec?: number;
  /** Sends allowed at once after an idle spell: the token bucket's capacity (default 20). */
  burst?: number;
  /** Told the time of every token the worker takes, one per send attempt (observability, tests). */
  onTokenGranted?: (atMs: number) => void;
  /** Jobs held at once (default 100); keep prefetch / rate well under the queue's lease. */
  prefetch?: number;
  log?: Logger;
  /** How often to log progress, in ms (default 5,000; 0 = never). */
  progressEveryMs?: number;
}

export interface EmailWorkerStats {
  /** Emails the sink accepted. */
  sent: number;
  /** Attempts the sink refused (each retried later by the queue). */
  failedAttempts: number;
  /** Messages that were not email jobs. */
  invalid: number;
}

export interface EmailWorker {
  readonly stats: Readonly<EmailWorkerStats>;
  readonly bucket: TokenBucket;
  /** Stops taking jobs and waits for the jobs in hand to be sent and settled. */
  close(): Promise<void>;
}

export async function startEmailWorker(options: EmailWorkerOptions): Promise<EmailWorker> {
  const { client, sink } = options;
  const log = options.log ?? plainLogger('email-worker');
  const ratePerSec = options.ratePerSec ?? 200;
  const bucket = new TokenBucket({
    ratePerSec,
    capacity: options.burst ?? 20,
    onGrant: options.onTokenGranted,
  });
  const stats: EmailWorkerStats = { sent: 0, failedAttempts: 0, invalid: 0 };

  const handle = async (message: Message) => {
    const job = asEmailJob(message.body);
    if (job === null) {
      stats.invalid++;
      log.warn(`${EMAIL_QUEUE}#${message.seq} is not an email job (attempt ${message.deliveryCount})`);
      throw new Error('not an email job');
    }
    await bucket.take();
    try {
      await sink.send(job);
    } catch (error) {
      stats.failedAttempts++;
      log.warn(
        `email ${job.id} to ${job.to}: attempt ${message.deliveryCount} failed (${describeError(error)})`,
      );
      throw error; // nack: the queue's backoff decides when it comes back
    }
    stats.sent++;
  };

  const subscription = await client.consume(EMAIL_QUEUE, handle, { prefetch: options.prefetch ?? 100 });
  log.info(`consuming ${EMAIL_QUEUE} at up to ${ratePerSec}/s (prefetch ${subscription.prefetch})`);
  const stopProgress = logProgress(stats, bucket, log, options.progressEveryMs ?? 5_000);
  return {
    stats,
    bucket,
    close: async () => {
      await subscription.close();
      stopProgress();
      log.info(
        `stopped: ${stats.sent} sent, ${stats.failedAttempts} failed attempts, ${stats.invalid} invalid`,
      );
    },
  };
}

/** Logs a progress line now and then while there is something new to say; returns the stopper. */
function logProgress(stats: EmailWorkerStats, bucket: TokenBucket, log: Logger, everyMs: number): () => void {
  if (everyMs <= 0) return () => {};
  let lastSent = stats.sent;
  const timer = setInterval(() => {
    if (stats.sent === lastSent && bucket.waiting === 0) return;
    const perSec = Math.round(((stats.sent - lastSent) * 1000) / everyMs);
    lastSent = stats.sent;
    log.info(
      `sent ${stats.sent} (${perSec}/s), failed attempts ${stats.failedAttempts}, waiting ${bucket.waiting}`,
    );
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
