/**
 * Peer frames: the binary WebSocket messages between broker nodes, in msgpack (the project's own
 * codec). Every frame is an array whose first element is its kind:
 *
 *   [0 HELLO,   version, serverId, nonce]                       server → dialer, first frame
 *   [1 AUTH,    version, dialerId, dialerAddress, nonce, proof] dialer → server
 *   [2 WELCOME, proof]                                          server → dialer; the link is up
 *   [3 RAFT,    group, type, from, to, term, ...fields]         dialer → server, only once up
 *
 * Raft fields are positional (see `FIELD_COUNTS`). An AppendEntries is written as parts: a small
 * per-follower header that ends with the entries array's header, then per entry the prefix of its
 * `[term, type, data]` array and its data (indexes follow from `prevIndex`). The data parts are the
 * entries' own bytes, never copied; the prefixes are encoded once per batch and shared by every
 * follower that gets the same entries. The parts leave as one WebSocket frame (ws-frame.ts).
 *
 * Decoding is strict (exact field counts, no trailing bytes, bounded strings) and never trusts a
 * length before checking it against the bytes present; entry and chunk data come back as views of
 * the received frame. Structure is checked here; Raft-level consistency by `validateMessage`.
 */
import { FlotillaError, MsgpackReader, MsgpackWriter } from '@flotilla/shared';
import type { Entry, EntryType, Message, MessageType, NodeId, SnapshotMeta } from '../../raft/index.js';

export const PEER_PROTOCOL_VERSION = 1;

export const FrameKind = { Hello: 0, Auth: 1, Welcome: 2, Raft: 3 } as const;

/** Random challenge size: 256 bits, so a nonce never repeats in practice. */
export const NONCE_BYTES = 32;
/** HMAC-SHA256 output size. */
export const PROOF_BYTES = 32;
/** Longest node id or address accepted in a frame. */
const NODE_ID_BYTES_MAX = 1024;
const ADDRESS_BYTES_MAX = 1024;
/** Members listed in a snapshot chunk's membership; far above any real cluster. */
const MEMBERS_MAX = 10_000;

export interface HelloFrame {
  kind: 'hello';
  version: number;
  nodeId: NodeId;
  nonce: Uint8Array;
}

export interface AuthFrame {
  kind: 'auth';
  version: number;
  nodeId: NodeId;
  /** Where the dialer's own peers reach it (`host:port`). */
  address: string;
  nonce: Uint8Array;
  proof: Uint8Array;
}

export interface WelcomeFrame {
  kind: 'welcome';
  proof: Uint8Array;
}

/** A decoded Raft message; structurally complete but not yet checked with `validateMessage`. */
export interface RaftFrame {
  kind: 'raft';
  message: Message;
}

export type PeerFrame = HelloFrame | AuthFrame | WelcomeFrame | RaftFrame;

const TYPE_CODES: Readonly<Record<MessageType, number>> = {
  append: 0,
  appendResp: 1,
  heartbeat: 2,
  heartbeatResp: 3,
  preVote: 4,
  preVoteResp: 5,
  vote: 6,
  voteResp: 7,
  snapshot: 8,
  snapshotResp: 9,
  timeoutNow: 10,
};
const TYPES_BY_CODE = Object.keys(TYPE_CODES) as MessageType[];

/** Array length of a Raft frame per message type: kind, group, type, from, to, term, then fields. */
const FIELD_COUNTS: Readonly<Record<MessageType, number>> = {
  append: 10,
  appendResp: 10,
  heartbeat: 8,
  heartbeatResp: 7,
  preVote: 9,
  vote: 9,
  preVoteResp: 7,
  voteResp: 7,
  snapshot: 12,
  snapshotResp: 10,
  timeoutNow: 6,
};

// ---------------------------------------------------------------------------------------------
// Encoding

const writer = new MsgpackWriter(4 * 1024);

export function encodeHello(nodeId: NodeId, nonce: Uint8Array): Uint8Array {
  writer.reset();
  writer.arrayHeader(4);
  writer.uint(FrameKind.Hello);
  writer.uint(PEER_PROTOCOL_VERSION);
  writer.str(nodeId);
  writer.bin(nonce);
  return writer.finish();
}

export function encodeAuth(
  nodeId: NodeId,
  address: string,
  nonce: Uint8Array,
  proof: Uint8Array,
): Uint8Array {
  writer.reset();
  writer.arrayHeader(6);
  writer.uint(FrameKind.Auth);
  writer.uint(PEER_PROTOCOL_VERSION);
  writer.str(nodeId);
  writer.str(address);
  writer.bin(nonce);
  writer.bin(proof);
  return writer.finish();
}

