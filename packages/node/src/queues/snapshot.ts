/**
 * Snapshots of the queue state machine as a stream of bounded chunks, restore from such a
 * stream, and a digest of the logical state.
 *
 * Consistency: `captureSnapshot` copies, synchronously and in one pass, everything about the state
 * that can still change (each message's state, deadline, delivery counts and consumer; queue
 * counters; the live dedup keys) into flat arrays, and keeps references to what never changes
 * (bodies, headers, options objects, which are replaced rather than mutated). The chunks are then
 * encoded lazily from that copy, so the driver may pull them across event-loop turns while applies
 * go on. The copy costs about 60 bytes per message for as long as the snapshot is being read.
 *
 * Format: a chunk is a concatenation of msgpack items, each a list whose first element is its kind:
 *   [0, 'flotilla-queues', version, timeMs, lastDeliveryId, queueCount]   once, first
 *   [1, name, options, counters, nextSeq, messageCount, keyCount]         per queue, by name
 *   [2, seq, state, body, headers, group, priority, publishedAtMs,
 *       expireAtMs, dueMs, deliveryCount, failures, deliveryId, consumerId, deadLetter, format?]
 *   [3, key, seq, atMs]                                                   live dedup keys, oldest first
 *   [4, queueCount]                                                       once, last
 * The encoding is canonical (same state, same bytes), which is what makes it the input of
 * `digest()`: a hash over the snapshot stream is a hash over the logical state, independent of
 * heap layouts or insertion histories. The bytes are written with the wire protocol's msgpack
 * writer, strings in the `strPresized` form snapshots have had from the start, so the bytes and
 * digests of a state stay what they were; the reader is the wire protocol's too.
 */
import {
  FlotillaError,
  MsgpackReader,
  MsgpackWriter,
  type QueueOptions,
  truncatedInputBytes,
} from '@flotilla/shared';
import { readHeaders, readOptions, writeHeaders, writeOptions } from './commands.js';
import { DEFAULT_SNAPSHOT_CHUNK_BYTES } from './limits.js';
import { queueOptionsProblem } from './options.js';
import { type DedupEntry, newCounters, type QueueState } from './queue.js';
import { MessageRecord, MessageState } from './record.js';
import { QueueStateMachine } from './state-machine.js';
import { isShapeProblem, Tuple, writeOptStr } from './tuple.js';
import type { DeadLetterInfo, DeadLetterReason, QueueCounters } from './types.js';

const MAGIC = 'flotilla-queues';
const FORMAT_VERSION = 1;
const Kind = { header: 0, queue: 1, message: 2, key: 3, end: 4 } as const;
/** Mutable numbers copied per message: state, dueMs, deliveryCount, failures, deliveryId. */
const NUMS_PER_MESSAGE = 5;
const COUNTER_NAMES = Object.keys(newCounters()) as (keyof QueueCounters)[];
const REASONS: readonly DeadLetterReason[] = ['max-deliveries', 'expired', 'overflow', 'rejected'];

export class SnapshotFormatError extends Error {
  constructor(message: string) {
    super(`invalid queue snapshot: ${message}`);
    this.name = 'SnapshotFormatError';
  }
}

interface CapturedQueue {
  name: string;
  options: QueueOptions;
  counters: QueueCounters;
  nextSeq: number;
  records: MessageRecord[];
  nums: Float64Array;
  consumers: (string | null)[];
  keys: DedupEntry[];
}

interface Captured {
  timeMs: number;
  lastDeliveryId: number;
  queues: CapturedQueue[];
}

function captureQueue(q: QueueState): CapturedQueue {
  const records = [...q.messages.values()];
  const nums = new Float64Array(records.length * NUMS_PER_MESSAGE);
  const consumers: (string | null)[] = new Array(records.length);
  for (let i = 0; i < records.length; i++) {
    const rec = records[i] as MessageRecord;
    const at = i * NUMS_PER_MESSAGE;
    nums[at] = rec.state;
    // A ready message's dueMs is a leftover of its last lease or delay: not part of the state.
    nums[at + 1] = rec.state === MessageState.Ready ? 0 : rec.dueMs;
    nums[at + 2] = rec.deliveryCount;
    nums[at + 3] = rec.failures;
    nums[at + 4] = rec.deliveryId;
    consumers[i] = rec.consumerId;
  }
  return {
    name: q.name,
    options: q.options,
    counters: { ...q.counters },
    nextSeq: q.nextSeq,
    records,
    nums,
    consumers,
    keys: [...q.liveKeys()],
  };
}

