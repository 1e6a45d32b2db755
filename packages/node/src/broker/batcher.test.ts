/**
 * Proves how the proposal batcher treats the log's answers: an entry that would be larger than the
 * log accepts is cut in halves (in order) and never reaches the log, a single command too large on
 * its own is refused with FRAME_TOO_LARGE (nothing applied), a log that still says `too-large`
 * breaks an invariant and stops the flush, and the log's other refusals reach every owner of the
 * entry through `refusedError` (e.g. OVERLOADED, not NOT_LEADER) with the pending bytes given back.
 */
import { FlotillaError } from '@flotilla/shared';
import { describe, expect, it } from 'vitest';
import type { ProposeOutcome } from '../cluster/types.js';
import { type Command, decodeBatch } from '../queues/index.js';
import { ProposalBatcher, type ProposeRefused } from './batcher.js';
import { FakePort } from './testing/fake-port.js';
import { DEFAULT_RUNTIME_LIMITS } from './types.js';

/** A log that takes every entry up to `maxEntryBytes`, or answers with `refusal` when one is set. */
class RecordingLog {
  readonly entries: Uint8Array[] = [];
  refusal: ProposeRefused | null = null;

  constructor(readonly maxEntryBytes: number) {}

  tryPropose(data: Uint8Array): ProposeOutcome {
    if (this.refusal !== null) return this.refusal;
    this.entries.push(data);
    return { ok: true, index: this.entries.length, term: 1 };
  }
}

function setup(maxEntryBytes: number) {
  const log = new RecordingLog(maxEntryBytes);
  const refusals: ProposeRefused[] = [];
  const batcher = new ProposalBatcher(log, { now: () => 1_000 }, DEFAULT_RUNTIME_LIMITS, {
    scheduleFlush: () => {},
    refusedError: (refusal) => {
      refusals.push(refusal);
      return new FlotillaError('OVERLOADED', `refused: ${refusal.reason}`);
    },
  });
  return { log, batcher, refusals, port: new FakePort() };
}

function publish(bodyBytes: number): Command {
  return { op: 'publish', queue: 'q', messages: [{ body: new Uint8Array(bodyBytes) }] };
}

describe('entries and the log’s size limit', () => {
  it('cuts an entry the log could not take into halves, in order, each within the limit', () => {
    const { log, batcher, port } = setup(5_000);
    // The sizes given are far too low (as a poor estimate would be): the real entry is ~8 kB.
    for (let token = 1; token <= 8; token++) batcher.submit(publish(1_000 + token), port, token, 1);
    batcher.flush();
    for (const entry of log.entries) expect(entry.length).toBeLessThanOrEqual(5_000);
    const bodySizes = log.entries.map((entry) =>
      decodeBatch(entry).commands.map((c) => (c.op === 'publish' ? c.messages[0]!.body.length - 1_000 : 0)),
    );
    expect(bodySizes).toEqual([
      [1, 2, 3, 4],
      [5, 6, 7, 8],
    ]);
    expect(port.replies.size).toBe(0);
    expect(batcher.inFlightEntries).toBe(2);
  });

  it('refuses a single command larger than one entry with FRAME_TOO_LARGE and proposes the rest', () => {
    const { log, batcher, port } = setup(5_000);
    batcher.submit(publish(100), port, 1, 1);
    batcher.submit(publish(6_000), port, 2, 1);
    batcher.submit(publish(100), port, 3, 1);
    batcher.flush();
    const error = port.replies.get(2)?.error;
    expect(error).toMatchObject({ code: 'FRAME_TOO_LARGE', retryable: false, maybeApplied: false });
    expect(error?.details).toMatchObject({ maxEntryBytes: 5_000 });
    expect(port.replies.has(1) || port.replies.has(3)).toBe(false);
    const proposed = log.entries.flatMap((entry) => decodeBatch(entry).commands);
    expect(proposed).toHaveLength(2);
    expect(batcher.pendingCommandBytes).toBe(2);
  });

  it('stops with the sizes in the message when the log still calls an entry too large', () => {
    const { log, batcher, port } = setup(5_000);
    log.refusal = { ok: false, reason: 'too-large', leaderId: null, leaderAddress: null };
    batcher.submit(publish(10), port, 1, 1);
    expect(() => batcher.flush()).toThrow(
      /refused an entry of \d+ bytes as too large although its limit is 5000/,
    );
  });
});

describe('refusals of the log', () => {
  it('answer every owner of the entry through refusedError and give the pending bytes back', () => {
    const { log, batcher, refusals, port } = setup(5_000);
    log.refusal = { ok: false, reason: 'overloaded', leaderId: null, leaderAddress: null };
    batcher.submit(publish(10), port, 1, 300);
    batcher.submit(publish(10), port, 2, 300);
    expect(batcher.pendingCommandBytes).toBe(600);
    batcher.flush();
    expect(refusals.map((r) => r.reason)).toEqual(['overloaded']);
    expect([1, 2].map((token) => port.replies.get(token)?.error?.code)).toEqual(['OVERLOADED', 'OVERLOADED']);
    expect(batcher.pendingCommandBytes).toBe(0);
    expect(log.entries).toEqual([]);
  });
});
