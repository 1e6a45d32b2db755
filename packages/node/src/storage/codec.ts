/**
 * On-disk formats of the storage directory, all little-endian, all checksummed with CRC-32
 * (`zlib.crc32`, Node 20.15+):
 *
 * - WAL segment `wal-<seq:16>-<firstIndex:20>.log`: a 36-byte header (magic, version, seq, first
 *   index, header CRC) and then records. Segments are ordered by `seq`; the first index in the
 *   name is the first entry the segment was created for.
 * - Record: 16-byte header {payload length u32, type u8, 3 zero bytes, payload CRC u32, header CRC
 *   u32 over the first 12 bytes} and the payload. The header has its own CRC so that a damaged
 *   length is never mistaken for a torn tail.
 * - `Entries` payload: first index u64, count u32, then per entry {term u64, type u8, data length
 *   u32, data}. The entry data is written as the caller's bytes, never re-encoded. A record whose
 *   first index is not one past the log's last index replaces the entries from that index on
 *   (Raft conflict truncation); the log only ever appends.
 * - `Reset` payload: snapshot index u64, snapshot term u64: every earlier entry is void and the
 *   log continues at index + 1 (after installing a snapshot from the leader).
 * - Hard state `hardstate`: magic, length u32, CRC u32, JSON {term, vote, commit}.
 * - Snapshot `snap-<index:20>-<term:20>.snap`: header {magic, version u32, meta length u32, meta
 *   JSON, CRC u32}, the body, and a 16-byte trailer {body length u64, body CRC u32, magic u32}.
 */
import { crc32 } from 'node:zlib';
import type { Entry, EntryType, HardState, SnapshotMeta } from '../raft/types.js';
import { CorruptionError, invariant } from './errors.js';

export { crc32 };

const TWO_32 = 2 ** 32;

export function writeU64(buf: Buffer, value: number, offset: number): void {
  invariant(Number.isSafeInteger(value) && value >= 0, () => `u64 field out of range: ${value}`);
  buf.writeUInt32LE(value >>> 0, offset);
  buf.writeUInt32LE(Math.floor(value / TWO_32), offset + 4);
}

/** Reads a u64 written by `writeU64`; NaN when it is beyond 2^53 (only damaged data is). */
export function readU64(buf: Buffer, offset: number): number {
  const value = buf.readUInt32LE(offset) + buf.readUInt32LE(offset + 4) * TWO_32;
  return Number.isSafeInteger(value) ? value : Number.NaN;
}

export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

// ---- file names ----

const SEGMENT_NAME = /^wal-(\d{16})-(\d{20})\.log$/;
const SNAPSHOT_NAME = /^snap-(\d{20})-(\d{20})\.snap$/;
export const HARD_STATE_FILE = 'hardstate';
export const HARD_STATE_TEMP_FILE = 'hardstate.tmp';
export const TEMP_SUFFIX = '.tmp';

export function segmentFileName(seq: number, firstIndex: number): string {
  return `wal-${String(seq).padStart(16, '0')}-${String(firstIndex).padStart(20, '0')}.log`;
}

export function parseSegmentFileName(name: string): { seq: number; firstIndex: number } | null {
  const match = SEGMENT_NAME.exec(name);
  return match ? { seq: Number(match[1]), firstIndex: Number(match[2]) } : null;
}

export function snapshotFileName(index: number, term: number): string {
  return `snap-${String(index).padStart(20, '0')}-${String(term).padStart(20, '0')}.snap`;
}

export function snapshotTempFileName(index: number, term: number, nonce: number): string {
  return `snap-${String(index).padStart(20, '0')}-${String(term).padStart(20, '0')}.${nonce}${TEMP_SUFFIX}`;
}

export function parseSnapshotFileName(name: string): { index: number; term: number } | null {
  const match = SNAPSHOT_NAME.exec(name);
  return match ? { index: Number(match[1]), term: Number(match[2]) } : null;
}

// ---- segment header ----

const SEGMENT_MAGIC = Buffer.from('FLOTWAL1', 'latin1');
const FORMAT_VERSION = 1;
export const SEGMENT_HEADER_BYTES = 36;

export function encodeSegmentHeader(seq: number, firstIndex: number): Buffer {
  const buf = Buffer.alloc(SEGMENT_HEADER_BYTES);
  SEGMENT_MAGIC.copy(buf, 0);
  buf.writeUInt32LE(FORMAT_VERSION, 8);
  writeU64(buf, seq, 16);
  writeU64(buf, firstIndex, 24);
  buf.writeUInt32LE(crc32(buf.subarray(0, 32)), 32);
  return buf;
}