/** A snapshot being read: iterate it, or pull chunks with `nextChunk()` (null when done). */
export class QueueSnapshot implements Iterable<Uint8Array> {
  private readonly chunks: Iterator<Uint8Array>;

  constructor(captured: Captured, chunkBytes: number) {
    this.chunks = encodeChunks(captured, chunkBytes);
  }

  nextChunk(): Uint8Array | null {
    const next = this.chunks.next();
    return next.done ? null : next.value;
  }

  [Symbol.iterator](): Iterator<Uint8Array> {
    return this.chunks;
  }
}

export function captureSnapshot(
  machine: QueueStateMachine,
  chunkBytes = DEFAULT_SNAPSHOT_CHUNK_BYTES,
): QueueSnapshot {
  const captured: Captured = {
    timeMs: machine.timeMs,
    lastDeliveryId: machine.deliveryIdHigh,
    queues: machine.queuesByName().map(captureQueue),
  };
  return new QueueSnapshot(captured, chunkBytes);
}

function* encodeChunks(captured: Captured, chunkBytes: number): Generator<Uint8Array> {
  const w = new MsgpackWriter(Math.min(chunkBytes, 1 << 20) + 1024);
  const { queues } = captured;
  w.arrayHeader(6);
  w.number(Kind.header);
  w.strPresized(MAGIC);
  w.number(FORMAT_VERSION);
  w.number(captured.timeMs);
  w.number(captured.lastDeliveryId);
  w.number(queues.length);
  for (const q of queues) {
    writeQueueItem(w, q);
    for (let i = 0; i < q.records.length; i++) {
      writeMessageItem(w, q, i);
      if (w.length >= chunkBytes) yield w.finish();
    }
    for (const key of q.keys) {
      w.arrayHeader(4);
      w.number(Kind.key);
      w.strPresized(key.key);
      w.number(key.seq);
      w.number(key.atMs);
      if (w.length >= chunkBytes) yield w.finish();
    }
  }
  w.arrayHeader(2);
  w.number(Kind.end);
  w.number(queues.length);
  yield w.finish();
}

function writeQueueItem(w: MsgpackWriter, q: CapturedQueue): void {
  w.arrayHeader(7);
  w.number(Kind.queue);
  w.strPresized(q.name);
  writeOptions(w, q.options);
  w.arrayHeader(COUNTER_NAMES.length);
  for (const name of COUNTER_NAMES) w.number(q.counters[name]);
  w.number(q.nextSeq);
  w.number(q.records.length);
  w.number(q.keys.length);
}

function writeMessageItem(w: MsgpackWriter, q: CapturedQueue, i: number): void {
  const rec = q.records[i] as MessageRecord;
  const at = i * NUMS_PER_MESSAGE;
  // The format tag is a trailing 16th field, written only when not 0, so snapshots of states
  // without formats keep their bytes (and digests) and older readers still understand them.
  w.arrayHeader(rec.format === 0 ? 15 : 16);
  w.number(Kind.message);
  w.number(rec.seq);
  w.number(q.nums[at] as number);
  w.bin(rec.body);
  writeHeaders(w, rec.headers);
  writeOptStr(w, rec.group);
  w.number(rec.priority);
  w.number(rec.publishedAtMs);
  w.number(rec.expireAtMs);
  w.number(q.nums[at + 1] as number);
  w.number(q.nums[at + 2] as number);
  w.number(q.nums[at + 3] as number);
  w.number(q.nums[at + 4] as number);
  writeOptStr(w, q.consumers[i] ?? null);
  const dl = rec.deadLetter;
  if (dl === null) {
    w.nil();
  } else {
    w.arrayHeader(5);
    w.strPresized(dl.queue);
    w.number(dl.seq);
    w.number(dl.deliveryCount);
    w.strPresized(dl.reason);
    w.number(dl.timeMs);
  }
  if (rec.format !== 0) w.number(rec.format);
}

// ---------------------------------------------------------------------------------------------
// Restore

interface PendingMessage {
  rec: MessageRecord;
  state: number;
  dueMs: number;
  consumerId: string | null;
}

