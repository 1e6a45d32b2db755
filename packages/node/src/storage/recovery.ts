/**
 * Start-up recovery: reads what survived in a storage directory, repairs the one kind of damage a
 * crash can cause (a torn last write at the tail of the newest WAL segment) and refuses everything
 * else with a `CorruptionError` naming the file and byte offset.
 *
 * Order: leftover temporary files are removed; the hard state is read; the newest snapshot is
 * verified block by block (older ones are pruned); the WAL segments are replayed in sequence
 * order, applying conflict truncations and resets exactly as they were written; finally the log is
 * joined to the snapshot. Synchronous on purpose: nothing else runs until recovery is done.
 */
import type { Entry, HardState, SnapshotMeta } from '../raft/types.js';
import {
  asBuffer,
  crc32,
  type DecodedRecord,
  decodeHardState,
  decodeRecord,
  decodeSegmentHeader,
  decodeSnapshotHeader,
  decodeSnapshotTail,
  HARD_STATE_FILE,
  MAX_SNAPSHOT_HEADER_BYTES,
  parseSegmentFileName,
  parseSnapshotFileName,
  SEGMENT_HEADER_BYTES,
  SNAPSHOT_TAIL_BYTES,
  snapshotTableCrcMatches,
  TEMP_SUFFIX,
} from './codec.js';
import type { Disk } from './disk.js';
import { CorruptionError } from './errors.js';

/** A WAL segment as the writer tracks it. */
export interface SegmentInfo {
  seq: number;
  name: string;
  /** First index the segment was created for (from its name). */
  firstIndex: number;
  /** Bytes in the file: the next record goes here. */
  size: number;
  /** Highest entry index any record in the segment holds (0 if none): whole-segment compaction key. */
  maxIndex: number;
}

/** A verified snapshot file. */
export interface SnapshotFile {
  name: string;
  meta: SnapshotMeta;
  /** Byte offset of the body in the file. */
  bodyOffset: number;
  bodyBytes: number;
}

export interface RecoveryResult {
  hardState: HardState;
  snapshot: SnapshotFile | null;
  /** Entries after the snapshot, contiguous. */
  entries: Entry[];
  segments: SegmentInfo[];
  /** Index of the last entry, or the snapshot's index when there is none. */
  lastIndex: number;
  /**
   * True when the segments hold entries the snapshot supersedes (the log fell behind it, or
   * disagrees with its term at its index): the next write must start with a reset record.
   */
  needsReset: boolean;
  nextSeq: number;
  /** What was repaired, for the log (e.g. a torn tail cut off). */
  repairs: string[];
}

export const EMPTY_HARD_STATE: HardState = { term: 0, vote: null, commit: 0 };

const VERIFY_CHUNK_BYTES = 1024 * 1024;

export function recoverStorage(disk: Disk): RecoveryResult {
  const repairs: string[] = [];
  const names = disk.listSync();
  for (const name of names) {
    if (name.endsWith(TEMP_SUFFIX)) {
      disk.unlinkSync(name);
      repairs.push(`removed unfinished temporary file ${name}`);
    }
  }
  const hardState = names.includes(HARD_STATE_FILE)
    ? decodeHardState(HARD_STATE_FILE, disk.readFileSync(HARD_STATE_FILE))
    : { ...EMPTY_HARD_STATE };
  const snapshot = recoverSnapshot(disk, names, repairs);
  const wal = replaySegments(disk, names, repairs);
  const joined = joinLogToSnapshot(wal, snapshot);
  if (repairs.length > 0) disk.syncDirSync();
  return {
    hardState,
    snapshot,
    entries: joined.entries,
    segments: wal.segments,
    lastIndex: joined.entries.at(-1)?.index ?? snapshot?.meta.index ?? 0,
    needsReset: joined.needsReset,
    nextSeq: (wal.segments.at(-1)?.seq ?? 0) + 1,
    repairs,
  };
}

// ---- snapshots ----

function recoverSnapshot(disk: Disk, names: string[], repairs: string[]): SnapshotFile | null {
  const candidates = names
    .map((name) => ({ name, parsed: parseSnapshotFileName(name) }))
    .filter((c): c is { name: string; parsed: { index: number; term: number } } => c.parsed !== null)
    .sort((a, b) => b.parsed.index - a.parsed.index || b.parsed.term - a.parsed.term);
  const newest = candidates[0];
  if (!newest) return null;
  // A snapshot only gets its final name once fsynced, so damage in it is real corruption.
  const snapshot = verifySnapshot(disk, newest.name);
  if (snapshot.meta.index !== newest.parsed.index || snapshot.meta.term !== newest.parsed.term) {
    throw new CorruptionError(
      newest.name,
      16,
      `meta ${snapshot.meta.index}/${snapshot.meta.term} does not match name`,
    );
  }
  for (const older of candidates.slice(1)) {
    disk.unlinkSync(older.name);
    repairs.push(`pruned older snapshot ${older.name}`);
  }
  return snapshot;
}

