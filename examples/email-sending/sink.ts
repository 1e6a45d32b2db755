/**
 * A fake SMTP server for the example: it "sends" an email by recording it (and, if asked,
 * appending it to a JSON-lines file), can answer a share of attempts with a temporary failure
 * (SMTP 451) to exercise retries, and keeps what a test or a by-hand run needs to judge the
 * worker: the time of every attempt (for the rate limit) and duplicates by job id (delivery is at
 * least once, so a real sender would dedupe on the id the same way).
 */

import { createWriteStream, type WriteStream } from 'node:fs';
import type { EmailJob } from './email.js';

/** Where the worker sends email. */
export interface EmailSink {
  /** Sends one email; rejects with a temporary error the worker should retry later. */
  send(job: EmailJob): Promise<void>;
}

/** A temporary refusal (SMTP 451 "try again later"). */
export class SmtpTemporaryError extends Error {
  override readonly name = 'SmtpTemporaryError';
  readonly smtpCode = 451;
}

export interface FakeSmtpSinkOptions {
  /** Share of attempts answered with a temporary failure, 0..1 (default 0). */
  failRate?: number;
  /** Random source for failures (injectable to make them predictable). */
  random?: () => number;
  /** Time one send takes, in ms (default 0). */
  latencyMs?: number;
  /** Append every accepted email to this JSON-lines file. */
  file?: string;
  /** Clock for attempt times in ms; by default the same monotonic clock as the token bucket. */
  nowMs?: () => number;
}

export interface SinkSummary {
  attempts: number;
  temporaryFailures: number;
  /** Emails accepted, duplicates included. */
  accepted: number;
  /** Distinct job ids accepted. */
  unique: number;
  /** Accepted emails whose id had been accepted before. */
  duplicates: number;
}

export class FakeSmtpSink implements EmailSink {
  /** When each attempt started (monotonic ms), in order. */
  readonly attemptTimesMs: number[] = [];
  private readonly acceptedIds = new Set<string>();
  private readonly failRate: number;
  private readonly random: () => number;
  private readonly latencyMs: number;
  private readonly nowMs: () => number;
  private readonly out: WriteStream | undefined;
  private failures = 0;
  private accepted = 0;
  private duplicates = 0;

  constructor(options: FakeSmtpSinkOptions = {}) {
    this.failRate = options.failRate ?? 0;
    if (!(this.failRate >= 0 && this.failRate <= 1)) {
      throw new RangeError(`failRate must be within 0..1, got ${this.failRate}`);
    }
    this.random = options.random ?? Math.random;
    this.latencyMs = options.latencyMs ?? 0;
    this.nowMs = options.nowMs ?? (() => performance.now());
    this.out = options.file === undefined ? undefined : createWriteStream(options.file, { flags: 'a' });
  }

  async send(job: EmailJob): Promise<void> {
    this.attemptTimesMs.push(this.nowMs());
    if (this.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, this.latencyMs));
    if (this.failRate > 0 && this.random() < this.failRate) {
      this.failures++;
      throw new SmtpTemporaryError(`451 mailbox busy, try ${job.to} again later`);
    }
    this.accepted++;
    if (this.acceptedIds.has(job.id)) this.duplicates++;
    else this.acceptedIds.add(job.id);
    this.out?.write(
      `${JSON.stringify({ id: job.id, to: job.to, subject: job.subject, sentAtMs: Date.now() })}\n`,
    );
  }

  /** Whether an email with this job id was accepted. */
  has(id: string): boolean {
    return this.acceptedIds.has(id);
  }

  summary(): SinkSummary {
    return {
      attempts: this.attemptTimesMs.length,
      temporaryFailures: this.failures,
      accepted: this.accepted,
      unique: this.acceptedIds.size,
      duplicates: this.duplicates,
    };
  }

  /** Flushes the file, if any. */
  async close(): Promise<void> {
    const out = this.out;
    if (out === undefined || out.closed) return;
    await new Promise<void>((resolve, reject) =>
      out.end((error?: Error | null) => (error ? reject(error) : resolve())),
    );
  }
}