interface OpenQueue {
  q: QueueState;
  messagesLeft: number;
  keysLeft: number;
  pending: PendingMessage[];
  lastSeq: number;
}

/**
 * Rebuilds a state machine from snapshot bytes fed in order with `push`, then `finish()`. The
 * pieces may be cut anywhere (storage reads the snapshot file in fixed-size pieces, not at the
 * writer's chunk boundaries): an item cut off at the end of a piece is kept and completed by the
 * next. Bodies are copied out of the pieces, so a surviving message does not pin a whole piece.
 * Anything malformed raises {@link SnapshotFormatError}; the partial state is then discarded.
 */
export class SnapshotLoader {
  private readonly machine = new QueueStateMachine();
  private started = false;
  private ended = false;
  private queuesLeft = 0;
  private lastQueueName: string | null = null;
  private open: OpenQueue | null = null;
  /** Bytes of an item cut off at the end of the pieces pushed so far (copied: callers may reuse theirs). */
  private carry: Uint8Array[] = [];
  private carryBytes = 0;
  /** The cut-off item needs at least this many bytes before decoding it again is worth trying. */
  private carryNeededBytes = 0;

  push(chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return;
    if (this.carryBytes > 0) {
      this.carry.push(chunk.slice());
      this.carryBytes += chunk.byteLength;
      if (this.carryBytes < this.carryNeededBytes) return;
      this.decode(concatBytes(this.carry, this.carryBytes));
    } else {
      this.decode(chunk);
    }
  }

  finish(): QueueStateMachine {
    if (this.carryBytes > 0) bad(`stream ended inside an item (${this.carryBytes} bytes left over)`);
    if (!this.ended) throw new SnapshotFormatError('stream ended before its end marker');
    this.machine.finishRestore();
    return this.machine;
  }

  /**
   * Applies every whole item of `bytes`, and keeps an item the end of `bytes` cuts off for the
   * next piece. Each item is read completely before it changes anything, so a cut-off item is
   * simply read again once the rest of it has arrived.
   */
  private decode(bytes: Uint8Array): void {
    const r = new MsgpackReader(bytes);
    let consumed = 0;
    let neededBytes = 0;
    while (!r.done) {
      try {
        this.item(r);
      } catch (error) {
        const needed = truncatedInputBytes(error);
        if (needed === null) throw asFormatError(error);
        neededBytes = needed - consumed;
        break;
      }
      consumed = r.pos;
    }
    const rest = bytes.subarray(consumed);
    this.carry = rest.byteLength > 0 ? [rest.slice()] : [];
    this.carryBytes = rest.byteLength;
    this.carryNeededBytes = neededBytes;
  }

  private item(r: MsgpackReader): void {
    if (this.ended) bad('item after the end marker');
    const byte = r.peek();
    if (!((byte >= 0x90 && byte <= 0x9f) || byte === 0xdc || byte === 0xdd)) bad('item is not a list');
    const t = Tuple.open(r, 'item');
    const kind = t.left > 0 ? t.num('item kind') : -1;
    if (!this.started && kind !== Kind.header) bad('first item is not the header');
    if (kind === Kind.header) this.header(t);
    else if (kind === Kind.queue) this.queue(readQueueItem(t));
    else if (kind === Kind.message) this.message(readMessageItem(t));
    else if (kind === Kind.key) this.key(readKeyItem(t));
    else if (kind === Kind.end) this.end(count(t, 'queueCount'), t);
    else bad(`unknown item kind ${kind}`);
  }

  private header(t: Tuple): void {
    const magic = t.next('format').any('format', 2);
    const version = t.next('version').any('version', 2);
    const timeMs = count(t, 'timeMs');
    const lastDeliveryId = count(t, 'lastDeliveryId');
    const queueCount = count(t, 'queueCount');
    t.end();
    if (this.started) bad('second header');
    if (magic !== MAGIC || version !== FORMAT_VERSION)
      bad(`unknown format ${String(magic)} v${String(version)}`);
    this.machine.restoreClock(timeMs, lastDeliveryId);
    this.queuesLeft = queueCount;
    this.started = true;
  }