/** The header's fields, or a reason it is not a valid header. */
export function decodeSegmentHeader(buf: Buffer): { seq: number; firstIndex: number } | string {
  if (buf.length < SEGMENT_HEADER_BYTES) return 'segment header is incomplete';
  if (!buf.subarray(0, 8).equals(SEGMENT_MAGIC)) return 'bad segment magic';
  if (buf.readUInt32LE(32) !== crc32(buf.subarray(0, 32))) return 'segment header checksum mismatch';
  const version = buf.readUInt32LE(8);
  if (version !== FORMAT_VERSION) return `unsupported segment format version ${version}`;
  return { seq: readU64(buf, 16), firstIndex: readU64(buf, 24) };
}

// ---- records ----

export const RECORD_HEADER_BYTES = 16;
const ENTRIES_PAYLOAD_HEADER_BYTES = 12;
export const ENTRY_HEADER_BYTES = 13;
const RESET_PAYLOAD_BYTES = 16;
/** Larger records are refused when written and treated as damage when read (a record is one group write). */
export const MAX_RECORD_PAYLOAD_BYTES = 1024 * 1024 * 1024;

export const RecordType = { Entries: 1, Reset: 2 } as const;
export type RecordType = (typeof RecordType)[keyof typeof RecordType];

/** A run of contiguous entries (from one or more write batches) or a reset, encoded as one record. */
export type WalRun =
  | { kind: 'entries'; firstIndex: number; batches: Entry[][] }
  | { kind: 'reset'; index: number; term: number };

/** Bytes a run occupies on disk. */
export function runByteLength(run: WalRun): number {
  if (run.kind === 'reset') return RECORD_HEADER_BYTES + RESET_PAYLOAD_BYTES;
  let bytes = RECORD_HEADER_BYTES + ENTRIES_PAYLOAD_HEADER_BYTES;
  for (const batch of run.batches) {
    for (const entry of batch) bytes += ENTRY_HEADER_BYTES + entry.data.byteLength;
  }
  return bytes;
}

/**
 * Appends the chunks that encode `runs` to `out` and returns their total size. Headers go into one
 * fresh buffer; entry data is referenced as given, so the caller must not change it until written.
 */
export function encodeRuns(runs: readonly WalRun[], out: Uint8Array[]): number {
  let headerBytes = 0;
  for (const run of runs) headerBytes += runHeaderBytes(run);
  const headers = Buffer.allocUnsafe(headerBytes);
  let at = 0;
  let total = 0;
  for (const run of runs) {
    const written =
      run.kind === 'reset' ? encodeReset(run, headers, at, out) : encodeEntries(run, headers, at, out);
    at += runHeaderBytes(run);
    total += written;
  }
  return total;
}

function runHeaderBytes(run: WalRun): number {
  if (run.kind === 'reset') return RECORD_HEADER_BYTES + RESET_PAYLOAD_BYTES;
  let count = 0;
  for (const batch of run.batches) count += batch.length;
  return RECORD_HEADER_BYTES + ENTRIES_PAYLOAD_HEADER_BYTES + count * ENTRY_HEADER_BYTES;
}

function encodeReset(
  run: { index: number; term: number },
  buf: Buffer,
  at: number,
  out: Uint8Array[],
): number {
  const payloadAt = at + RECORD_HEADER_BYTES;
  writeU64(buf, run.index, payloadAt);
  writeU64(buf, run.term, payloadAt + 8);
  const crc = crc32(buf.subarray(payloadAt, payloadAt + RESET_PAYLOAD_BYTES));
  writeRecordHeader(buf, at, RESET_PAYLOAD_BYTES, RecordType.Reset, crc);
  out.push(buf.subarray(at, payloadAt + RESET_PAYLOAD_BYTES));
  return RECORD_HEADER_BYTES + RESET_PAYLOAD_BYTES;
}

