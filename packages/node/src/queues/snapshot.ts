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
 * heap layouts or insertion histories.
 */
import type { QueueOptions } from '@flotilla/shared';
import { CodecError, type Decoded, decodeWhole, MsgWriter, type PartialDecode } from './codec.js';
import { readHeaders, readOptions, writeHeaders, writeOptions } from './commands.js';
import { DEFAULT_SNAPSHOT_CHUNK_BYTES } from './limits.js';
import { queueOptionsProblem } from './options.js';
import { type DedupEntry, newCounters, type QueueState } from './queue.js';
import { MessageRecord, MessageState } from './record.js';
import { QueueStateMachine } from './state-machine.js';
import type { DeadLetterInfo, DeadLetterReason, QueueCounters } from './types.js';

const MAGIC = 'flotilla-queues';
const FORMAT_VERSION = 1;
const Kind = { header: 0, queue: 1, message: 2, key: 3, end: 4 } as const;
/** Mutable numbers copied per message: state, dueMs, deliveryCount, failures, deliveryId. */
const NUMS_PER_MESSAGE = 5;
const COUNTER_NAMES = Object.keys(newCounters()) as (keyof QueueCounters)[];
const REASONS: readonly DeadLetterReason[] = ['max-deliveries', 'expired', 'overflow'];

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
  const w = new MsgWriter(Math.min(chunkBytes, 1 << 20) + 1024);
  const { queues } = captured;
  w.array(6);
  w.number(Kind.header);
  w.str(MAGIC);
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
      w.array(4);
      w.number(Kind.key);
      w.str(key.key);
      w.number(key.seq);
      w.number(key.atMs);
      if (w.length >= chunkBytes) yield w.finish();
    }
  }
  w.array(2);
  w.number(Kind.end);
  w.number(queues.length);
  yield w.finish();
}

function writeQueueItem(w: MsgWriter, q: CapturedQueue): void {
  w.array(7);
  w.number(Kind.queue);
  w.str(q.name);
  writeOptions(w, q.options);
  w.array(COUNTER_NAMES.length);
  for (const name of COUNTER_NAMES) w.number(q.counters[name]);
  w.number(q.nextSeq);
  w.number(q.records.length);
  w.number(q.keys.length);
}

