/**
 * The batch writer: consumes product events in batches of up to `maxMessages` (500), or whatever
 * arrived within `maxWaitMs` (1 s) of a batch's first event, and writes each batch as one
 * JSON-lines file. The batch is acked only after its file is written, fsynced and renamed into
 * place; if writing fails the whole batch is nacked and comes back after the queue's backoff. A
 * crash between the rename and the ack means the batch is delivered again and written to a second
 * file: at-least-once, so downstream loads should dedupe on `eventId` (`verify.ts` reports such
 * duplicates).
 */

import { mkdir } from 'node:fs/promises';
import type { FlotillaClient, Message, QueueOptionsPatch } from '@flotilla/client';
import { type Logger, plainLogger } from '../common/log.js';
import { ensureQueue } from '../common/queues.js';
import { describeError } from '../common/shutdown.js';
import { removeTemporaryFiles, writeFileDurably } from './durable-file.js';
import { EVENTS_DLQ, EVENTS_QUEUE, type OutputLine, type ProductEvent } from './events.js';

/**
 * Ten attempts, retried after 1 s doubling up to 30 s (a full disk gets time to be fixed); a lease
 * of 60 s covers a batch waiting its turn behind the one being written.
 */
export const EVENTS_QUEUE_OPTIONS: QueueOptionsPatch = {
  maxDeliveries: 10,
  visibilityTimeoutMs: 60_000,
  retry: { backoff: 'exponential', delayMs: 1_000, maxDelayMs: 30_000 },
};

/** Creates (or updates) the events queue and its dead-letter queue. */
export async function setupEventQueues(
  client: FlotillaClient,
  options: QueueOptionsPatch = EVENTS_QUEUE_OPTIONS,
): Promise<void> {
  await ensureQueue(client, EVENTS_DLQ);
  await ensureQueue(client, EVENTS_QUEUE, { ...options, deadLetterQueue: EVENTS_DLQ });
}

/** Writes one batch file; resolves only when it is durable. */
export type WriteBatchFile = (dir: string, name: string, data: string) => Promise<void>;

export interface BatchWriterOptions {
  client: FlotillaClient;
  /** Directory for the batch files (created if missing). */
  outDir: string;
  /** Events per file at most (default 500). */
  maxMessages?: number;
  /** A file is written this long after its first event even if not full, in ms (default 1,000). */
  maxWaitMs?: number;
  /** Events held at once (default 2 × maxMessages, so the next batch fills while one is written). */
  prefetch?: number;
  /** How a file is written (default `writeFileDurably`; tests inject failures here). */
  writeFile?: WriteBatchFile;
  log?: Logger;
}

export interface BatchWriterStats {
  files: number;
  events: number;
  /** Batches whose file could not be written (each nacked and retried). */
  failedBatches: number;
}

export interface BatchWriter {
  readonly stats: Readonly<BatchWriterStats>;
  /** Stops taking events and waits for the batch being written to finish and be acked. */
  close(): Promise<void>;
}

export async function startBatchWriter(options: BatchWriterOptions): Promise<BatchWriter> {
  const { client, outDir } = options;
  const log = options.log ?? plainLogger('batch-writer');
  const writeFile = options.writeFile ?? writeFileDurably;
  const maxMessages = options.maxMessages ?? 500;
  await mkdir(outDir, { recursive: true });
  const leftovers = await removeTemporaryFiles(outDir);
  if (leftovers > 0) log.warn(`removed ${leftovers} unfinished temporary files from an earlier run`);
  const stats: BatchWriterStats = { files: 0, events: 0, failedBatches: 0 };

  const writeBatch = async (messages: Message<ProductEvent>[]) => {
    const name = batchFileName(messages);
    try {
      await writeFile(outDir, name, messages.map(toLine).join(''));
    } catch (error) {
      stats.failedBatches++;
      log.warn(`could not write ${name} (${describeError(error)}); the batch will be retried`);
      throw error; // nack the whole batch: nothing of it was acked
    }
    stats.files++;
    stats.events += messages.length;
    log.info(`wrote ${name}: ${messages.length} events`);
  };

  const subscription = await client.consumeBatch<ProductEvent>(EVENTS_QUEUE, writeBatch, {
    maxMessages,
    maxWaitMs: options.maxWaitMs ?? 1_000,
    prefetch: options.prefetch ?? 2 * maxMessages,
  });
  log.info(`writing batches of up to ${maxMessages} events from ${EVENTS_QUEUE} to ${outDir}`);
  return { stats, close: () => subscription.close() };
}

function toLine(message: Message<ProductEvent>): string {
  const line: OutputLine = { seq: message.seq, publishedAtMs: message.publishedAtMs, event: message.body };
  return `${JSON.stringify(line)}\n`;
}

/** `batch-<time>-<first seq>-<last seq>.jsonl`: sorts by time of writing, names the range it holds. */
export function batchFileName(messages: readonly Message[]): string {
  let first = Number.POSITIVE_INFINITY;
  let last = 0;
  for (const message of messages) {
    first = Math.min(first, message.seq);
    last = Math.max(last, message.seq);
  }
  return `batch-${Date.now()}-${first}-${last}.jsonl`;
}