function encodeEntries(
  run: { firstIndex: number; batches: Entry[][] },
  buf: Buffer,
  at: number,
  out: Uint8Array[],
): number {
  const payloadHeaderAt = at + RECORD_HEADER_BYTES;
  let count = 0;
  for (const batch of run.batches) count += batch.length;
  writeU64(buf, run.firstIndex, payloadHeaderAt);
  buf.writeUInt32LE(count, payloadHeaderAt + 8);
  let pos = payloadHeaderAt + ENTRIES_PAYLOAD_HEADER_BYTES;
  // The record header is filled in below, once the payload's length and CRC are known; the
  // chunk shares the buffer's memory, so it is pushed now to keep the chunks in file order.
  out.push(buf.subarray(at, pos));
  let crc = crc32(buf.subarray(payloadHeaderAt, pos));
  let payloadBytes = ENTRIES_PAYLOAD_HEADER_BYTES;
  let expectedIndex = run.firstIndex;
  for (const batch of run.batches) {
    for (const entry of batch) {
      invariant(
        entry.index === expectedIndex,
        () => `run expects index ${expectedIndex}, got ${entry.index}`,
      );
      expectedIndex++;
      writeU64(buf, entry.term, pos);
      buf[pos + 8] = entry.type;
      buf.writeUInt32LE(entry.data.byteLength, pos + 9);
      const header = buf.subarray(pos, pos + ENTRY_HEADER_BYTES);
      crc = crc32(header, crc);
      out.push(header);
      if (entry.data.byteLength > 0) {
        crc = crc32(entry.data, crc);
        out.push(entry.data);
      }
      pos += ENTRY_HEADER_BYTES;
      payloadBytes += ENTRY_HEADER_BYTES + entry.data.byteLength;
    }
  }
  invariant(
    payloadBytes <= MAX_RECORD_PAYLOAD_BYTES,
    () => `record of ${payloadBytes} bytes exceeds the limit`,
  );
  writeRecordHeader(buf, at, payloadBytes, RecordType.Entries, crc);
  return RECORD_HEADER_BYTES + payloadBytes;
}

function writeRecordHeader(
  buf: Buffer,
  at: number,
  payloadBytes: number,
  type: RecordType,
  crc: number,
): void {
  buf.writeUInt32LE(payloadBytes, at);
  buf[at + 4] = type;
  buf[at + 5] = 0;
  buf.writeUInt16LE(0, at + 6);
  buf.writeUInt32LE(crc, at + 8);
  buf.writeUInt32LE(crc32(buf.subarray(at, at + 12)), at + 12);
}

export type DecodedRecord =
  | { kind: 'entries'; offset: number; firstIndex: number; entries: Entry[] }
  | { kind: 'reset'; offset: number; index: number; term: number };

/** Why a record at some offset could not be read, and whether that could be a write cut short by a crash. */
export interface RecordFailure {
  offset: number;
  reason: string;
  /** True when the damage looks like the unfinished last write: nothing but zeros or end of file follows. */
  couldBeTorn: boolean;
}

/**
 * Reads the record at `offset` of a segment's bytes. Returns the record and the offset after it,
 * or a failure. `fileName` is only used in errors for records whose checksum passed but whose
 * contents are inconsistent, which no crash can explain.
 */
export function decodeRecord(
  fileName: string,
  buf: Buffer,
  offset: number,
): { record: DecodedRecord; next: number } | RecordFailure {
  const remaining = buf.length - offset;
  if (remaining < RECORD_HEADER_BYTES) {
    return { offset, reason: `incomplete record header (${remaining} bytes)`, couldBeTorn: true };
  }
  if (buf.readUInt32LE(offset + 12) !== crc32(buf.subarray(offset, offset + 12))) {
    return { offset, reason: 'record header checksum mismatch', couldBeTorn: allZero(buf, offset) };
  }
  const payloadBytes = buf.readUInt32LE(offset);
  const type = buf[offset + 4];
  const payloadAt = offset + RECORD_HEADER_BYTES;
  const end = payloadAt + payloadBytes;
  if (end > buf.length) {
    return { offset, reason: `record of ${payloadBytes} bytes runs past end of file`, couldBeTorn: true };
  }
  if (payloadBytes > MAX_RECORD_PAYLOAD_BYTES || (type !== RecordType.Entries && type !== RecordType.Reset)) {
    throw new CorruptionError(
      fileName,
      offset,
      `invalid record header (type ${type}, length ${payloadBytes})`,
    );
  }
  const payload = buf.subarray(payloadAt, end);
  if (crc32(payload) !== buf.readUInt32LE(offset + 8)) {
    return { offset, reason: 'record payload checksum mismatch', couldBeTorn: allZero(buf, end) };
  }
  const record =
    type === RecordType.Reset
      ? decodeReset(fileName, payload, offset)
      : decodeEntries(fileName, payload, offset);
  return { record, next: end };
}

function decodeReset(fileName: string, payload: Buffer, offset: number): DecodedRecord {
  const index = payload.length === RESET_PAYLOAD_BYTES ? readU64(payload, 0) : Number.NaN;
  const term = payload.length === RESET_PAYLOAD_BYTES ? readU64(payload, 8) : Number.NaN;
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(term)) {
    throw new CorruptionError(fileName, offset, 'malformed reset record');
  }
  return { kind: 'reset', offset, index, term };
}

