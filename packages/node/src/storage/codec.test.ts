/**
 * The on-disk formats round-trip, and damaged bytes are classified correctly: an unfinished last
 * write (short header, record running past the end, zeros after it) may be a torn tail; a record
 * whose checksums pass but whose contents are inconsistent is corruption outright.
 */
import { describe, expect, it } from 'vitest';
import type { Entry } from '../raft/types.js';
import {
  crc32,
  type DecodedRecord,
  decodeHardState,
  decodeRecord,
  decodeSegmentHeader,
  decodeSnapshotHeader,
  decodeSnapshotTail,
  encodeHardState,
  encodeSegmentHeader,
  encodeSnapshotHeader,
  encodeSnapshotTrailer,
  GroupEncoder,
  parseSegmentFileName,
  parseSnapshotFileName,
  RECORD_HEADER_BYTES,
  readU64,
  segmentFileName,
  snapshotFileName,
  writeU64,
} from './codec.js';
import { CorruptionError, StorageInvariantError } from './errors.js';
import { makeEntries, snapshotMeta } from './test-kit.js';

type Step = { reset: [number, number] } | { entries: Entry[] };

function encode(steps: Step[]): Buffer {
  const encoder = new GroupEncoder();
  for (const step of steps) {
    if ('reset' in step) encoder.addReset(...step.reset);
    else encoder.addEntries(step.entries);
  }
  const buf = Buffer.concat(encoder.seal());
  expect(buf.length).toBe(encoder.byteLength);
  return buf;
}

/** Entries as comparable strings: deep equality on thousands of byte arrays is very slow in vitest. */
function summary(entries: readonly Entry[] | false | undefined): string[] {
  if (!entries) return [];
  return entries.map((e) => `${e.index}:${e.term}:${e.type}:${Buffer.from(e.data).toString('base64')}`);
}

function decodeAll(buf: Buffer): DecodedRecord[] {
  const records: DecodedRecord[] = [];
  let offset = 0;
  while (offset < buf.length) {
    const result = decodeRecord('seg', buf, offset);
    if ('reason' in result) throw new Error(result.reason);
    records.push(result.record);
    offset = result.next;
  }
  return records;
}