/** Reads a whole snapshot file and checks every checksum; throws naming the first bad offset. */
export function verifySnapshot(disk: Disk, name: string): SnapshotFile {
  const size = disk.sizeSync(name);
  const { meta, bodyOffset } = decodeSnapshotHeader(name, disk.readSync(name, 0, MAX_SNAPSHOT_HEADER_BYTES));
  const tailAt = size - SNAPSHOT_TAIL_BYTES;
  const tailBytes =
    tailAt >= bodyOffset ? disk.readSync(name, tailAt, SNAPSHOT_TAIL_BYTES) : new Uint8Array(0);
  const tail = decodeSnapshotTail(tailBytes);
  if (!tail) throw new CorruptionError(name, Math.max(0, tailAt), 'snapshot trailer is missing or damaged');
  const tableAt = bodyOffset + tail.bodyBytes;
  if (tableAt + tail.blockCount * 4 !== tailAt) {
    throw new CorruptionError(
      name,
      tailAt,
      `snapshot body of ${tail.bodyBytes} bytes does not fit a file of ${size}`,
    );
  }
  const table = asBuffer(disk.readSync(name, tableAt, tail.blockCount * 4));
  if (!snapshotTableCrcMatches(table, tailBytes)) {
    throw new CorruptionError(name, tableAt, 'snapshot checksum table mismatch');
  }
  verifySnapshotBlocks(disk, name, bodyOffset, tail.bodyBytes, tail.blockBytes, table);
  return { name, meta, bodyOffset, bodyBytes: tail.bodyBytes };
}

function verifySnapshotBlocks(
  disk: Disk,
  name: string,
  bodyOffset: number,
  bodyBytes: number,
  blockBytes: number,
  table: Buffer,
): void {
  const blocksPerRead = Math.max(1, Math.floor(VERIFY_CHUNK_BYTES / blockBytes));
  for (let block = 0; block * blockBytes < bodyBytes; block += blocksPerRead) {
    const start = block * blockBytes;
    const length = Math.min(blocksPerRead * blockBytes, bodyBytes - start);
    const chunk = disk.readSync(name, bodyOffset + start, length);
    for (let at = 0; at < chunk.length; at += blockBytes) {
      const index = block + at / blockBytes;
      const crc = crc32(chunk.subarray(at, Math.min(at + blockBytes, chunk.length)));
      if (crc !== table.readUInt32LE(index * 4)) {
        throw new CorruptionError(name, bodyOffset + start + at, `snapshot block ${index} checksum mismatch`);
      }
    }
  }
}

// ---- WAL replay ----

interface ReplayedLog {
  segments: SegmentInfo[];
  /** Entries from `entries[0].index` on, after applying every truncation and reset. */
  entries: Entry[];
  /** Index before `entries[0]`: where the log's known history ends (0 at the very start). */
  baseIndex: number;
  /** The latest reset record, if any, and where it is. */
  reset: { index: number; term: number; file: string; offset: number } | null;
  /** Where the first kept entry came from, for errors about a gap before it. */
  origin: { file: string; offset: number } | null;
}

function replaySegments(disk: Disk, names: string[], repairs: string[]): ReplayedLog {
  const files = names
    .map((name) => ({ name, parsed: parseSegmentFileName(name) }))
    .filter((f): f is { name: string; parsed: { seq: number; firstIndex: number } } => f.parsed !== null)
    .sort((a, b) => a.parsed.seq - b.parsed.seq);
  const log: ReplayedLog = { segments: [], entries: [], baseIndex: 0, reset: null, origin: null };
  files.forEach((file, i) => {
    const isLast = i === files.length - 1;
    const segment = replaySegment(disk, file.name, file.parsed, isLast, log, repairs);
    if (segment) log.segments.push(segment);
  });
  return log;
}

