/**
 * Messages exchanged by Raft peers, and the validation applied to every one of them before the
 * core looks at it (a peer's bytes are outside input: a malformed message is dropped with a reason,
 * never allowed to reach an invariant check).
 *
 * Every message carries the group id, sender, recipient and the sender's term. Field meanings:
 * indexes are log indexes (1-based), `commit` is the sender's commit index as far as the recipient
 * may use it, offsets and sizes are bytes.
 */
import { decodeConfChange } from './conf-change.js';
import { type Entry, EntryType, type GroupId, type NodeId, type SnapshotMeta } from './types.js';

interface Envelope {
  group: GroupId;
  from: NodeId;
  to: NodeId;
  /** Sender's current term (for a PreVote request: the term it would campaign in). */
  term: number;
}

/** Leader → follower: entries after (prevIndex, prevTerm); empty entries carry only `commit`. */
export interface AppendMessage extends Envelope {
  type: 'append';
  prevIndex: number;
  prevTerm: number;
  entries: Entry[];
  /** Leader's commit index. */
  commit: number;
}

/**
 * Follower → leader. Success: `index` is the highest index the follower's log is known to share
 * with the leader. Rejection: `index` is the rejected `prevIndex`, and (hintIndex, hintTerm) is the
 * follower's last entry at or below it whose term is <= the rejected prevTerm, so the leader can
 * skip a whole conflicting term in one round trip.
 */
export interface AppendResponse extends Envelope {
  type: 'appendResp';
  reject: boolean;
  index: number;
  hintIndex: number;
  hintTerm: number;
}

/** Leader → follower liveness; `commit` is min(follower's match, leader's commit). */
export interface HeartbeatMessage extends Envelope {
  type: 'heartbeat';
  commit: number;
  /** Newest ReadIndex round the leader wants confirmed (0 when none). */
  readSeq: number;
}

export interface HeartbeatResponse extends Envelope {
  type: 'heartbeatResp';
  /** Echo of the heartbeat's `readSeq`. */
  readSeq: number;
}

/** Candidate → voter. `preVote` asks "would you vote for me in `term`?" without changing any state. */
export interface VoteRequest extends Envelope {
  type: 'vote' | 'preVote';
  lastIndex: number;
  lastTerm: number;
  /** Set when campaigning on the leader's TimeoutNow: voters skip the leader-lease check. */
  transfer: boolean;
}

export interface VoteResponse extends Envelope {
  type: 'voteResp' | 'preVoteResp';
  reject: boolean;
}

/**
 * One chunk of an InstallSnapshot transfer. The core fills everything but `data`: the driver reads
 * `length` bytes at `offset` from the snapshot described by `meta` and puts them in `data` before
 * sending (or reports the transfer failed if that snapshot is no longer readable).
 */
export interface SnapshotMessage extends Envelope {
  type: 'snapshot';
  meta: SnapshotMeta;
  sizeBytes: number;
  offset: number;
  length: number;
  /** True on the last chunk (offset + length === sizeBytes). */
  done: boolean;
  data: Uint8Array;
}

/**
 * Follower → leader progress of a transfer: the follower holds bytes [0, nextOffset). `reject` means
 * "not what I expected": the leader restarts sending from `nextOffset`.
 */
export interface SnapshotResponse extends Envelope {
  type: 'snapshotResp';
  snapshotIndex: number;
  snapshotTerm: number;
  nextOffset: number;
  reject: boolean;
}

/** Leader → transferee: start an election now (leadership transfer). */
export interface TimeoutNowMessage extends Envelope {
  type: 'timeoutNow';
}

export type Message =
  | AppendMessage
  | AppendResponse
  | HeartbeatMessage
  | HeartbeatResponse
  | VoteRequest
  | VoteResponse
  | SnapshotMessage
  | SnapshotResponse
  | TimeoutNowMessage;

export type MessageType = Message['type'];

/** Longest node id accepted from the wire. */
const NODE_ID_LENGTH_MAX = 256;

const isIndex = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isNodeId = (v: unknown): v is string =>
  typeof v === 'string' && v.length > 0 && v.length <= NODE_ID_LENGTH_MAX;
const isBool = (v: unknown): v is boolean => typeof v === 'boolean';

type Fields = Record<string, unknown>;

/**
 * Checks that `value` is a well-formed {@link Message}. Returns null when it is, or the reason it is
 * not. Checks structure and internal consistency (entries contiguous after prevIndex, entry terms
 * not above the message term, chunk bounds); it cannot check anything that needs the receiver's state.
 */