export function encodeWelcome(proof: Uint8Array): Uint8Array {
  writer.reset();
  writer.arrayHeader(2);
  writer.uint(FrameKind.Welcome);
  writer.bin(proof);
  return writer.finish();
}

/** One Raft message ready for a socket: parts that, joined, form a single WebSocket message. */
export interface EncodedFrame {
  message: Message;
  /**
   * The message's bytes in order. One part, except for an AppendEntries with entries: the header,
   * then each entry's prefix and (unless empty) its data, the entry's own bytes.
   */
  parts: Uint8Array[];
  /** Sum of the parts' lengths. */
  bytes: number;
  /** Entries or snapshot data: queued behind control frames. */
  bulk: boolean;
}

/** The entries of one AppendEntries as parts (see `encodeEntryParts`), kept for followers that get the same run. */
interface SharedEntries {
  last: Entry;
  count: number;
  parts: Uint8Array[];
  bytes: number;
}

/**
 * Encodes the messages of one batch (typically one Ready). AppendEntries carrying the very same
 * entries (the core hands every follower slices of one log, so equal runs are the same objects)
 * share one encoding of their entries.
 */
export function encodeMessages(messages: readonly Message[]): EncodedFrame[] {
  const shared = new Map<Entry, SharedEntries>();
  const frames: EncodedFrame[] = [];
  for (const message of messages) {
    if (message.type === 'append' && message.entries.length > 0) {
      frames.push(encodeAppend(message, shared));
    } else {
      const bytes = encodeRaftHeader(message);
      frames.push({ message, parts: [bytes], bytes: bytes.length, bulk: message.type === 'snapshot' });
    }
  }
  return frames;
}

function encodeAppend(
  message: Extract<Message, { type: 'append' }>,
  shared: Map<Entry, SharedEntries>,
): EncodedFrame {
  const { entries } = message;
  const first = entries[0]!;
  const last = entries[entries.length - 1]!;
  let cached = shared.get(first);
  if (cached === undefined || cached.last !== last || cached.count !== entries.length) {
    cached = { last, count: entries.length, ...encodeEntryParts(entries) };
    shared.set(first, cached);
  }
  const header = encodeRaftHeader(message);
  const parts = new Array<Uint8Array>(cached.parts.length + 1);
  parts[0] = header;
  for (let i = 0; i < cached.parts.length; i++) parts[i + 1] = cached.parts[i]!;
  return { message, parts, bytes: header.length + cached.bytes, bulk: true };
}

/**
 * `[term, type, data]` per entry, back to back (the array header is in the message header), as
 * parts: each entry's prefix (array, term, type and bin headers; all prefixes share one small
 * buffer) followed by the entry's data itself, so no entry body is ever copied on the way to the
 * socket. Joined, the parts are plain msgpack, read back with `MsgpackReader`. Empty data adds no part.
 */
export function encodeEntryParts(entries: readonly Entry[]): { parts: Uint8Array[]; bytes: number } {
  let prefixBytes = 0;
  for (const entry of entries) {
    prefixBytes += 1 + uintBytes(entry.term) + uintBytes(entry.type) + binHeaderBytes(entry.data.length);
  }
  const prefixes = new Uint8Array(prefixBytes);
  const view = new DataView(prefixes.buffer);
  const parts: Uint8Array[] = [];
  let bytes = prefixBytes;
  let at = 0;
  for (const entry of entries) {
    const start = at;
    prefixes[at++] = 0x93; // fixarray of 3
    at = writeUint(view, at, entry.term);
    at = writeUint(view, at, entry.type);
    at = writeBinHeader(view, at, entry.data.length);
    parts.push(prefixes.subarray(start, at));
    if (entry.data.length > 0) parts.push(entry.data);
    bytes += entry.data.length;
  }
  if (at !== prefixBytes) throw new Error(`entry prefixes: wrote ${at} bytes, sized ${prefixBytes}`);
  return { parts, bytes };
}

function uintBytes(value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`not a uint: ${value}`);
  return value < 0x80 ? 1 : value < 0x100 ? 2 : value < 0x10000 ? 3 : value < 0x1_0000_0000 ? 5 : 9;
}

function writeUint(view: DataView, at: number, value: number): number {
  if (value < 0x80) {
    view.setUint8(at, value);
    return at + 1;
  }
  if (value < 0x100) {
    view.setUint8(at, 0xcc);
    view.setUint8(at + 1, value);
    return at + 2;
  }
  if (value < 0x10000) {
    view.setUint8(at, 0xcd);
    view.setUint16(at + 1, value);
    return at + 3;
  }
  if (value < 0x1_0000_0000) {
    view.setUint8(at, 0xce);
    view.setUint32(at + 1, value);
    return at + 5;
  }
  view.setUint8(at, 0xcf);
  view.setUint32(at + 1, Math.floor(value / 0x1_0000_0000));
  view.setUint32(at + 5, value >>> 0);
  return at + 9;
}