function replaySegment(
  disk: Disk,
  name: string,
  parsedName: { seq: number; firstIndex: number },
  isLast: boolean,
  log: ReplayedLog,
  repairs: string[],
): SegmentInfo | null {
  const buf = asBuffer(disk.readFileSync(name));
  const header = decodeSegmentHeader(buf);
  if (typeof header === 'string') {
    if (isLast && (buf.length < SEGMENT_HEADER_BYTES || buf.every((b) => b === 0))) {
      return dropTornSegment(disk, name, header, repairs);
    }
    throw new CorruptionError(name, 0, header);
  }
  if (header.seq !== parsedName.seq || header.firstIndex !== parsedName.firstIndex) {
    throw new CorruptionError(
      name,
      0,
      `header seq ${header.seq} first index ${header.firstIndex} do not match name`,
    );
  }
  const segment: SegmentInfo = {
    seq: header.seq,
    name,
    firstIndex: header.firstIndex,
    size: buf.length,
    maxIndex: 0,
  };
  // The header is always written together with the first record, so a segment holds at least one.
  if (buf.length === SEGMENT_HEADER_BYTES) {
    if (isLast) return dropTornSegment(disk, name, 'no record after the header', repairs);
    throw new CorruptionError(name, SEGMENT_HEADER_BYTES, 'segment holds no record');
  }
  let offset = SEGMENT_HEADER_BYTES;
  while (offset < buf.length) {
    const decoded = decodeRecord(name, buf, offset);
    if ('reason' in decoded) {
      if (!isLast || !decoded.couldBeTorn) throw new CorruptionError(name, decoded.offset, decoded.reason);
      if (offset === SEGMENT_HEADER_BYTES) return dropTornSegment(disk, name, decoded.reason, repairs);
      disk.truncateSync(name, offset);
      repairs.push(
        `cut torn tail of ${name} at byte ${offset} (${buf.length - offset} bytes): ${decoded.reason}`,
      );
      segment.size = offset;
      break;
    }
    if (offset === SEGMENT_HEADER_BYTES) checkFirstRecord(name, header.firstIndex, decoded.record);
    applyRecord(name, decoded.record, log, segment);
    offset = decoded.next;
  }
  return segment;
}

function dropTornSegment(disk: Disk, name: string, reason: string, repairs: string[]): null {
  disk.unlinkSync(name);
  repairs.push(`removed newest segment ${name}, whose first write was torn: ${reason}`);
  return null;
}

function checkFirstRecord(name: string, firstIndex: number, record: DecodedRecord): void {
  const recordFirst = record.kind === 'reset' ? record.index + 1 : record.firstIndex;
  if (recordFirst !== firstIndex) {
    throw new CorruptionError(
      name,
      record.offset,
      `segment named for index ${firstIndex} starts at ${recordFirst}`,
    );
  }
}

function applyRecord(name: string, record: DecodedRecord, log: ReplayedLog, segment: SegmentInfo): void {
  if (record.kind === 'reset') {
    log.entries = [];
    log.baseIndex = record.index;
    log.reset = { index: record.index, term: record.term, file: name, offset: record.offset };
    log.origin = { file: name, offset: record.offset };
    return;
  }
  const first = record.firstIndex;
  const nextIndex = log.baseIndex + log.entries.length + 1;
  const hasHistory = log.entries.length > 0 || log.reset !== null;
  if (hasHistory && first > nextIndex) {
    throw new CorruptionError(
      name,
      record.offset,
      `gap in the log: expected index ${nextIndex} or lower, found ${first}`,
    );
  }
  if (log.reset && first <= log.reset.index) {
    throw new CorruptionError(name, record.offset, `entry ${first} precedes the reset to ${log.reset.index}`);
  }
  if (!hasHistory || first <= log.baseIndex) {
    // The first record read, or a conflict truncation reaching before the oldest segment kept:
    // the log's known history now starts here.
    log.entries = [];
    log.baseIndex = first - 1;
    log.origin = { file: name, offset: record.offset };
  } else {
    log.entries.length = first - log.baseIndex - 1;
  }
  for (const entry of record.entries) log.entries.push(entry);
  segment.maxIndex = Math.max(segment.maxIndex, first + record.entries.length - 1);
}

/** Keeps the entries after the snapshot, or none when the log is behind it or disagrees with it. */
function joinLogToSnapshot(
  log: ReplayedLog,
  snapshot: SnapshotFile | null,
): { entries: Entry[]; needsReset: boolean } {
  const snapIndex = snapshot?.meta.index ?? 0;
  if (log.reset && log.reset.index > snapIndex) {
    throw new CorruptionError(
      log.reset.file,
      log.reset.offset,
      `log was reset after a snapshot at ${log.reset.index}, but the newest snapshot is at ${snapIndex}`,
    );
  }
  const first = log.baseIndex + 1;
  const last = log.baseIndex + log.entries.length;
  // No record at all: nothing on disk contradicts the snapshot, and the next record starts the log.
  if (log.entries.length === 0 && !log.reset) return { entries: [], needsReset: false };
  if (log.entries.length > 0 && first > snapIndex + 1) {
    const origin = log.origin ?? { file: '(wal)', offset: 0 };
    throw new CorruptionError(
      origin.file,
      origin.offset,
      `log starts at index ${first} but the snapshot only covers up to ${snapIndex}: entries are missing`,
    );
  }
  if (last < snapIndex) return { entries: [], needsReset: true };
  if (first <= snapIndex && log.entries[snapIndex - first]!.term !== snapshot?.meta.term) {
    return { entries: [], needsReset: true };
  }
  return { entries: log.entries.slice(snapIndex - first + 1), needsReset: false };
}
