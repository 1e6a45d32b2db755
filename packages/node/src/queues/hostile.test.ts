/**
 * Proves that nothing a command carries can crash the state machine or change it when refused:
 * commands built from arbitrary values (as a buggy or hostile node might propose) get a reply,
 * and every error reply leaves the digest unchanged.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { QueueStateMachine } from './state-machine.js';
import { bytes, queueOptions, T0 } from './test-support.js';
import type { Command } from './types.js';

const OPS = [
  'createQueue',
  'updateQueue',
  'deleteQueue',
  'purgeQueue',
  'publish',
  'deliver',
  'ack',
  'nack',
  'extend',
  'release',
  'releaseAllExcept',
  'redrive',
  'tick',
  'invalid',
  'bogus',
];

const anyField = fc.oneof(
  fc.anything(),
  fc.constantFrom('q', 'dlq', '', 'n1/1'),
  fc.integer({ min: -5, max: 5 }),
  fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, 2 ** 60, 1.5),
  fc.array(fc.record({ queue: fc.constantFrom('q', 7), seq: fc.anything(), deliveryId: fc.anything() })),
  fc.array(fc.record({ body: fc.oneof(fc.constant(bytes('x')), fc.anything()), priority: fc.anything() })),
  fc.constant(queueOptions()),
  fc.constant({ ...queueOptions(), retry: null }),
);

const hostileCommand = fc
  .record({
    op: fc.constantFrom(...OPS),
    queue: anyField,
    options: anyField,
    changes: anyField,
    messages: anyField,
    consumerId: anyField,
    max: anyField,
    leaseMs: anyField,
    items: anyField,
    delayMs: anyField,
    ms: anyField,
    consumerIds: anyField,
    ownerPrefix: anyField,
    dlq: anyField,
    target: anyField,
  })
  .map((c) => c as unknown as Command);

describe('hostile commands', () => {
  it('always get a reply, and refused ones change nothing', () => {
    fc.assert(
      fc.property(fc.array(hostileCommand, { maxLength: 12 }), (commands) => {
        const sm = new QueueStateMachine();
        sm.apply({ timeMs: T0 }, { op: 'createQueue', queue: 'dlq', options: queueOptions() });
        sm.apply(
          { timeMs: T0 },
          { op: 'createQueue', queue: 'q', options: queueOptions({ deadLetterQueue: 'dlq' }) },
        );
        sm.apply(
          { timeMs: T0 },
          { op: 'publish', queue: 'q', messages: [{ body: bytes('a') }, { body: bytes('b') }] },
        );
        for (const command of commands) {
          const before = sm.digest();
          const { reply } = sm.apply({ timeMs: T0 }, command);
          if (!reply.ok) expect(sm.digest()).toBe(before);
        }
      }),
      { numRuns: 200 },
    );
  });
});
