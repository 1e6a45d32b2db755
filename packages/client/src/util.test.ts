/**
 * Proves the runtime helpers: backoff grows exponentially to its cap with jitter inside bounds,
 * generated idempotency keys are unique and well-formed, deadlines reject with TIMEOUT and cancel
 * the attempt in flight, the turn scheduler runs after the promise continuations of a turn, and a
 * definite failure after an attempt of unknown outcome is reported as of unknown outcome.
 */

import { describe, expect, it } from 'vitest';
import { FlotillaError } from './index.js';
import {
  afterTurn,
  backoffDelayMs,
  Deadline,
  IdempotencyKeys,
  lastAttemptError,
  outcomeUnknown,
  randomBase64Url,
} from './util.js';

describe('backoffDelayMs', () => {
  const options = { initialMs: 100, maxMs: 2_000 };

  it('doubles per attempt up to the cap, half fixed and half random', () => {
    const low = (attempt: number) => backoffDelayMs(attempt, options, () => 0);
    const high = (attempt: number) => backoffDelayMs(attempt, options, () => 1);
    expect([1, 2, 3, 4, 5, 6, 20].map(low)).toEqual([50, 100, 200, 400, 800, 1_000, 1_000]);
    expect([1, 2, 3, 4, 5, 6, 20].map(high)).toEqual([100, 200, 400, 800, 1_600, 2_000, 2_000]);
  });

  it('stays within bounds for random jitter and huge attempt numbers', () => {
    for (let attempt = 1; attempt < 2_000; attempt += 37) {
      const delay = backoffDelayMs(attempt, options);
      expect(delay).toBeGreaterThanOrEqual(50);
      expect(delay).toBeLessThanOrEqual(2_000);
    }
  });
});

describe('idempotency keys', () => {
  it('are unique across keys and clients, base64url prefixed', () => {
    const a = new IdempotencyKeys();
    const b = new IdempotencyKeys();
    const keys = new Set<string>();
    for (let i = 0; i < 1_000; i++) {
      keys.add(a.next());
      keys.add(b.next());
    }
    expect(keys.size).toBe(2_000);
    for (const key of keys) expect(key).toMatch(/^[A-Za-z0-9_-]{22}\.[0-9a-z]+$/);
  });

  it('random base64url has the expected length for 128 bits', () => {
    expect(randomBase64Url(16)).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(randomBase64Url(3)).toMatch(/^[A-Za-z0-9_-]{4}$/);
  });
});

describe('Deadline', () => {
  it('rejects with TIMEOUT and cancels the attempt in flight', async () => {
    const deadline = new Deadline(10, () => 'probe');
    let cancelled = false;
    const never = new Promise<never>(() => {});
    const outcome = await deadline
      .race(never, true, () => {
        cancelled = true;
      })
      .catch((error: unknown) => error);
    expect(outcome).toBeInstanceOf(FlotillaError);
    expect((outcome as FlotillaError).code).toBe('TIMEOUT');
    expect((outcome as FlotillaError).details).toMatchObject({ timeoutMs: 10, sent: true });
    expect(cancelled).toBe(true);
    expect(deadline.expired).toBe(true);
  });

  it('passes a result through and can be cleared', async () => {
    const deadline = new Deadline(1_000, () => 'probe');
    expect(await deadline.race(Promise.resolve(7), false)).toBe(7);
    deadline.clear();
  });
});

it('afterTurn runs once the promise continuations of the turn have run', async () => {
  const order: string[] = [];
  const done = new Promise<void>((resolve) => {
    afterTurn(() => {
      order.push('after turn');
      resolve();
    });
  });
  void Promise.resolve()
    .then(() => order.push('continuation 1'))
    .then(() => order.push('continuation 2'));
  await done;
  expect(order).toEqual(['continuation 1', 'continuation 2', 'after turn']);
});

describe('outcomeUnknown', () => {
  const lost = new FlotillaError('CONNECTION_LOST', 'socket closed');
  const refused = new FlotillaError('UNAVAILABLE', 'no quorum');
  const missing = new FlotillaError('QUEUE_NOT_FOUND', 'no queue q');

  it('turns a definite last failure after a maybe-applied attempt into outcome unknown', () => {
    const error = outcomeUnknown('publish', missing, [refused, lost, refused]);
    expect(error.code).toBe('CONNECTION_LOST');
    expect(error.maybeApplied).toBe(true);
    expect(error.cause).toBe(missing);
    expect(error.details.attempts).toEqual([
      { code: 'UNAVAILABLE', message: 'no quorum' },
      { code: 'CONNECTION_LOST', message: 'socket closed' },
      { code: 'UNAVAILABLE', message: 'no quorum' },
      { code: 'QUEUE_NOT_FOUND', message: 'no queue q' },
    ]);
    expect(lastAttemptError(error)).toBe(missing);
  });

  it('leaves the last failure alone when it is maybe-applied or no earlier attempt was', () => {
    const timeout = new FlotillaError('TIMEOUT', 'late');
    expect(outcomeUnknown('publish', timeout, [lost])).toBe(timeout);
    expect(outcomeUnknown('publish', missing, [refused, refused])).toBe(missing);
    expect(outcomeUnknown('publish', missing, [])).toBe(missing);
    expect(lastAttemptError(missing)).toBe(missing);
  });
});
