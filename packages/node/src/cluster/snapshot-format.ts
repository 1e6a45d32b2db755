/**
 * What the driver puts in a snapshot file's body: a short preamble of its own (the address book:
 * where each member of the snapshot's membership is reached), then the application's snapshot
 * bytes untouched. Membership itself is in the snapshot's meta; the addresses ride here because a
 * member added by a membership entry that compaction has since removed would otherwise be
 * unreachable for a node that starts from the snapshot.
 *
 *   "FLSN" | version (1 byte) | preamble length (u32 BE) | msgpack [[id, address], ...] | app bytes
 *
 * Restoring reads the preamble, then streams the rest to `app.restore` in chunks.
 */
import { decodeMsgpack, encodeMsgpack } from '@flotilla/shared';
import type { NodeId } from '../raft/index.js';
import type { SnapshotReader } from '../storage/index.js';

const MAGIC = [0x46, 0x4c, 0x53, 0x4e]; // "FLSN"
const VERSION = 1;
const FIXED_BYTES = 9;
/** Largest preamble accepted: thousands of members' addresses, far above any real cluster. */
const PREAMBLE_BYTES_MAX = 1024 * 1024;
/** Bytes read from the snapshot file per chunk handed to the application on restore. */
export const RESTORE_CHUNK_BYTES = 1024 * 1024;

export class SnapshotFormatError extends Error {
  override readonly name = 'SnapshotFormatError';
}

/** The preamble for `addresses` (sorted by id, so equal books give equal bytes on every node). */
export function encodeSnapshotPreamble(addresses: ReadonlyMap<NodeId, string>): Uint8Array {
  const book = [...addresses].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const body = encodeMsgpack(book);
  const out = new Uint8Array(FIXED_BYTES + body.length);
  out.set(MAGIC, 0);
  out[4] = VERSION;
  new DataView(out.buffer).setUint32(5, body.length);
  out.set(body, FIXED_BYTES);
  return out;
}

export interface SnapshotPreamble {
  addresses: Map<NodeId, string>;
  /** Offset of the application's bytes in the snapshot body. */
  appOffset: number;
}

function read(reader: SnapshotReader, offset: number, length: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    reader.read(offset, length, (err, chunk) => {
      if (err !== null) reject(err);
      else if (chunk === undefined || chunk.length !== length)
        reject(new SnapshotFormatError(`short snapshot read at ${offset}: wanted ${length} bytes`));
      else resolve(chunk);
    });
  });
}

export async function readSnapshotPreamble(reader: SnapshotReader): Promise<SnapshotPreamble> {
  if (reader.size < FIXED_BYTES)
    throw new SnapshotFormatError(`snapshot of ${reader.size} bytes has no preamble`);
  const fixed = await read(reader, 0, FIXED_BYTES);
  if (MAGIC.some((byte, i) => fixed[i] !== byte) || fixed[4] !== VERSION) {
    throw new SnapshotFormatError('snapshot body does not start with a driver preamble (FLSN v1)');
  }
  const length = new DataView(fixed.buffer, fixed.byteOffset, fixed.byteLength).getUint32(5);
  if (length > PREAMBLE_BYTES_MAX || FIXED_BYTES + length > reader.size) {
    throw new SnapshotFormatError(`snapshot preamble of ${length} bytes does not fit (${reader.size} bytes)`);
  }
  const body = length === 0 ? new Uint8Array(0) : await read(reader, FIXED_BYTES, length);
  return { addresses: decodeBook(body), appOffset: FIXED_BYTES + length };
}

function decodeBook(body: Uint8Array): Map<NodeId, string> {
  const value = decodeMsgpack(body);
  const book = new Map<NodeId, string>();
  if (!Array.isArray(value)) throw new SnapshotFormatError('snapshot address book is not a list');
  for (const pair of value) {
    if (
      !Array.isArray(pair) ||
      pair.length !== 2 ||
      typeof pair[0] !== 'string' ||
      typeof pair[1] !== 'string'
    ) {
      throw new SnapshotFormatError('snapshot address book entry is not [id, address]');
    }
    book.set(pair[0], pair[1]);
  }
  return book;
}

/** The application's bytes, from `offset` to the end, in chunks of up to `chunkBytes`. */
export async function* readAppBytes(
  reader: SnapshotReader,
  offset: number,
  chunkBytes = RESTORE_CHUNK_BYTES,
): AsyncGenerator<Uint8Array> {
  for (let at = offset; at < reader.size; at += chunkBytes) {
    yield await read(reader, at, Math.min(chunkBytes, reader.size - at));
  }
}
