/**
 * Read waiters: a read resolves only once confirmed by the core *and* applied locally; losing
 * leadership fails reads not yet confirmed but keeps confirmed ones; stopping fails all.
 */
import { describe, expect, it } from 'vitest';
import { ReadWaiters } from './read-waiters.js';

const settled = async (p: Promise<void>) => {
  let state = 'pending';
  p.then(
    () => {
      state = 'resolved';
    },
    (err: Error) => {
      state = `rejected: ${err.message}`;
    },
  );
  await new Promise((resolve) => setImmediate(resolve));
  return state;
};

describe('read waiters', () => {
  it('resolves a confirmed read once the state machine reaches its index', async () => {
    const reads = new ReadWaiters();
    const early = reads.wait(reads.nextContext());
    const late = reads.wait(reads.nextContext());
    reads.confirm({ ctx: 1, index: 5 }, 5);
    reads.confirm({ ctx: 2, index: 9 }, 5);
    expect(await settled(early)).toBe('resolved');
    expect(await settled(late)).toBe('pending');
    reads.applied(8);
    expect(await settled(late)).toBe('pending');
    reads.applied(9);
    expect(await settled(late)).toBe('resolved');
  });

  it('fails unconfirmed reads on leadership loss, keeps confirmed ones, and fails all on stop', async () => {
    const reads = new ReadWaiters();
    const confirmed = reads.wait(reads.nextContext());
    const unconfirmed = reads.wait(reads.nextContext());
    reads.confirm({ ctx: 1, index: 3 }, 0);
    reads.failPending(new Error('not leader'));
    expect(await settled(unconfirmed)).toBe('rejected: not leader');
    expect(await settled(confirmed)).toBe('pending');
    reads.confirm({ ctx: 2, index: 1 }, 10); // answer for a read already failed: ignored
    reads.failAll(new Error('stopped'));
    expect(await settled(confirmed)).toBe('rejected: stopped');
  });
});