function decodeEntries(fileName: string, payload: Buffer, offset: number): DecodedRecord {
  const bad = (why: string) => new CorruptionError(fileName, offset, `malformed entries record: ${why}`);
  if (payload.length < ENTRIES_PAYLOAD_HEADER_BYTES) throw bad('payload too short');
  const firstIndex = readU64(payload, 0);
  const count = payload.readUInt32LE(8);
  if (!Number.isSafeInteger(firstIndex) || firstIndex < 1) throw bad(`first index ${firstIndex}`);
  const entries: Entry[] = new Array(count);
  let pos = ENTRIES_PAYLOAD_HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    if (pos + ENTRY_HEADER_BYTES > payload.length) throw bad(`entry ${i} of ${count} is cut off`);
    const term = readU64(payload, pos);
    const type = payload[pos + 8]!;
    const length = payload.readUInt32LE(pos + 9);
    pos += ENTRY_HEADER_BYTES;
    if (pos + length > payload.length) throw bad(`entry ${i} data of ${length} bytes is cut off`);
    if (!Number.isSafeInteger(term) || (type !== 0 && type !== 1))
      throw bad(`entry ${i} term ${term} type ${type}`);
    const data = new Uint8Array(payload.buffer, payload.byteOffset + pos, length);
    entries[i] = { index: firstIndex + i, term, type: type as EntryType, data };
    pos += length;
  }
  if (pos !== payload.length) throw bad(`${payload.length - pos} trailing bytes`);
  return { kind: 'entries', offset, firstIndex, entries };
}

export function allZero(buf: Uint8Array, from: number): boolean {
  for (let i = from; i < buf.length; i++) if (buf[i] !== 0) return false;
  return true;
}

// ---- hard state ----

const HARD_STATE_MAGIC = Buffer.from('FLOHARD1', 'latin1');
const HARD_STATE_PREFIX_BYTES = 16;

export function encodeHardState(state: HardState): Buffer {
  const json = Buffer.from(
    JSON.stringify({ term: state.term, vote: state.vote, commit: state.commit }),
    'utf8',
  );
  const buf = Buffer.alloc(HARD_STATE_PREFIX_BYTES + json.length);
  HARD_STATE_MAGIC.copy(buf, 0);
  buf.writeUInt32LE(json.length, 8);
  buf.writeUInt32LE(crc32(json), 12);
  json.copy(buf, HARD_STATE_PREFIX_BYTES);
  return buf;
}

export function decodeHardState(fileName: string, bytes: Uint8Array): HardState {
  const buf = asBuffer(bytes);
  const corrupt = (offset: number, why: string) => new CorruptionError(fileName, offset, why);
  if (buf.length < HARD_STATE_PREFIX_BYTES || !buf.subarray(0, 8).equals(HARD_STATE_MAGIC)) {
    throw corrupt(0, 'bad hard state header');
  }
  const length = buf.readUInt32LE(8);
  if (HARD_STATE_PREFIX_BYTES + length !== buf.length)
    throw corrupt(8, `hard state length ${length} mismatch`);
  const json = buf.subarray(HARD_STATE_PREFIX_BYTES);
  if (crc32(json) !== buf.readUInt32LE(12))
    throw corrupt(HARD_STATE_PREFIX_BYTES, 'hard state checksum mismatch');
  const parsed = parseJson(json);
  if (!isHardState(parsed)) throw corrupt(HARD_STATE_PREFIX_BYTES, 'hard state fields are malformed');
  return parsed;
}

function isHardState(value: unknown): value is HardState {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    isCount(v.term) &&
    isCount(v.commit) &&
    (v.vote === null || (typeof v.vote === 'string' && v.vote.length > 0))
  );
}

// ---- snapshots ----

const SNAPSHOT_MAGIC = Buffer.from('FLOSNAP1', 'latin1');
const SNAPSHOT_TRAILER_MAGIC = 0x45534c46; // 'FLSE'
/** Fixed end of a snapshot file: body length u64, block size u32, block count u32, table CRC u32, magic u32. */
export const SNAPSHOT_TAIL_BYTES = 24;
/**
 * The body is checksummed per block so that damage is reported at a block's offset rather than
 * "somewhere in the snapshot", and so a reader can verify as it streams. 64 KiB keeps the table
 * small (64 KiB per GiB of snapshot) while a damaged block is easy to find.
 */
export const SNAPSHOT_BLOCK_BYTES = 64 * 1024;
/** Longest header `decodeSnapshotHeader` accepts: membership lists are small. */
export const MAX_SNAPSHOT_HEADER_BYTES = 1024 * 1024;