describe('codec', () => {
  it('round-trips runs of entries and resets without touching entry bytes', () => {
    const batches = [makeEntries(5, 3, 2), makeEntries(8, 2, 3)];
    const large = makeEntries(10, 1, 3, 100_000); // above the copy limit: written from the caller's bytes
    const buf = encode([
      { reset: [4, 2] },
      { entries: batches[0]! },
      { entries: batches[1]! },
      { entries: makeEntries(7, 1, 9, 0) },
      { entries: large },
      { entries: makeEntries(11, 2, 9) },
    ]);
    const [reset, entries, conflict, more] = decodeAll(buf);
    expect(reset).toEqual({ kind: 'reset', offset: 0, index: 4, term: 2 });
    expect(entries?.kind === 'entries' && entries.entries).toEqual(batches.flat());
    expect(conflict?.kind === 'entries' && conflict.entries).toEqual(makeEntries(7, 1, 9, 0));
    expect(more?.kind === 'entries' && more.firstIndex).toBe(10);
    expect(summary(more?.kind === 'entries' && more.entries)).toEqual(
      summary([...large, ...makeEntries(11, 2, 9)]),
    );
  });

  it('spreads big groups over blocks without breaking records', () => {
    const entries = makeEntries(1, 3000, 1, 1000);
    const encoder = new GroupEncoder();
    for (let i = 0; i < 3000; i += 7) encoder.addEntries(entries.slice(i, i + 7));
    const chunks = encoder.seal();
    expect(chunks.length).toBeGreaterThan(5);
    const [record, ...rest] = decodeAll(Buffer.concat(chunks));
    expect(rest).toEqual([]);
    expect(summary(record?.kind === 'entries' && record.entries)).toEqual(summary(entries));
    expect(encoder).toMatchObject({ entryCount: 3000, firstIndex: 1, lastIndex: 3000, maxIndex: 3000 });
  });

  it('classifies an unfinished last write as possibly torn', () => {
    const buf = encode([{ entries: makeEntries(1, 4, 1) }]);
    expect(decodeRecord('seg', buf.subarray(0, 10), 0)).toMatchObject({ couldBeTorn: true });
    expect(decodeRecord('seg', buf.subarray(0, buf.length - 1), 0)).toMatchObject({
      couldBeTorn: true,
      reason: expect.stringMatching(/runs past end of file/),
    });
    expect(decodeRecord('seg', Buffer.alloc(64), 0)).toMatchObject({ couldBeTorn: true });
    const zeroedPayload = Buffer.concat([
      buf.subarray(0, RECORD_HEADER_BYTES),
      Buffer.alloc(buf.length - 16),
    ]);
    expect(decodeRecord('seg', zeroedPayload, 0)).toMatchObject({ couldBeTorn: true });
  });

  it('classifies damage followed by data as not torn', () => {
    const buf = encode([
      { entries: makeEntries(1, 4, 1) },
      { reset: [4, 1] },
      { entries: makeEntries(5, 4, 1) },
    ]);
    const flipped = Buffer.from(buf);
    flipped[RECORD_HEADER_BYTES + 20] = flipped[RECORD_HEADER_BYTES + 20]! ^ 1;
    expect(decodeRecord('seg', flipped, 0)).toMatchObject({ offset: 0, couldBeTorn: false });
    const badHeader = Buffer.from(buf);
    badHeader[2] = badHeader[2]! ^ 1;
    expect(decodeRecord('seg', badHeader, 0)).toMatchObject({ couldBeTorn: false });
  });

  it('reports a record whose checksums pass but whose fields are impossible', () => {
    const buf = encode([{ reset: [4, 2] }]);
    buf[4] = 9; // unknown type, header CRC recomputed below so only the type is wrong
    buf.writeUInt32LE(crc32(buf.subarray(0, 12)), 12);
    expect(() => decodeRecord('seg-x', buf, 0)).toThrow(CorruptionError);
  });

  it('segment headers and file names', () => {
    const header = encodeSegmentHeader(7, 12345);
    expect(decodeSegmentHeader(header)).toEqual({ seq: 7, firstIndex: 12345 });
    expect(decodeSegmentHeader(header.subarray(0, 20))).toMatch(/incomplete/);
    const damaged = Buffer.from(header);
    damaged[20] = damaged[20]! ^ 1;
    expect(decodeSegmentHeader(damaged)).toMatch(/checksum/);
    expect(parseSegmentFileName(segmentFileName(7, 12345))).toEqual({ seq: 7, firstIndex: 12345 });
    expect(parseSegmentFileName('wal-1-2.log')).toBeNull();
    expect(parseSnapshotFileName(snapshotFileName(99, 3))).toEqual({ index: 99, term: 3 });
  });

  it('u64 fields hold every safe integer', () => {
    const buf = Buffer.alloc(8);
    for (const value of [0, 1, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 5, Number.MAX_SAFE_INTEGER]) {
      writeU64(buf, value, 0);
      expect(readU64(buf, 0)).toBe(value);
    }
    expect(() => writeU64(buf, -1, 0)).toThrow(StorageInvariantError);
    buf.fill(0xff);
    expect(readU64(buf, 0)).toBeNaN();
  });

  it('hard state and snapshot headers round-trip and reject damage', () => {
    const hs = { term: 9, vote: 'n3', commit: 1234 };
    expect(decodeHardState('hardstate', encodeHardState(hs))).toEqual(hs);
    const damaged = encodeHardState(hs);
    damaged[damaged.length - 2] = damaged[damaged.length - 2]! ^ 1;
    expect(() => decodeHardState('hardstate', damaged)).toThrow(CorruptionError);
    const meta = snapshotMeta(500, 7);
    const header = encodeSnapshotHeader(meta);
    expect(decodeSnapshotHeader('snap', header)).toEqual({ meta, bodyOffset: header.length });
    const trailer = encodeSnapshotTrailer(70_000, [1, 2]);
    expect(decodeSnapshotTail(trailer.subarray(8))).toEqual({
      bodyBytes: 70_000,
      blockBytes: 65_536,
      blockCount: 2,
    });
  });
});