  private queue(item: QueueItem): void {
    this.closeQueue();
    if (this.queuesLeft === 0) bad('more queues than announced');
    const { name, options } = item;
    if (this.lastQueueName !== null && name <= this.lastQueueName) bad(`queue ${name} out of order`);
    const problem = queueOptionsProblem(options, name);
    if (problem !== null) bad(`queue ${name}: ${problem}`);
    const q = this.machine.restoreQueue(name, options);
    q.counters = item.counters;
    q.nextSeq = item.nextSeq;
    this.open = { q, messagesLeft: item.messageCount, keysLeft: item.keyCount, pending: [], lastSeq: 0 };
    this.lastQueueName = name;
    this.queuesLeft--;
  }

  private message(item: PendingMessage): void {
    const open = this.open;
    if (open === null || open.messagesLeft === 0) bad('message outside its queue');
    const { rec, state, consumerId } = item;
    const seq = rec.seq;
    if (seq <= open.lastSeq || seq >= open.q.nextSeq) bad(`seq ${seq} out of order in ${open.q.name}`);
    if (state > MessageState.InFlight) bad(`seq ${seq}: state ${state}`);
    if ((consumerId !== null) !== (state === MessageState.InFlight))
      bad(`seq ${seq}: consumer does not match state`);
    open.pending.push(item);
    open.lastSeq = seq;
    open.messagesLeft--;
  }

  private key(item: KeyItem): void {
    const open = this.open;
    if (open === null || open.messagesLeft > 0 || open.keysLeft === 0) bad('dedup key outside its queue');
    if (open.q.dedup.has(item.key)) bad(`dedup key ${item.key} twice`);
    open.q.rememberKey(item.key, item.seq, item.atMs);
    open.keysLeft--;
  }

  private end(queueCount: number, t: Tuple): void {
    t.end();
    this.closeQueue();
    if (this.queuesLeft !== 0 || queueCount !== this.machine.queueNames().length) {
      bad('queue count does not match');
    }
    this.ended = true;
  }

  /** Puts the open queue's messages in place: group holds first, so ready ones queue behind them. */
  private closeQueue(): void {
    const open = this.open;
    if (open === null) return;
    if (open.messagesLeft !== 0 || open.keysLeft !== 0) bad(`queue ${open.q.name} is incomplete`);
    const q = open.q;
    for (const { rec, state } of open.pending) {
      const holds = state === MessageState.InFlight || state === MessageState.Retrying;
      if (holds && rec.group !== null && !q.restoreGroupHold(rec))
        bad(`group ${rec.group} has two busy messages`);
    }
    for (const { rec, state, dueMs, consumerId } of open.pending) {
      q.store(rec);
      if (state === MessageState.Ready) q.enterReady(rec);
      else if (state === MessageState.InFlight) q.enterInFlight(rec, consumerId as string, dueMs);
      else q.enterDelayed(rec, dueMs, state === MessageState.Retrying);
    }
    this.open = null;
  }
}

interface QueueItem {
  name: string;
  options: QueueOptions;
  counters: QueueCounters;
  nextSeq: number;
  messageCount: number;
  keyCount: number;
}

interface KeyItem {
  key: string;
  seq: number;
  atMs: number;
}

function readQueueItem(t: Tuple): QueueItem {
  const item: QueueItem = {
    name: t.str('queue name'),
    options: readOptions(t.list('options')),
    counters: readCounters(t.list('counters')),
    nextSeq: count(t, 'nextSeq'),
    messageCount: count(t, 'messageCount'),
    keyCount: count(t, 'keyCount'),
  };
  t.end();
  return item;
}

/** A message item, read whole: the record (body copied out of the piece) and where it goes. */
function readMessageItem(t: Tuple): PendingMessage {
  const seq = count(t, 'seq');
  const state = count(t, 'state');
  const body = t.next('body').peek();
  if (body < 0xc4 || body > 0xc6) bad(`seq ${seq}: body is not bytes`);
  const bytes = t.r.bin('body').slice();
  const headers = readHeaders(t);
  const group = t.optStr('group');
  const priority = count(t, 'priority');
  const publishedAtMs = count(t, 'publishedAtMs');
  const expireAtMs = count(t, 'expireAtMs');
  const dueMs = count(t, 'dueMs');
  const deliveryCount = count(t, 'deliveryCount');
  const failures = count(t, 'failures');
  const deliveryId = count(t, 'deliveryId');
  const consumerId = t.optStr('consumerId');
  const deadLetter = readDeadLetter(t);
  const format = t.left > 0 ? count(t, 'format') : 0;
  t.end();
  const rec = new MessageRecord(
    seq,
    bytes,
    headers,
    group,
    priority,
    publishedAtMs,
    expireAtMs,
    deadLetter,
    format,
  );
  rec.deliveryCount = deliveryCount;
  rec.failures = failures;
  rec.deliveryId = deliveryId;
  return { rec, state, dueMs, consumerId };
}