export function encodeSnapshotHeader(meta: SnapshotMeta): Buffer {
  const json = Buffer.from(
    JSON.stringify({
      index: meta.index,
      term: meta.term,
      conf: { voters: meta.conf.voters, learners: meta.conf.learners },
    }),
    'utf8',
  );
  const buf = Buffer.alloc(16 + json.length + 4);
  SNAPSHOT_MAGIC.copy(buf, 0);
  buf.writeUInt32LE(FORMAT_VERSION, 8);
  buf.writeUInt32LE(json.length, 12);
  json.copy(buf, 16);
  buf.writeUInt32LE(crc32(buf.subarray(0, 16 + json.length)), 16 + json.length);
  return buf;
}

/** Parses a snapshot header from the first bytes of the file; returns the meta and where the body starts. */
export function decodeSnapshotHeader(
  fileName: string,
  head: Uint8Array,
): { meta: SnapshotMeta; bodyOffset: number } {
  const buf = asBuffer(head);
  if (buf.length < 16 || !buf.subarray(0, 8).equals(SNAPSHOT_MAGIC)) {
    throw new CorruptionError(fileName, 0, 'bad snapshot header');
  }
  const version = buf.readUInt32LE(8);
  if (version !== FORMAT_VERSION)
    throw new CorruptionError(fileName, 8, `unsupported snapshot version ${version}`);
  const length = buf.readUInt32LE(12);
  if (16 + length + 4 > buf.length)
    throw new CorruptionError(fileName, 12, `snapshot meta length ${length} too large`);
  const crcAt = 16 + length;
  if (crc32(buf.subarray(0, crcAt)) !== buf.readUInt32LE(crcAt)) {
    throw new CorruptionError(fileName, 16, 'snapshot header checksum mismatch');
  }
  const meta = parseJson(buf.subarray(16, crcAt));
  if (!isSnapshotMeta(meta)) throw new CorruptionError(fileName, 16, 'snapshot meta fields are malformed');
  return { meta, bodyOffset: crcAt + 4 };
}

/** The block CRC table and fixed tail that close a snapshot file. */
export function encodeSnapshotTrailer(bodyBytes: number, blockCrcs: readonly number[]): Buffer {
  const tableBytes = blockCrcs.length * 4;
  const buf = Buffer.alloc(tableBytes + SNAPSHOT_TAIL_BYTES);
  blockCrcs.forEach((crc, i) => {
    buf.writeUInt32LE(crc >>> 0, i * 4);
  });
  writeU64(buf, bodyBytes, tableBytes);
  buf.writeUInt32LE(SNAPSHOT_BLOCK_BYTES, tableBytes + 8);
  buf.writeUInt32LE(blockCrcs.length, tableBytes + 12);
  buf.writeUInt32LE(crc32(buf.subarray(0, tableBytes + 16)), tableBytes + 16);
  buf.writeUInt32LE(SNAPSHOT_TRAILER_MAGIC, tableBytes + 20);
  return buf;
}

export interface SnapshotTail {
  bodyBytes: number;
  blockBytes: number;
  blockCount: number;
}

/** Decodes the fixed tail (last 24 bytes); null when it is not one. */
export function decodeSnapshotTail(bytes: Uint8Array): SnapshotTail | null {
  const buf = asBuffer(bytes);
  if (buf.length !== SNAPSHOT_TAIL_BYTES || buf.readUInt32LE(20) !== SNAPSHOT_TRAILER_MAGIC) return null;
  const bodyBytes = readU64(buf, 0);
  const blockBytes = buf.readUInt32LE(8);
  const blockCount = buf.readUInt32LE(12);
  if (!Number.isSafeInteger(bodyBytes) || blockBytes === 0) return null;
  if (blockCount !== Math.ceil(bodyBytes / blockBytes)) return null;
  return { bodyBytes, blockBytes, blockCount };
}

/** Checks the CRC that covers the block table and the tail's first 16 bytes. */
export function snapshotTableCrcMatches(table: Uint8Array, tail: Uint8Array): boolean {
  const tailBuf = asBuffer(tail);
  return crc32(tailBuf.subarray(0, 16), crc32(table)) === tailBuf.readUInt32LE(16);
}

function isSnapshotMeta(value: unknown): value is SnapshotMeta {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  const conf = v.conf as Record<string, unknown> | null | undefined;
  const isIdList = (list: unknown) => Array.isArray(list) && list.every((id) => typeof id === 'string');
  if (typeof conf !== 'object' || conf === null) return false;
  return isCount(v.index) && isCount(v.term) && isIdList(conf.voters) && isIdList(conf.learners);
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function parseJson(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
}
