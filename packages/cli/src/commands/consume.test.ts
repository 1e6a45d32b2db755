/** Proves how `flotilla consume` flags become a plan, and its exit codes for each way it can end. */

import { describe, expect, it } from 'vitest';
import { UsageError } from '../exit-codes.js';
import {
  type ConsumeOutcome,
  consumeExitCode,
  consumePlanFromFlags,
  DEFAULT_CONSUME_PREFETCH,
} from './consume.js';

describe('consumePlanFromFlags', () => {
  it('runs until stopped by default, acking, with the default prefetch', () => {
    expect(consumePlanFromFlags('q', {})).toEqual({
      queue: 'q',
      count: null,
      prefetch: DEFAULT_CONSUME_PREFETCH,
      timeoutMs: null,
      ack: true,
      json: false,
    });
  });

  it('never leases more than --count asks for unless --prefetch says so', () => {
    expect(consumePlanFromFlags('q', { count: '5' }).prefetch).toBe(5);
    expect(consumePlanFromFlags('q', { count: '5000' }).prefetch).toBe(DEFAULT_CONSUME_PREFETCH);
    expect(consumePlanFromFlags('q', { count: '5', prefetch: '50' }).prefetch).toBe(50);
  });

  it('with --no-ack holds all --count messages at once, and refuses a smaller --prefetch', () => {
    expect(consumePlanFromFlags('q', { count: '500', ack: false })).toMatchObject({
      prefetch: 500,
      ack: false,
    });
    expect(() => consumePlanFromFlags('q', { count: '500', ack: false, prefetch: '10' })).toThrow(UsageError);
  });

  it('refuses bad numbers', () => {
    for (const flags of [{ count: '0' }, { prefetch: '0' }, { prefetch: '10001' }, { timeoutMs: 'soon' }]) {
      expect(() => consumePlanFromFlags('q', flags), JSON.stringify(flags)).toThrow(UsageError);
    }
  });
});

describe('consumeExitCode', () => {
  const outcome = (received: number, ackFailures = 0): ConsumeOutcome => ({
    received,
    ackFailures,
    stoppedBy: null,
  });

  it('0 with all --count messages, 1 with fewer', () => {
    const plan = consumePlanFromFlags('q', { count: '3', timeoutMs: '100' });
    expect(consumeExitCode(plan, outcome(3))).toBe(0);
    expect(consumeExitCode(plan, outcome(2))).toBe(1);
  });

  it('0 when stopped without --count, whatever arrived', () => {
    const plan = consumePlanFromFlags('q', { timeoutMs: '100' });
    expect(consumeExitCode(plan, outcome(0))).toBe(0);
  });

  it('1 when an ack failed', () => {
    expect(consumeExitCode(consumePlanFromFlags('q', {}), outcome(4, 1))).toBe(1);
  });
});
