/**
 * Damage on real files (NodeDisk in a temp directory). A torn tail of the newest segment (cut
 * mid-record, or followed by zeros) is cut off and the log keeps going after it. Anything else
 * (a flipped byte inside a segment, in a non-last segment's tail, in a snapshot, in the hard state,
 * or a missing segment) stops recovery with a CorruptionError naming the file and byte offset,
 * and recovery leaves the damaged files as they were.
 */
import {
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Entry } from '../raft/types.js';
import { CorruptionError } from './errors.js';
import { FileStorage } from './file-storage.js';
import { NodeDisk } from './node-disk.js';
import { describeLog, entryIsIntact, makeEntries, snapshotBody, snapshotMeta } from './test-kit.js';

let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'flotilla-storage-corrupt-'));
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function open(segmentSizeBytes = 64 * 1024 * 1024) {
  const storage = new FileStorage({ disk: new NodeDisk(dir), segmentSizeBytes });
  const recovered = storage.recover();
  return { storage, recovered };
}

function write(storage: FileStorage, entries: Entry[]): Promise<void> {
  return new Promise((resolve, reject) =>
    storage.write({ entries }, (err) => (err ? reject(err) : resolve())),
  );
}

function close(storage: FileStorage): Promise<void> {
  return new Promise((resolve, reject) => storage.close((err) => (err ? reject(err) : resolve())));
}

/**
 * Writes `groups` batches of 10 entries, one durable group at a time, and returns the segment
 * files and, per group, the file and byte offset where its record starts.
 */
async function writeGroups(groups: number, segmentSizeBytes?: number) {
  const { storage } = open(segmentSizeBytes);
  const records: { file: string; offset: number }[] = [];
  for (let g = 0; g < groups; g++) {
    const before = new Map(storage.segmentNames.map((n) => [n, statSync(join(dir, n)).size]));
    await write(storage, makeEntries(g * 10 + 1, 10, 1, 100));
    const file = storage.segmentNames.at(-1)!;
    records.push({ file, offset: before.get(file) ?? 36 });
  }
  const segments = storage.segmentNames;
  await close(storage);
  return { segments, records };
}

function flipByte(file: string, offset: number): void {
  const path = join(dir, file);
  const bytes = readFileSync(path);
  bytes[offset] = bytes[offset]! ^ 0x40;
  writeFileSync(path, bytes);
}