function readKeyItem(t: Tuple): KeyItem {
  const item = { key: t.str('key'), seq: count(t, 'key seq'), atMs: count(t, 'key time') };
  t.end();
  return item;
}

function readCounters(t: Tuple): QueueCounters {
  if (t.length !== COUNTER_NAMES.length) bad('counters malformed');
  const counters = newCounters();
  for (const name of COUNTER_NAMES) counters[name] = count(t, name);
  return counters;
}

function readDeadLetter(t: Tuple): DeadLetterInfo | null {
  if (!t.present()) return null;
  const f = Tuple.open(t.r, 'dead-letter info');
  if (f.length !== 5) bad('dead-letter info malformed');
  const queue = f.str('dead-letter queue');
  const seq = count(f, 'dead-letter seq');
  const deliveryCount = count(f, 'dead-letter deliveryCount');
  const reason = f.str('dead-letter reason') as DeadLetterReason;
  if (!REASONS.includes(reason)) bad(`dead-letter reason ${reason}`);
  return { queue, seq, deliveryCount, reason, timeMs: count(f, 'dead-letter time') };
}

function bad(message: string): never {
  throw new SnapshotFormatError(message);
}

/** A failure while reading an item as a snapshot format error (shape problems and broken msgpack alike). */
function asFormatError(error: unknown): unknown {
  if (isShapeProblem(error) || error instanceof FlotillaError) return new SnapshotFormatError(error.message);
  return error;
}

/** The next field as a count: a non-negative safe integer. */
function count(t: Tuple, field: string): number {
  const value = t.num(field);
  if (!Number.isSafeInteger(value) || value < 0) bad(`${field} is not a count`);
  return value;
}

/** Rebuilds a state machine from a complete chunk sequence. */
export function restoreSnapshot(chunks: Iterable<Uint8Array>): QueueStateMachine {
  const loader = new SnapshotLoader();
  for (const chunk of chunks) loader.push(chunk);
  return loader.finish();
}

// ---------------------------------------------------------------------------------------------
// Digest

/** What `digest` feeds; node's `crypto.createHash('sha256')` fits. */
export interface Hasher {
  update(data: Uint8Array): unknown;
  digest(encoding: 'hex'): string;
}

/** 64-bit FNV-1a in pure JS: enough to tell replicas apart, no dependencies. Not a security hash. */
export class Fnv1a64 implements Hasher {
  private hi = 0xcbf29ce4;
  private lo = 0x84222325;

  update(data: Uint8Array): this {
    let { hi, lo } = this;
    for (let i = 0; i < data.length; i++) {
      lo = (lo ^ (data[i] as number)) >>> 0;
      // (hi, lo) * 0x100000001b3 mod 2^64, split so every partial product stays exact in a double.
      const loProduct = lo * 0x1b3;
      const carry = Math.floor(loProduct / 0x1_0000_0000);
      hi = (hi * 0x1b3 + lo * 0x100 + carry) >>> 0;
      lo = loProduct >>> 0;
    }
    this.hi = hi;
    this.lo = lo;
    return this;
  }

  digest(_encoding: 'hex'): string {
    return this.hi.toString(16).padStart(8, '0') + this.lo.toString(16).padStart(8, '0');
  }
}

export function digestState(machine: QueueStateMachine, hasher: Hasher = new Fnv1a64()): string {
  for (const chunk of captureSnapshot(machine)) hasher.update(chunk);
  return hasher.digest('hex');
}

/** One buffer holding `pieces` in order (`totalBytes` long). */
function concatBytes(pieces: readonly Uint8Array[], totalBytes: number): Uint8Array {
  const out = new Uint8Array(totalBytes);
  let at = 0;
  for (const piece of pieces) {
    out.set(piece, at);
    at += piece.byteLength;
  }
  return out;
}