function binHeaderBytes(length: number): number {
  return length < 0x100 ? 2 : length < 0x10000 ? 3 : 5;
}

function writeBinHeader(view: DataView, at: number, length: number): number {
  if (length < 0x100) {
    view.setUint8(at, 0xc4);
    view.setUint8(at + 1, length);
    return at + 2;
  }
  if (length < 0x10000) {
    view.setUint8(at, 0xc5);
    view.setUint16(at + 1, length);
    return at + 3;
  }
  view.setUint8(at, 0xc6);
  view.setUint32(at + 1, length);
  return at + 5;
}

/** The whole frame of every message but an append's entries (for which it writes only the array header). */
function encodeRaftHeader(m: Message): Uint8Array {
  const w = writer;
  w.reset();
  w.arrayHeader(FIELD_COUNTS[m.type]);
  w.uint(FrameKind.Raft);
  w.uint(m.group);
  w.uint(TYPE_CODES[m.type]);
  w.str(m.from);
  w.str(m.to);
  w.uint(m.term);
  switch (m.type) {
    case 'append':
      w.uint(m.prevIndex);
      w.uint(m.prevTerm);
      w.uint(m.commit);
      w.arrayHeader(m.entries.length);
      break;
    case 'appendResp':
      w.bool(m.reject);
      w.uint(m.index);
      w.uint(m.hintIndex);
      w.uint(m.hintTerm);
      break;
    case 'heartbeat':
      w.uint(m.commit);
      w.uint(m.readSeq);
      break;
    case 'heartbeatResp':
      w.uint(m.readSeq);
      break;
    case 'preVote':
    case 'vote':
      w.uint(m.lastIndex);
      w.uint(m.lastTerm);
      w.bool(m.transfer);
      break;
    case 'preVoteResp':
    case 'voteResp':
      w.bool(m.reject);
      break;
    case 'snapshot':
      writeSnapshotMeta(w, m.meta);
      w.uint(m.sizeBytes);
      w.uint(m.offset);
      w.uint(m.length);
      w.bool(m.done);
      w.bin(m.data);
      break;
    case 'snapshotResp':
      w.uint(m.snapshotIndex);
      w.uint(m.snapshotTerm);
      w.uint(m.nextOffset);
      w.bool(m.reject);
      break;
    case 'timeoutNow':
      break;
  }
  return w.finish();
}

function writeSnapshotMeta(w: MsgpackWriter, meta: SnapshotMeta): void {
  w.arrayHeader(4);
  w.uint(meta.index);
  w.uint(meta.term);
  w.arrayHeader(meta.conf.voters.length);
  for (const id of meta.conf.voters) w.str(id);
  w.arrayHeader(meta.conf.learners.length);
  for (const id of meta.conf.learners) w.str(id);
}

// ---------------------------------------------------------------------------------------------
// Decoding

function malformed(message: string): FlotillaError {
  return new FlotillaError('PROTOCOL_ERROR', `malformed peer frame: ${message}`);
}

/**
 * Decodes one peer frame. Throws a `FlotillaError` (PROTOCOL_ERROR or INVALID_ARGUMENT) for
 * anything malformed; the caller drops the frame and logs the reason.
 */
export function decodePeerFrame(bytes: Uint8Array): PeerFrame {
  const r = new MsgpackReader(bytes);
  const length = r.arrayHeader('frame');
  if (length < 2) throw malformed(`array of ${length}`);
  const kind = r.int('kind', 0, 255);
  let frame: PeerFrame;
  switch (kind) {
    case FrameKind.Hello:
      expectLength(length, 4, 'hello');
      frame = {
        kind: 'hello',
        version: r.int('version', 0, 0xffff),
        nodeId: nodeId(r, 'nodeId'),
        nonce: fixedBin(r, 'nonce', NONCE_BYTES),
      };
      break;
    case FrameKind.Auth:
      expectLength(length, 6, 'auth');
      frame = {
        kind: 'auth',
        version: r.int('version', 0, 0xffff),
        nodeId: nodeId(r, 'nodeId'),
        address: r.str('address', ADDRESS_BYTES_MAX),
        nonce: fixedBin(r, 'nonce', NONCE_BYTES),
        proof: fixedBin(r, 'proof', PROOF_BYTES),
      };
      break;
    case FrameKind.Welcome:
      expectLength(length, 2, 'welcome');
      frame = { kind: 'welcome', proof: fixedBin(r, 'proof', PROOF_BYTES) };
      break;
    case FrameKind.Raft:
      frame = { kind: 'raft', message: decodeRaft(r, length) };
      break;
    default:
      throw malformed(`unknown kind ${kind}`);
  }
  if (!r.done) throw malformed(`${r.remaining} trailing bytes`);
  return frame;
}