export function validateMessage(value: unknown): string | null {
  if (typeof value !== 'object' || value === null) return 'not an object';
  const m = value as Fields;
  if (!Number.isSafeInteger(m.group)) return 'bad group';
  if (!isNodeId(m.from) || !isNodeId(m.to)) return 'bad from/to';
  if (!isIndex(m.term)) return 'bad term';
  switch (m.type) {
    case 'append':
      return validateAppend(m);
    case 'appendResp':
      return isBool(m.reject) && isIndex(m.index) && isIndex(m.hintIndex) && isIndex(m.hintTerm)
        ? null
        : 'bad appendResp';
    case 'heartbeat':
      return isIndex(m.commit) && isIndex(m.readSeq) ? null : 'bad heartbeat';
    case 'heartbeatResp':
      return isIndex(m.readSeq) ? null : 'bad heartbeatResp';
    case 'vote':
    case 'preVote':
      return isIndex(m.lastIndex) && isIndex(m.lastTerm) && isBool(m.transfer) && (m.term as number) > 0
        ? null
        : 'bad vote request';
    case 'voteResp':
    case 'preVoteResp':
      return isBool(m.reject) ? null : 'bad vote response';
    case 'snapshot':
      return validateSnapshotChunk(m);
    case 'snapshotResp':
      return isIndex(m.snapshotIndex) && isIndex(m.snapshotTerm) && isIndex(m.nextOffset) && isBool(m.reject)
        ? null
        : 'bad snapshotResp';
    case 'timeoutNow':
      return null;
    default:
      return 'unknown message type';
  }
}

function validateAppend(m: Fields): string | null {
  if (!isIndex(m.prevIndex) || !isIndex(m.prevTerm) || !isIndex(m.commit)) return 'bad append header';
  if (!Array.isArray(m.entries)) return 'bad append entries';
  if (m.prevTerm > (m.term as number)) return 'append prevTerm above message term';
  let term = m.prevTerm;
  for (let i = 0; i < m.entries.length; i++) {
    const reason = validateEntry(m.entries[i], m.prevIndex + 1 + i);
    if (reason !== null) return reason;
    const entryTerm = (m.entries[i] as Entry).term;
    if (entryTerm < term || entryTerm > (m.term as number))
      return `entry ${m.prevIndex + 1 + i} term out of order`;
    term = entryTerm;
  }
  return null;
}

function validateEntry(value: unknown, expectedIndex: number): string | null {
  if (typeof value !== 'object' || value === null) return 'entry not an object';
  const e = value as Fields;
  if (e.index !== expectedIndex) return `entry index ${String(e.index)} where ${expectedIndex} expected`;
  if (!isIndex(e.term) || e.term === 0) return 'bad entry term';
  if (!(e.data instanceof Uint8Array)) return 'bad entry data';
  if (e.type === EntryType.ConfChange)
    return decodeConfChange(e.data) === null ? 'bad conf change entry' : null;
  return e.type === EntryType.Normal ? null : 'bad entry type';
}

function validateSnapshotChunk(m: Fields): string | null {
  if (!isSnapshotMeta(m.meta)) return 'bad snapshot meta';
  if (!isIndex(m.sizeBytes) || !isIndex(m.offset) || !isIndex(m.length) || !isBool(m.done)) {
    return 'bad snapshot chunk header';
  }
  if (!(m.data instanceof Uint8Array) || m.data.length !== m.length)
    return 'snapshot chunk data length mismatch';
  if (m.offset + m.length > m.sizeBytes) return 'snapshot chunk beyond snapshot size';
  if (m.done !== (m.offset + m.length === m.sizeBytes)) return 'snapshot chunk done flag mismatch';
  return null;
}

export function isSnapshotMeta(value: unknown): value is SnapshotMeta {
  if (typeof value !== 'object' || value === null) return false;
  const meta = value as Fields;
  if (!isIndex(meta.index) || !isIndex(meta.term) || meta.index === 0) return false;
  const conf = meta.conf as Fields | null;
  if (typeof conf !== 'object' || conf === null) return false;
  const ids = (list: unknown) => Array.isArray(list) && list.every(isNodeId);
  return ids(conf.voters) && ids(conf.learners);
}

/** Entry data bytes, used for every byte limit in the core (headers are small and constant). */
export function entryBytes(entry: Entry): number {
  return entry.data.length;
}

/** One-line rendering for traces and transcripts, e.g. `n1->n2 append t2 prev=3/1 [4/2 5/2] c3`. */
export function describeMessage(m: Message): string {
  const head = `${m.from}->${m.to} ${m.type} t${m.term}`;
  switch (m.type) {
    case 'append': {
      const entries = m.entries.map((e) => `${e.index}/${e.term}`).join(' ');
      return `${head} prev=${m.prevIndex}/${m.prevTerm} [${entries}] c${m.commit}`;
    }
    case 'appendResp':
      return m.reject
        ? `${head} reject ${m.index} hint=${m.hintIndex}/${m.hintTerm}`
        : `${head} ok ${m.index}`;
    case 'heartbeat':
      return `${head} c${m.commit}${m.readSeq > 0 ? ` read${m.readSeq}` : ''}`;
    case 'heartbeatResp':
      return m.readSeq > 0 ? `${head} read${m.readSeq}` : head;
    case 'vote':
    case 'preVote':
      return `${head} last=${m.lastIndex}/${m.lastTerm}${m.transfer ? ' transfer' : ''}`;
    case 'voteResp':
    case 'preVoteResp':
      return `${head} ${m.reject ? 'reject' : 'grant'}`;
    case 'snapshot':
      return `${head} snap=${m.meta.index}/${m.meta.term} bytes=${m.offset}+${m.length}/${m.sizeBytes}${m.done ? ' done' : ''}`;
    case 'snapshotResp':
      return `${head} snap=${m.snapshotIndex}/${m.snapshotTerm} next=${m.nextOffset}${m.reject ? ' reject' : ''}`;
    case 'timeoutNow':
      return head;
  }
}
