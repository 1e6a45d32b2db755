/**
 * Proves the log entry encoding: every command survives encode/decode unchanged, bodies come back
 * as views into the entry (no copies), malformed commands become `invalid` (answered with
 * INVALID_ARGUMENT, never a throw), and only a broken envelope raises CommandDecodeError.
 */

import { MsgpackWriter } from '@flotilla/shared';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CommandDecodeError, decodeBatch, decodeCommand, encodeBatch, encodeCommand } from './commands.js';
import { QueueStateMachine } from './state-machine.js';
import { bytes, queueOptions } from './test-support.js';
import type { Command } from './types.js';

const ref = { queue: 'q', seq: 7, deliveryId: 12 };
const samples: Command[] = [
  { op: 'tick' },
  { op: 'createQueue', queue: 'q', options: queueOptions({ deadLetterQueue: 'dlq', maxDeliveries: 3 }) },
  { op: 'updateQueue', queue: 'q', changes: { maxMessages: 10, retry: { backoff: 'exponential' } } },
  { op: 'updateQueue', queue: 'q', changes: { deadLetterQueue: null } },
  { op: 'deleteQueue', queue: 'q' },
  { op: 'purgeQueue', queue: 'q' },
  {
    op: 'publish',
    queue: 'q',
    messages: [
      { body: bytes('plain') },
      {
        body: bytes('full'),
        headers: JSON.parse('{"a":"1","__proto__":"x"}'),
        idempotencyKey: 'k',
        delayMs: 5,
        ttlMs: 9,
        group: 'g',
        priority: 2,
        format: 3,
      },
      { body: new Uint8Array(70_000), priority: 1 },
      { body: bytes('text'), format: 1 },
    ],
  },
  { op: 'deliver', queue: 'q', consumerId: 'n1/3', max: 10 },
  { op: 'deliver', queue: 'q', consumerId: 'n1/3', max: 10, leaseMs: 500 },
  { op: 'ack', items: [ref, { queue: 'other', seq: 1, deliveryId: 2 }] },
  { op: 'nack', items: [ref] },
  { op: 'nack', items: [ref], delayMs: 0 },
  { op: 'nack', items: [ref, { queue: 'other', seq: 1, deliveryId: 2 }], deadLetter: true },
  { op: 'extend', items: [ref], ms: 1000 },
  { op: 'release', consumerIds: ['n1/1', 'n1/2'] },
  { op: 'release', consumerIds: ['n1/3'], failed: true },
  { op: 'releaseAllExcept', ownerPrefix: 'n2/' },
  { op: 'redrive', dlq: 'dlq', target: null, max: null },
  { op: 'redrive', dlq: 'dlq', target: 'q', max: 5 },
];

/** What decoding must give back: absent optionals come back absent or null. */
function normalise(command: Command): unknown {
  return JSON.parse(
    JSON.stringify(command, (_key, value) =>
      value instanceof Uint8Array ? [...value] : value === undefined ? null : value,
    ),
    (_key, value) => (value === null ? undefined : value),
  );
}

describe('command encoding', () => {
  it('round-trips every command kind inside one batch', () => {
    const entry = encodeBatch(1234, samples);
    const decoded = decodeBatch(entry);
    expect(decoded.timeMs).toBe(1234);
    expect(decoded.commands.map(normalise)).toEqual(samples.map(normalise));
  });

  it('round-trips single commands', () => {
    for (const command of samples)
      expect(normalise(decodeCommand(encodeCommand(command)))).toEqual(normalise(command));
  });

  it('keeps bodies as views into the entry buffer', () => {
    const entry = encodeBatch(1, [{ op: 'publish', queue: 'q', messages: [{ body: bytes('hello') }] }]);
    const [command] = decodeBatch(entry).commands;
    if (command?.op !== 'publish') throw new Error('expected publish');
    const body = command.messages[0]?.body as Uint8Array;
    expect(body.buffer).toBe(entry.buffer);
    expect(new TextDecoder().decode(body)).toBe('hello');
  });

  it('turns a header key named __proto__ into an ordinary header', () => {
    const entry = encodeBatch(1, [samples[6] as Command]);
    const [command] = decodeBatch(entry).commands;
    if (command?.op !== 'publish') throw new Error('expected publish');
    const headers = command.messages[1]?.headers as Record<string, string>;
    expect(Object.getPrototypeOf(headers)).toBe(Object.prototype);
    expect(Object.keys(headers)).toEqual(['a', '__proto__']);
  });

  it('decodes a malformed command as invalid, and the state machine answers it with INVALID_ARGUMENT', () => {
    const w = new MsgpackWriter();
    w.arrayHeader(2);
    w.number(1000);
    w.arrayHeader(3);
    w.arrayHeader(2); // deliver with missing fields
    w.number(6);
    w.str('q');
    w.arrayHeader(1); // unknown opcode
    w.number(99);
    w.str('not a list');
    const { commands } = decodeBatch(w.finish());
    expect(commands.map((c) => c.op)).toEqual(['invalid', 'invalid', 'invalid']);
    const sm = new QueueStateMachine();
    const { replies } = sm.applyEntry({ timeMs: 1000 }, commands);
    expect(replies.every((r) => !r.ok && r.code === 'INVALID_ARGUMENT')).toBe(true);
  });

  it('applyEncoded applies a good entry and skips a broken one without moving the clock', () => {
    const sm = new QueueStateMachine();
    const good = sm.applyEncoded(
      encodeBatch(500, [{ op: 'createQueue', queue: 'q', options: queueOptions() }]),
    );
    expect(good).toMatchObject({ decodeError: null, replies: [{ ok: true, created: true }] });
    const broken = sm.applyEncoded(new Uint8Array([0x92, 0xcb]));
    expect(broken.replies).toEqual([]);
    expect(broken.decodeError).toMatch(/malformed/);
    expect(sm.timeMs).toBe(500);
  });

  it('raises CommandDecodeError only for a broken envelope', () => {
    expect(() => decodeBatch(new Uint8Array([0xc1]))).toThrow(CommandDecodeError);
    expect(() => decodeBatch(encodeCommand({ op: 'tick' }))).toThrow(/entry must be/);
    const truncated = encodeBatch(5, samples).subarray(0, 40);
    expect(() => decodeBatch(truncated)).toThrow(CommandDecodeError);
  });

  it('never throws anything but CommandDecodeError on arbitrary bytes, and applying what decodes never throws', () => {
    const valid = encodeBatch(99, samples);
    const mutated = fc.tuple(
      fc.nat({ max: valid.length - 1 }),
      fc.integer({ min: 0, max: 255 }),
      fc.nat({ max: valid.length }),
    );
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 64 }),
          mutated.map(([at, byte, cut]) => {
            const copy = valid.slice(0, Math.max(cut, at + 1));
            copy[at] = byte;
            return copy;
          }),
        ),
        (input) => {
          let decoded: ReturnType<typeof decodeBatch>;
          try {
            decoded = decodeBatch(input);
          } catch (error) {
            expect(error).toBeInstanceOf(CommandDecodeError);
            return;
          }
          const sm = new QueueStateMachine();
          sm.apply({ timeMs: 1 }, { op: 'createQueue', queue: 'q', options: queueOptions() });
          sm.apply({ timeMs: 1 }, { op: 'createQueue', queue: 'dlq', options: queueOptions() });
          const { replies } = sm.applyEntry({ timeMs: decoded.timeMs }, decoded.commands);
          expect(replies).toHaveLength(decoded.commands.length);
        },
      ),
      { numRuns: 2000 },
    );
  });
});