function expectLength(actual: number, expected: number, what: string): void {
  if (actual !== expected) throw malformed(`${what} with ${actual} elements, expected ${expected}`);
}

function nodeId(r: MsgpackReader, field: string): NodeId {
  const id = r.str(field, NODE_ID_BYTES_MAX);
  if (id.length === 0) throw malformed(`${field} is empty`);
  return id;
}

function fixedBin(r: MsgpackReader, field: string, bytes: number): Uint8Array {
  const value = r.bin(field, bytes);
  if (value.length !== bytes) throw malformed(`${field} of ${value.length} bytes, expected ${bytes}`);
  return value;
}

const index = (r: MsgpackReader, field: string) => r.int(field, 0, Number.MAX_SAFE_INTEGER);

function decodeRaft(r: MsgpackReader, length: number): Message {
  const group = index(r, 'group');
  const type = TYPES_BY_CODE[r.int('type', 0, TYPES_BY_CODE.length - 1)]!;
  expectLength(length, FIELD_COUNTS[type], type);
  const envelope = { group, from: nodeId(r, 'from'), to: nodeId(r, 'to'), term: index(r, 'term') };
  switch (type) {
    case 'append': {
      const prevIndex = index(r, 'prevIndex');
      const prevTerm = index(r, 'prevTerm');
      const commit = index(r, 'commit');
      return { ...envelope, type, prevIndex, prevTerm, commit, entries: decodeEntries(r, prevIndex) };
    }
    case 'appendResp':
      return {
        ...envelope,
        type,
        reject: r.bool('reject'),
        index: index(r, 'index'),
        hintIndex: index(r, 'hintIndex'),
        hintTerm: index(r, 'hintTerm'),
      };
    case 'heartbeat':
      return { ...envelope, type, commit: index(r, 'commit'), readSeq: index(r, 'readSeq') };
    case 'heartbeatResp':
      return { ...envelope, type, readSeq: index(r, 'readSeq') };
    case 'preVote':
    case 'vote':
      return {
        ...envelope,
        type,
        lastIndex: index(r, 'lastIndex'),
        lastTerm: index(r, 'lastTerm'),
        transfer: r.bool('transfer'),
      };
    case 'preVoteResp':
    case 'voteResp':
      return { ...envelope, type, reject: r.bool('reject') };
    case 'snapshot':
      return {
        ...envelope,
        type,
        meta: decodeSnapshotMeta(r),
        sizeBytes: index(r, 'sizeBytes'),
        offset: index(r, 'offset'),
        length: index(r, 'length'),
        done: r.bool('done'),
        data: r.bin('data'),
      };
    case 'snapshotResp':
      return {
        ...envelope,
        type,
        snapshotIndex: index(r, 'snapshotIndex'),
        snapshotTerm: index(r, 'snapshotTerm'),
        nextOffset: index(r, 'nextOffset'),
        reject: r.bool('reject'),
      };
    case 'timeoutNow':
      return { ...envelope, type };
  }
}

function decodeEntries(r: MsgpackReader, prevIndex: number): Entry[] {
  const count = r.arrayHeader('entries');
  const entries = new Array<Entry>(count);
  for (let i = 0; i < count; i++) {
    if (r.arrayHeader('entry') !== 3) throw malformed(`entry ${i} is not [term, type, data]`);
    const term = index(r, 'entry.term');
    const type = r.int('entry.type', 0, 255) as EntryType;
    entries[i] = { index: prevIndex + 1 + i, term, type, data: r.bin('entry.data') };
  }
  return entries;
}

function decodeSnapshotMeta(r: MsgpackReader): SnapshotMeta {
  if (r.arrayHeader('meta') !== 4) throw malformed('snapshot meta is not [index, term, voters, learners]');
  const metaIndex = index(r, 'meta.index');
  const term = index(r, 'meta.term');
  return {
    index: metaIndex,
    term,
    conf: { voters: idList(r, 'meta.voters'), learners: idList(r, 'meta.learners') },
  };
}

function idList(r: MsgpackReader, field: string): NodeId[] {
  const count = r.arrayHeader(field);
  if (count > MEMBERS_MAX) throw malformed(`${field} lists ${count} members`);
  const ids: NodeId[] = [];
  for (let i = 0; i < count; i++) ids.push(nodeId(r, field));
  return ids;
}