function expectCorruption(file: string, offset: number, detail: RegExp): void {
  const sizes = new Map(listFiles().map((n) => [n, statSync(join(dir, n)).size]));
  let caught: unknown;
  try {
    open();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(CorruptionError);
  const err = caught as CorruptionError;
  expect(err.code).toBe('STORAGE_CORRUPT');
  expect({ file: err.file, offset: err.offset }).toEqual({ file, offset });
  expect(err.message).toMatch(detail);
  expect(err.message).toContain(file);
  // Nothing was repaired or removed on the way to the error.
  expect(new Map(listFiles().map((n) => [n, statSync(join(dir, n)).size]))).toEqual(sizes);
}

function listFiles(): string[] {
  return new NodeDisk(dir).listSync().sort();
}

describe('torn tail of the newest segment', () => {
  it('is cut off when the last record is incomplete, and the log continues after it', async () => {
    const { segments, records } = await writeGroups(3);
    const last = segments.at(-1)!;
    const lastRecord = records[2]!;
    truncateSync(join(dir, last), lastRecord.offset + 50);

    const { storage, recovered } = open();
    expect(recovered.entries.map((e) => e.index)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(storage.repairs).toEqual([
      expect.stringContaining(`cut torn tail of ${last} at byte ${lastRecord.offset}`),
    ]);
    expect(statSync(join(dir, last)).size).toBe(lastRecord.offset);

    await write(storage, makeEntries(21, 5, 2));
    await close(storage);
    const again = open();
    expect(again.storage.repairs).toEqual([]);
    expect(describeLog(again.recovered.entries).slice(18)).toEqual([
      '19:1',
      '20:1',
      '21:2',
      '22:2',
      '23:2',
      '24:2',
      '25:2',
    ]);
    expect(again.recovered.entries.every(entryIsIntact)).toBe(true);
    await close(again.storage);
  });

  it('is cut off when zeros follow the last complete record (space allocated, data never written)', async () => {
    const { segments, records } = await writeGroups(2);
    const last = segments.at(-1)!;
    const size = statSync(join(dir, last)).size;
    writeFileSync(join(dir, last), Buffer.concat([readFileSync(join(dir, last)), Buffer.alloc(4096)]));
    const { storage, recovered } = open();
    expect(recovered.entries).toHaveLength(20);
    expect(storage.repairs[0]).toContain(`at byte ${size}`);
    expect(records).toHaveLength(2);
    await close(storage);
  });

  it('removes a newest segment whose first write was torn', async () => {
    const { segments, records } = await writeGroups(4, 2500);
    expect(segments.length).toBeGreaterThan(1);
    const last = segments.at(-1)!;
    const firstInLast = records.find((r) => r.file === last)!;
    truncateSync(join(dir, last), firstInLast.offset + 20);
    const { storage, recovered } = open(2500);
    expect(storage.repairs[0]).toContain(`removed newest segment ${last}`);
    expect(listFiles()).not.toContain(last);
    expect(recovered.entries.length).toBe(records.filter((r) => r.file !== last).length * 10);
    await close(storage);
  });
});

describe('damage that is not a torn tail', () => {
  it('a flipped byte inside a record of the newest segment, with records after it', async () => {
    const { segments, records } = await writeGroups(3);
    flipByte(segments.at(-1)!, records[1]!.offset + 200);
    expectCorruption(segments.at(-1)!, records[1]!.offset, /payload checksum mismatch/);
  });

  it('a flipped byte in a record length field', async () => {
    const { segments, records } = await writeGroups(3);
    flipByte(segments.at(-1)!, records[1]!.offset + 1);
    expectCorruption(segments.at(-1)!, records[1]!.offset, /record header checksum mismatch/);
  });

  it('a torn-looking tail in a segment that is not the newest', async () => {
    const { segments, records } = await writeGroups(4, 2500);
    const first = segments[0]!;
    const lastOfFirst = records.filter((r) => r.file === first).at(-1)!;
    flipByte(first, statSync(join(dir, first)).size - 1);
    expectCorruption(first, lastOfFirst.offset, /payload checksum mismatch/);
  });

  it('a segment missing between two others (a gap in the log)', async () => {
    const { segments, records } = await writeGroups(6, 2500);
    expect(segments.length).toBeGreaterThanOrEqual(3);
    unlinkSync(join(dir, segments[1]!));
    const third = records.find((r) => r.file === segments[2])!;
    expectCorruption(segments[2]!, third.offset, /gap in the log: expected index \d+ or lower, found \d+/);
  });

  it('a damaged segment header', async () => {
    const { segments } = await writeGroups(4, 2500);
    flipByte(segments[0]!, 3);
    expectCorruption(segments[0]!, 0, /bad segment magic/);
  });

  it('a flipped byte in a snapshot body, named by its block offset', async () => {
    const { storage } = open();
    await write(storage, makeEntries(1, 10, 1));
    const writer = storage.createSnapshot(snapshotMeta(10, 1));
    writer.write(snapshotBody(10, 1, 300_000));
    await new Promise<void>((resolve, reject) => writer.commit((err) => (err ? reject(err) : resolve())));
    await close(storage);
    const name = listFiles().find((n) => n.endsWith('.snap'))!;
    const reader = open();
    const bodyOffset = statSync(join(dir, name)).size - 300_000 - 5 * 4 - 24;
    await close(reader.storage);
    flipByte(name, bodyOffset + 3 * 65536 + 1234);
    expectCorruption(name, bodyOffset + 3 * 65536, /snapshot block 3 checksum mismatch/);
  });

  it('a cut-off snapshot file', async () => {
    const { storage } = open();
    await write(storage, makeEntries(1, 10, 1));
    const writer = storage.createSnapshot(snapshotMeta(10, 1));
    writer.write(snapshotBody(10, 1, 1000));
    await new Promise<void>((resolve, reject) => writer.commit((err) => (err ? reject(err) : resolve())));
    await close(storage);
    const name = listFiles().find((n) => n.endsWith('.snap'))!;
    const size = statSync(join(dir, name)).size;
    truncateSync(join(dir, name), size - 10);
    expectCorruption(name, size - 10 - 24, /snapshot trailer is missing or damaged/);
  });

  it('a damaged hard state file', async () => {
    const { storage } = open();
    await new Promise<void>((resolve, reject) =>
      storage.write({ hardState: { term: 2, vote: 'n1', commit: 0 } }, (err) =>
        err ? reject(err) : resolve(),
      ),
    );
    await close(storage);
    flipByte('hardstate', 20);
    expectCorruption('hardstate', 16, /hard state checksum mismatch/);
  });
});
