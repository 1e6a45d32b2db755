/**
 * Chunked InstallSnapshot bookkeeping: the sender keeps a bounded window of chunks, rewinds on
 * rejection or silence; the receiver takes chunks only in sequence from one sender and term.
 */
import { describe, expect, it } from 'vitest';
import type { SnapshotMessage } from './messages.js';
import {
  decideChunk,
  type IncomingSnapshot,
  onChunkAck,
  planChunks,
  startOutgoing,
  tickOutgoing,
} from './snapshot-transfer.js';

const meta = { index: 50, term: 3, conf: { voters: ['a', 'b', 'c'], learners: [] } };

describe('outgoing snapshot', () => {
  it('sends a bounded window of chunks and marks the last one done', () => {
    const t = startOutgoing(meta, 250);
    expect(planChunks(t, 100, 2)).toEqual([
      { offset: 0, length: 100, done: false },
      { offset: 100, length: 100, done: false },
    ]);
    expect(planChunks(t, 100, 2)).toEqual([]); // window full
    onChunkAck(t, 100, false);
    expect(planChunks(t, 100, 2)).toEqual([{ offset: 200, length: 50, done: true }]);
    expect(planChunks(t, 100, 2)).toEqual([]); // everything sent
  });

  it('an empty snapshot is one empty final chunk', () => {
    expect(planChunks(startOutgoing(meta, 0), 100, 2)).toEqual([{ offset: 0, length: 0, done: true }]);
  });

  it('rewinds to the follower’s offset on rejection, and to the acknowledged offset after silence', () => {
    const t = startOutgoing(meta, 300);
    planChunks(t, 100, 3);
    onChunkAck(t, 0, true);
    expect(planChunks(t, 100, 1)).toEqual([{ offset: 0, length: 100, done: false }]);
    onChunkAck(t, 100, false);
    planChunks(t, 100, 1);
    expect(tickOutgoing(t, 3)).toBe(false);
    expect(tickOutgoing(t, 3)).toBe(false);
    expect(tickOutgoing(t, 3)).toBe(true);
    expect(planChunks(t, 100, 1)).toEqual([{ offset: 100, length: 100, done: false }]);
  });
});

describe('incoming snapshot', () => {
  const chunk = (offset: number, extra: Partial<SnapshotMessage> = {}): SnapshotMessage => ({
    type: 'snapshot',
    group: 1,
    from: 'a',
    to: 'b',
    term: 3,
    meta,
    sizeBytes: 300,
    offset,
    length: 100,
    done: offset === 200,
    data: new Uint8Array(100),
    ...extra,
  });
  const receiving = (nextOffset: number, installing = false): IncomingSnapshot => ({
    from: 'a',
    term: 3,
    meta,
    sizeBytes: 300,
    nextOffset,
    installing,
    resetLog: true,
  });

  it('takes chunks in sequence only', () => {
    expect(decideChunk(null, chunk(0), 10)).toBe('start');
    expect(decideChunk(null, chunk(100), 10)).toBe('gap');
    expect(decideChunk(receiving(100), chunk(100), 10)).toBe('accept');
    expect(decideChunk(receiving(200), chunk(100), 10)).toBe('duplicate');
    expect(decideChunk(receiving(100), chunk(200), 10)).toBe('gap');
  });

  it('restarts for another sender or term, never during an install, and skips what is committed', () => {
    expect(decideChunk(receiving(100), chunk(0, { from: 'c' }), 10)).toBe('start');
    expect(decideChunk(receiving(100), chunk(100, { term: 4 }), 10)).toBe('gap');
    expect(decideChunk(receiving(300, true), chunk(0, { from: 'c' }), 10)).toBe('ignore');
    expect(decideChunk(null, chunk(0), 50)).toBe('stale');
  });
});
