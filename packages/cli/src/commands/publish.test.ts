/**
 * Proves how `flotilla publish` arguments become a plan: where bodies come from, per-message
 * options, idempotency keys for many messages, and the usage errors for contradictory input.
 */

import { describe, expect, it } from 'vitest';
import { UsageError } from '../exit-codes.js';
import {
  DEFAULT_RANDOM_SIZE_BYTES,
  formatPublishSummary,
  idempotencyKeyFor,
  publishPlanFromFlags,
  stdinBody,
} from './publish.js';

describe('publishPlanFromFlags', () => {
  it('one text message with its options', () => {
    const plan = publishPlanFromFlags('emails', 'hello', {
      delayMs: '5000',
      ttlMs: '60000',
      group: 'g',
      priority: '2',
      header: ['a=1', 'b=x=y'],
      idempotencyKey: 'k',
    });
    expect(plan).toEqual({
      queue: 'emails',
      count: 1,
      source: { kind: 'text', text: 'hello' },
      ratePerSec: null,
      options: { delayMs: 5000, ttlMs: 60000, group: 'g', priority: 2, headers: { a: '1', b: 'x=y' } },
      idempotencyKey: 'k',
      json: false,
    });
  });

  it('- reads stdin; --count without a message generates payloads of --size (or the default)', () => {
    expect(publishPlanFromFlags('q', '-', {}).source).toEqual({ kind: 'stdin' });
    expect(publishPlanFromFlags('q', undefined, { count: '10' }).source).toEqual({
      kind: 'random',
      sizeBytes: DEFAULT_RANDOM_SIZE_BYTES,
    });
    const plan = publishPlanFromFlags('q', undefined, {
      count: '1000',
      size: '1KiB',
      rate: '250',
      json: true,
    });
    expect(plan).toMatchObject({
      count: 1000,
      source: { kind: 'random', sizeBytes: 1024 },
      ratePerSec: 250,
      json: true,
    });
    expect(publishPlanFromFlags('q', undefined, { size: '0' }).source).toEqual({
      kind: 'random',
      sizeBytes: 0,
    });
  });

  it('the same text many times with --count and a message', () => {
    expect(publishPlanFromFlags('q', 'ping', { count: '3' })).toMatchObject({
      count: 3,
      source: { kind: 'text', text: 'ping' },
    });
  });

  it('refuses contradictory or invalid input with a usage error', () => {
    const bad: [string | undefined, Record<string, unknown>][] = [
      [undefined, {}],
      ['text', { size: '10' }],
      [undefined, { count: '0' }],
      [undefined, { count: '2', size: '2MiB' }],
      ['x', { priority: '10' }],
      ['x', { delayMs: '-1' }],
      ['x', { ttlMs: '0' }],
      ['x', { rate: '0' }],
      ['x', { header: ['nokey'] }],
    ];
    for (const [message, flags] of bad) {
      expect(() => publishPlanFromFlags('q', message, flags), JSON.stringify(flags)).toThrow(UsageError);
    }
  });
});

describe('idempotency keys', () => {
  it('uses the key as given for one message and numbers it for many; none without --idempotency-key', () => {
    const one = publishPlanFromFlags('q', 'x', { idempotencyKey: 'order-7' });
    expect(idempotencyKeyFor(one, 0)).toBe('order-7');
    const many = publishPlanFromFlags('q', 'x', { idempotencyKey: 'batch', count: '3' });
    expect([0, 1, 2].map((i) => idempotencyKeyFor(many, i))).toEqual(['batch-1', 'batch-2', 'batch-3']);
    expect(idempotencyKeyFor(publishPlanFromFlags('q', 'x', {}), 0)).toBeUndefined();
  });
});

describe('stdin and summary', () => {
  it('sends UTF-8 stdin as text and anything else as bytes', () => {
    expect(stdinBody(new TextEncoder().encode('héllo\n'))).toBe('héllo\n');
    const binary = new Uint8Array([0xff, 0x00, 0xc3]);
    expect(stdinBody(binary)).toBe(binary);
  });

  it('summarises a run for people', () => {
    const summary = {
      queue: 'q',
      requested: 1000,
      confirmed: 1000,
      duplicates: 0,
      firstSeq: 1,
      lastSeq: 1000,
      elapsedMs: 500,
      msgsPerSec: 2000,
      bytesPerSec: 512_000,
    };
    expect(formatPublishSummary(summary)).toBe(
      'published 1,000 messages to q in 0.50 s: 2,000 msgs/s, 500 KiB/s',
    );
    expect(formatPublishSummary({ ...summary, confirmed: 400, duplicates: 2 })).toBe(
      'published 400 of 1,000 messages to q in 0.50 s: 2,000 msgs/s, 500 KiB/s, 2 duplicates',
    );
  });
});
