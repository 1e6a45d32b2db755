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
 * - `Entries` payload: first index u64, then per entry {term u64, type u8, data length u32, data}
 *   up to the payload's end. The entry data is the caller's bytes, never re-encoded. A record
 *   whose first index is not one past the log's last index replaces the entries from that index
 *   on (Raft conflict truncation); the log only ever appends.
 * - `Reset` payload: snapshot index u64, snapshot term u64: every earlier entry is void and the
 *   log continues at index + 1 (after installing a snapshot from the leader).
 * - Hard state `hardstate`: magic, length u32, CRC u32, JSON {term, vote, commit}.
 * - Snapshot `snap-<index:20>-<term:20>.snap`: header {magic, version u32, meta length u32, meta
 *   JSON, CRC u32}, the body, a table of CRC u32 per 64 KiB body block, and a 24-byte tail {body
 *   length u64, block size u32, block count u32, CRC u32 of table and tail, magic u32}.
 */
import { crc32 } from 'node:zlib';
import type { Entry, EntryType, HardState, SnapshotMeta } from '../raft/types.js';
import { CorruptionError, StorageInvariantError } from './errors.js';

export { crc32 };

const TWO_32 = 2 ** 32;

export function writeU64(buf: Buffer, value: number, offset: number): void {
  // Checked inline rather than through `invariant`: this runs per entry and a closure per call shows in profiles.
  if (!(Number.isSafeInteger(value) && value >= 0))
    throw new StorageInvariantError(`u64 field out of range: ${value}`);
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
const ENTRIES_PAYLOAD_HEADER_BYTES = 8;
export const ENTRY_HEADER_BYTES = 13;
const RESET_PAYLOAD_BYTES = 16;
/** Larger records are refused when written and treated as damage when read. */
export const MAX_RECORD_PAYLOAD_BYTES = 1024 * 1024 * 1024;

export const RecordType = { Entries: 1, Reset: 2 } as const;
export type RecordType = (typeof RecordType)[keyof typeof RecordType];

/**
 * Entry data up to this size is copied into the encoder's blocks; larger data is written from the
 * caller's bytes (its own iovec). Copying small entries turns thousands of iovecs and CRC calls per
 * group into a few: for 1 KiB entries the per-piece overhead (a JS-to-C++ call, a subarray object)
 * cost more than copying the bytes, which the kernel copies again anyway.
 */
export const COPY_LIMIT_BYTES = 64 * 1024;
/** Encoder block size: a few blocks per typical group, each CRC'd once when full. */
export const ENCODER_BLOCK_BYTES = 256 * 1024;

/**
 * Recycles encoder blocks once their group is written, so a busy log does not allocate (and the
 * GC does not collect) hundreds of MB of buffers per second. Holds at most `maxBlocks` spares.
 */
export class BlockPool {
  private readonly spare: Buffer[] = [];
  constructor(private readonly maxBlocks = 64) {}

  take(): Buffer {
    return this.spare.pop() ?? Buffer.allocUnsafe(ENCODER_BLOCK_BYTES);
  }

  give(blocks: readonly Buffer[]): void {
    for (const block of blocks) {
      if (this.spare.length >= this.maxBlocks) return;
      if (block.length === ENCODER_BLOCK_BYTES) this.spare.push(block);
    }
  }
}

/**
 * Encodes one group write incrementally: records are appended as batches arrive (so encoding and
 * checksumming overlap the previous group's I/O) and `seal` closes the last record. Consecutive
 * batches that continue each other share one record; a batch that does not starts a new record,
 * which on replay replaces the entries from its first index on (conflict truncation).
 */
export class GroupEncoder {
  /** Finished pieces in file order: slices of blocks, and referenced large entry data. */
  private readonly chunks: Uint8Array[] = [];
  private block: Buffer;
  /** Every block used, to hand back to the pool once the group is written. */
  private readonly blocks: Buffer[] = [];
  private readonly pool: BlockPool | null;
  private pos = 0;
  private sliceStart = 0;
  private crc = 0;
  private crcFrom = 0;
  private record: { block: Buffer; at: number; type: RecordType; payloadBytes: number } | null = null;
  private nextIndex = -1;
  /** Bytes encoded so far. */
  byteLength = 0;
  entryCount = 0;
  /** Highest entry index encoded (0 if none). */
  maxIndex = 0;
  /** The log's last index after this group (the last entry, or the reset's index). */
  lastIndex = 0;
  /** Index the first record starts the log at (its first entry, or a reset's index + 1); 0 if empty. */
  firstIndex = 0;

  constructor(pool: BlockPool | null = null) {
    this.pool = pool;
    this.block = this.newBlock(ENCODER_BLOCK_BYTES);
  }

  /** The group is written: its blocks may be reused. The encoder and its chunks must not be used again. */
  release(): void {
    this.pool?.give(this.blocks);
    this.blocks.length = 0;
  }

  /** Every earlier entry is void; the log continues at `index + 1`. */
  addReset(index: number, term: number): void {
    this.endRecord();
    this.beginRecord(RecordType.Reset, RESET_PAYLOAD_BYTES);
    writeU64(this.block, index, this.pos);
    writeU64(this.block, term, this.pos + 8);
    this.advance(RESET_PAYLOAD_BYTES);
    this.endRecord();
    this.nextIndex = -1;
    this.lastIndex = index;
    if (this.firstIndex === 0) this.firstIndex = index + 1;
  }

  /** Appends contiguous entries; they continue the current record when they follow it. */
  addEntries(entries: readonly Entry[]): void {
    const first = entries[0];
    if (!first) return;
    if (this.record?.type !== RecordType.Entries || first.index !== this.nextIndex) {
      this.endRecord();
      this.beginRecord(RecordType.Entries, ENTRIES_PAYLOAD_HEADER_BYTES);
      writeU64(this.block, first.index, this.pos);
      this.advance(ENTRIES_PAYLOAD_HEADER_BYTES);
    }
    if (this.firstIndex === 0) this.firstIndex = first.index;
    for (const entry of entries) this.addEntry(entry);
    this.nextIndex = first.index + entries.length;
    this.lastIndex = this.nextIndex - 1;
    this.maxIndex = Math.max(this.maxIndex, this.lastIndex);
  }

  /** Closes the last record; returns the chunks to write, in order. The encoder is spent. */
  seal(): Uint8Array[] {
    this.endRecord();
    this.flushSlice();
    return this.chunks;
  }

  private addEntry(entry: Entry): void {
    const length = entry.data.byteLength;
    const copied = length <= COPY_LIMIT_BYTES;
    this.ensure(ENTRY_HEADER_BYTES + (copied ? length : 0));
    const buf = this.block;
    const at = this.pos;
    writeU64(buf, entry.term, at);
    buf[at + 8] = entry.type;
    buf.writeUInt32LE(length, at + 9);
    this.advance(ENTRY_HEADER_BYTES);
    if (copied) {
      buf.set(entry.data, this.pos);
      this.advance(length);
    } else {
      this.reference(entry.data);
    }
    this.entryCount++;
  }

  private beginRecord(type: RecordType, payloadHeaderBytes: number): void {
    this.ensure(RECORD_HEADER_BYTES + payloadHeaderBytes);
    this.record = { block: this.block, at: this.pos, type, payloadBytes: 0 };
    this.pos += RECORD_HEADER_BYTES;
    this.byteLength += RECORD_HEADER_BYTES;
    this.crc = 0;
    this.crcFrom = this.pos;
  }

  /** Writes the open record's header (its block may already be among the chunks: same memory). */
  private endRecord(): void {
    const record = this.record;
    if (!record) return;
    this.crc = crc32(this.block.subarray(this.crcFrom, this.pos), this.crc);
    this.crcFrom = this.pos;
    if (record.payloadBytes > MAX_RECORD_PAYLOAD_BYTES) {
      throw new StorageInvariantError(`record of ${record.payloadBytes} bytes exceeds the limit`);
    }
    writeRecordHeader(record.block, record.at, record.payloadBytes, record.type, this.crc);
    this.record = null;
  }

  private advance(bytes: number): void {
    this.pos += bytes;
    this.byteLength += bytes;
    if (this.record) this.record.payloadBytes += bytes;
  }

  private reference(data: Uint8Array): void {
    this.crc = crc32(data, crc32(this.block.subarray(this.crcFrom, this.pos), this.crc));
    this.flushSlice();
    this.chunks.push(data);
    this.crcFrom = this.pos;
    this.byteLength += data.byteLength;
    if (this.record) this.record.payloadBytes += data.byteLength;
  }

  /** Makes room for `bytes` contiguous bytes, moving to a fresh block when the current one is full. */
  private ensure(bytes: number): void {
    if (this.pos + bytes <= this.block.length) return;
    if (this.record) this.crc = crc32(this.block.subarray(this.crcFrom, this.pos), this.crc);
    this.flushSlice();
    this.block = this.newBlock(bytes);
    this.pos = 0;
    this.sliceStart = 0;
    this.crcFrom = 0;
  }

  private newBlock(bytes: number): Buffer {
    const block =
      bytes <= ENCODER_BLOCK_BYTES && this.pool
        ? this.pool.take()
        : Buffer.allocUnsafe(Math.max(ENCODER_BLOCK_BYTES, bytes));
    this.blocks.push(block);
    return block;
  }

  private flushSlice(): void {
    if (this.pos > this.sliceStart) this.chunks.push(this.block.subarray(this.sliceStart, this.pos));
    this.sliceStart = this.pos;
  }
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
  if (!Number.isSafeInteger(firstIndex) || firstIndex < 1) throw bad(`first index ${firstIndex}`);
  const entries: Entry[] = [];
  let pos = ENTRIES_PAYLOAD_HEADER_BYTES;
  while (pos < payload.length) {
    const i = entries.length;
    if (pos + ENTRY_HEADER_BYTES > payload.length) throw bad(`entry ${i} header is cut off`);
    const term = readU64(payload, pos);
    const type = payload[pos + 8]!;
    const length = payload.readUInt32LE(pos + 9);
    pos += ENTRY_HEADER_BYTES;
    if (pos + length > payload.length) throw bad(`entry ${i} data of ${length} bytes is cut off`);
    if (!Number.isSafeInteger(term) || (type !== 0 && type !== 1))
      throw bad(`entry ${i} term ${term} type ${type}`);
    const data = new Uint8Array(payload.buffer, payload.byteOffset + pos, length);
    entries.push({ index: firstIndex + i, term, type: type as EntryType, data });
    pos += length;
  }
  if (entries.length === 0) throw bad('no entries');
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