function writeMessageItem(w: MsgWriter, q: CapturedQueue, i: number): void {
  const rec = q.records[i] as MessageRecord;
  const at = i * NUMS_PER_MESSAGE;
  // The format tag is a trailing 16th field, written only when not 0, so snapshots of states
  // without formats keep their bytes (and digests) and older readers still understand them.
  w.array(rec.format === 0 ? 15 : 16);
  w.number(Kind.message);
  w.number(rec.seq);
  w.number(q.nums[at] as number);
  w.bin(rec.body);
  writeHeaders(w, rec.headers);
  w.optStr(rec.group);
  w.number(rec.priority);
  w.number(rec.publishedAtMs);
  w.number(rec.expireAtMs);
  w.number(q.nums[at + 1] as number);
  w.number(q.nums[at + 2] as number);
  w.number(q.nums[at + 3] as number);
  w.number(q.nums[at + 4] as number);
  w.optStr(q.consumers[i] ?? null);
  const dl = rec.deadLetter;
  if (dl === null) {
    w.nil();
  } else {
    w.array(5);
    w.str(dl.queue);
    w.number(dl.seq);
    w.number(dl.deliveryCount);
    w.str(dl.reason);
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

  private decode(bytes: Uint8Array): void {
    let partial: PartialDecode;
    try {
      partial = decodeWhole(bytes, (item) => this.item(item));
    } catch (error) {
      if (error instanceof CodecError) throw new SnapshotFormatError(error.message);
      throw error;
    }
    const rest = bytes.subarray(partial.consumedBytes);
    this.carry = rest.byteLength > 0 ? [rest.slice()] : [];
    this.carryBytes = rest.byteLength;
    this.carryNeededBytes = partial.neededBytes;
  }

  private item(value: Decoded): void {
    if (!Array.isArray(value)) bad('item is not a list');
    if (this.ended) bad('item after the end marker');
    const kind = value[0];
    if (!this.started && kind !== Kind.header) bad('first item is not the header');
    if (kind === Kind.header) this.header(value);
    else if (kind === Kind.queue) this.queue(value);
    else if (kind === Kind.message) this.message(value);
    else if (kind === Kind.key) this.key(value);
    else if (kind === Kind.end) this.end(value);
    else bad(`unknown item kind ${String(kind)}`);
  }

  private header(f: Decoded[]): void {
    if (this.started) bad('second header');
    if (f[1] !== MAGIC || f[2] !== FORMAT_VERSION) bad(`unknown format ${String(f[1])} v${String(f[2])}`);
    this.machine.restoreClock(count(f[3], 'timeMs'), count(f[4], 'lastDeliveryId'));
    this.queuesLeft = count(f[5], 'queueCount');
    this.started = true;
  }

  private queue(f: Decoded[]): void {
    this.closeQueue();
    if (this.queuesLeft === 0) bad('more queues than announced');
    const name = text(f[1], 'queue name');
    if (this.lastQueueName !== null && name <= this.lastQueueName) bad(`queue ${name} out of order`);
    const options = guard(() => readOptions(f[2]));
    const problem = queueOptionsProblem(options, name);
    if (problem !== null) bad(`queue ${name}: ${problem}`);
    const q = this.machine.restoreQueue(name, options);
    q.counters = readCounters(f[3]);
    q.nextSeq = count(f[4], 'nextSeq');
    this.open = {
      q,
      messagesLeft: count(f[5], 'messageCount'),
      keysLeft: count(f[6], 'keyCount'),
      pending: [],
      lastSeq: 0,
    };
    this.lastQueueName = name;
    this.queuesLeft--;
  }

  private message(f: Decoded[]): void {
    const open = this.open;
    if (open === null || open.messagesLeft === 0) bad('message outside its queue');
    const seq = count(f[1], 'seq');
    if (seq <= open.lastSeq || seq >= open.q.nextSeq) bad(`seq ${seq} out of order in ${open.q.name}`);
    const state = count(f[2], 'state');
    if (state > MessageState.InFlight) bad(`seq ${seq}: state ${state}`);
    const body = f[3];
    if (!(body instanceof Uint8Array)) bad(`seq ${seq}: body is not bytes`);
    const headers = guard(() => readHeaders(f[4]));
    const group = optText(f[5], 'group');
    const rec = new MessageRecord(
      seq,
      body.slice(),
      headers,
      group,
      count(f[6], 'priority'),
      count(f[7], 'publishedAtMs'),
      count(f[8], 'expireAtMs'),
      readDeadLetter(f[14]),
      f[15] === undefined ? 0 : count(f[15], 'format'),
    );
    rec.deliveryCount = count(f[10], 'deliveryCount');
    rec.failures = count(f[11], 'failures');
    rec.deliveryId = count(f[12], 'deliveryId');
    const consumerId = optText(f[13], 'consumerId');
    if ((consumerId !== null) !== (state === MessageState.InFlight))
      bad(`seq ${seq}: consumer does not match state`);
    open.pending.push({ rec, state, dueMs: count(f[9], 'dueMs'), consumerId });
    open.lastSeq = seq;
    open.messagesLeft--;
  }

  private key(f: Decoded[]): void {
    const open = this.open;
    if (open === null || open.messagesLeft > 0 || open.keysLeft === 0) bad('dedup key outside its queue');
    const key = text(f[1], 'key');
    if (open.q.dedup.has(key)) bad(`dedup key ${key} twice`);
    open.q.rememberKey(key, count(f[2], 'key seq'), count(f[3], 'key time'));
    open.keysLeft--;
  }

  private end(f: Decoded[]): void {
    this.closeQueue();
    if (this.queuesLeft !== 0 || count(f[1], 'queueCount') !== this.machine.queueNames().length) {
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

function readCounters(value: Decoded | undefined): QueueCounters {
  if (!Array.isArray(value) || value.length !== COUNTER_NAMES.length) bad('counters malformed');
  const counters = newCounters();
  COUNTER_NAMES.forEach((name, i) => {
    counters[name] = count(value[i], name);
  });
  return counters;
}

function readDeadLetter(value: Decoded | undefined): DeadLetterInfo | null {
  if (value === null || value === undefined) return null;
  if (!Array.isArray(value) || value.length !== 5) bad('dead-letter info malformed');
  const reason = value[3] as DeadLetterReason;
  if (!REASONS.includes(reason)) bad(`dead-letter reason ${String(reason)}`);
  return {
    queue: text(value[0], 'dead-letter queue'),
    seq: count(value[1], 'dead-letter seq'),
    deliveryCount: count(value[2], 'dead-letter deliveryCount'),
    reason,
    timeMs: count(value[4], 'dead-letter time'),
  };
}

function bad(message: string): never {
  throw new SnapshotFormatError(message);
}

/** Runs a reader from the command codec, turning its shape errors into snapshot errors. */
function guard<T>(read: () => T): T {
  try {
    return read();
  } catch (error) {
    throw new SnapshotFormatError(error instanceof Error ? error.message : String(error));
  }
}

function count(value: Decoded | undefined, field: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) bad(`${field} is not a count`);
  return value;
}

function text(value: Decoded | undefined, field: string): string {
  if (typeof value !== 'string') bad(`${field} is not a string`);
  return value;
}

function optText(value: Decoded | undefined, field: string): string | null {
  return value === null || value === undefined ? null : text(value, field);
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
