/**
 * The state of one queue and the moves of its messages between states. Every index is kept exact
 * (no tombstones), so counts are true at all times and every timer heap costs O(log n) per change:
 *
 * - `order`: what a deliver takes next, highest priority first then lowest seq. It holds every
 *   ready message without a group, plus the lowest-seq ready message of each group that has no
 *   message in flight or retrying (the group's `head`).
 * - per group, `waiting`: the group's other ready messages, by seq.
 * - `delayed` (publish delays and retry backoffs) and `leases`, both by `dueMs`; `ttl` by expiry
 *   (ready and delayed messages; a leased message does not expire until its lease ends).
 * - `oldest`: every ready message by seq, for drop-oldest and the oldest-age statistic.
 *
 * Cross-queue work (dead-lettering, consumer index across queues) is the state machine's.
 */
import type { QueueOptions } from '@flotilla/shared';
import { type HeapSlot, IndexedHeap } from './heap.js';
import { MessageRecord, MessageState } from './record.js';
import type { QueueCounters } from './types.js';

/** The state machine's hooks: told when a queue gains deliverable work or its deadlines change. */
export interface QueueObserver {
  gainedDeliverable(queue: QueueState): void;
  deadlinesChanged(queue: QueueState): void;
  /** `consumerId` took its first lease in this queue. */
  consumerJoined(queue: QueueState, consumerId: string): void;
  /** `consumerId` no longer holds any lease in this queue. */
  consumerLeft(queue: QueueState, consumerId: string): void;
}

/** A message group: at most one of its messages is in flight or retrying (`busy`) at a time. */
export class MessageGroup {
  /** The group's ready message in `order`, or null (busy, or nothing ready). */
  head: MessageRecord | null = null;
  busy: MessageRecord | null = null;
  readonly waiting = new IndexedHeap<MessageRecord>(BY_SEQ);

  constructor(readonly name: string) {}

  get empty(): boolean {
    return this.head === null && this.busy === null && this.waiting.size === 0;
  }
}

/** An idempotency key remembered until `atMs + dedupWindowMs`. */
export interface DedupEntry {
  readonly key: string;
  readonly seq: number;
  readonly atMs: number;
}

const BY_SEQ: HeapSlot<MessageRecord> = {
  less: (a, b) => a.seq < b.seq,
  getPos: (r) => r.pos,
  setPos: (r, p) => {
    r.pos = p;
  },
};
const BY_DELIVERY_ORDER: HeapSlot<MessageRecord> = {
  less: (a, b) => a.priority > b.priority || (a.priority === b.priority && a.seq < b.seq),
  getPos: (r) => r.pos,
  setPos: (r, p) => {
    r.pos = p;
  },
};
const BY_DUE: HeapSlot<MessageRecord> = {
  less: (a, b) => a.dueMs < b.dueMs || (a.dueMs === b.dueMs && a.seq < b.seq),
  getPos: (r) => r.pos,
  setPos: (r, p) => {
    r.pos = p;
  },
};
const BY_EXPIRY: HeapSlot<MessageRecord> = {
  less: (a, b) => a.expireAtMs < b.expireAtMs || (a.expireAtMs === b.expireAtMs && a.seq < b.seq),
  getPos: (r) => r.ttlPos,
  setPos: (r, p) => {
    r.ttlPos = p;
  },
};
const BY_AGE: HeapSlot<MessageRecord> = {
  less: (a, b) => a.seq < b.seq,
  getPos: (r) => r.agePos,
  setPos: (r, p) => {
    r.agePos = p;
  },
};

export function newCounters(): QueueCounters {
  return {
    published: 0,
    duplicates: 0,
    rejected: 0,
    delivered: 0,
    acked: 0,
    nacked: 0,
    leasesExpired: 0,
    deadLettered: 0,
    expired: 0,
    dropped: 0,
    purged: 0,
    redriven: 0,
  };
}

function invariant(condition: boolean, message: () => string): asserts condition {
  if (!condition) throw new Error(`queue invariant violated: ${message()}`);
}

function originKey(queue: string, seq: number): string {
  return `${queue}\u0000${seq}`;
}

export class QueueState {
  /** Replaced (never mutated) on update, so a snapshot may hold on to the old object. */
  options: QueueOptions;
  /** Seq the next stored message gets; seqs start at 1 and are never reused. */
  nextSeq = 1;
  counters: QueueCounters = newCounters();
  /** Set once deleteQueue has run; stale references check it. */
  deleted = false;

  /** Every held message by seq; insertion order is seq order. */
  readonly messages = new Map<number, MessageRecord>();
  readonly order = new IndexedHeap<MessageRecord>(BY_DELIVERY_ORDER);
  readonly groups = new Map<string, MessageGroup>();
  readonly delayed = new IndexedHeap<MessageRecord>(BY_DUE);
  readonly leases = new IndexedHeap<MessageRecord>(BY_DUE);
  readonly ttl = new IndexedHeap<MessageRecord>(BY_EXPIRY);
  readonly oldest = new IndexedHeap<MessageRecord>(BY_AGE);
  /** In-flight messages per consumer id. */
  readonly leasesByConsumer = new Map<string, Set<MessageRecord>>();
  /**
   * Messages dead-lettered into this queue, by origin (`queue` NUL `seq`) → their seq here: lets a
   * late ack of the original delivery learn that the message moved (see the state machine's `ack`).
   * Derived from the records' dead-letter history as they are stored, so never snapshotted.
   */
  private readonly byOrigin = new Map<string, number>();

  /** Idempotency keys: lookup by key, expiry in insertion (= time) order from `dedupHead`. */
  readonly dedup = new Map<string, DedupEntry>();
  dedupFifo: DedupEntry[] = [];
  dedupHead = 0;

  readyCount = 0;
  readyBytes = 0;
  delayedCount = 0;
  inFlightCount = 0;
  bytes = 0;

  /** Positions and keys in the state machine's per-queue deadline heaps. */
  timerPos = -1;
  timerKeyMs = Number.POSITIVE_INFINITY;
  dedupTimerPos = -1;
  dedupKeyMs = Number.POSITIVE_INFINITY;
  /** Already reported to the observer since its last flush. */
  deadlinesDirty = false;

  constructor(
    readonly name: string,
    options: QueueOptions,
    private readonly observer: QueueObserver,
  ) {
    this.options = options;
  }

  get size(): number {
    return this.messages.size;
  }

  // -------------------------------------------------------------------------------------------
  // Storing and discarding

  /** Adds a new record (state Detached) to the queue's books; the caller then puts it in a state. */
  store(rec: MessageRecord): void {
    invariant(!this.messages.has(rec.seq), () => `${this.name}: seq ${rec.seq} stored twice`);
    this.messages.set(rec.seq, rec);
    this.bytes += rec.sizeBytes;
    if (rec.deadLetter !== null)
      this.byOrigin.set(originKey(rec.deadLetter.queue, rec.deadLetter.seq), rec.seq);
  }

  /** Seq of the message dead-lettered here from `queue`'s `seq`, while it is still held. */
  deadLetteredFrom(queue: string, seq: number): number | undefined {
    return this.byOrigin.get(originKey(queue, seq));
  }

  /** Removes a detached record for good. */
  discard(rec: MessageRecord): void {
    invariant(
      rec.state === MessageState.Detached,
      () => `${this.name}: discard of seq ${rec.seq} in ${rec.state}`,
    );
    this.dropGroupHold(rec);
    if (rec.deadLetter !== null) {
      const key = originKey(rec.deadLetter.queue, rec.deadLetter.seq);
      if (this.byOrigin.get(key) === rec.seq) this.byOrigin.delete(key);
    }
    this.messages.delete(rec.seq);
    this.bytes -= rec.sizeBytes;
    rec.state = MessageState.Gone;
  }

  /** Takes a record out of whatever state it is in (it stays stored). */
  detach(rec: MessageRecord): void {
    switch (rec.state) {
      case MessageState.Ready:
        this.leaveReady(rec);
        break;
      case MessageState.Delayed:
      case MessageState.Retrying:
        this.leaveDelayed(rec);
        break;
      case MessageState.InFlight:
        this.leaveInFlight(rec);
        break;
      default:
        invariant(false, () => `${this.name}: detach of seq ${rec.seq} in state ${rec.state}`);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Ready

  /** Makes a detached record ready; if it held its group, the group is free again. */
  enterReady(rec: MessageRecord): void {
    invariant(
      rec.state === MessageState.Detached,
      () => `${this.name}: ready of seq ${rec.seq} in ${rec.state}`,
    );
    this.dropGroupHold(rec);
    rec.state = MessageState.Ready;
    this.readyCount++;
    this.readyBytes += rec.sizeBytes;
    this.oldest.push(rec);
    if (rec.expireAtMs > 0) this.pushTtl(rec);
    if (rec.group === null) this.pushOrder(rec);
    else this.groupInsert(rec);
  }

  private leaveReady(rec: MessageRecord): void {
    if (rec.group === null) this.order.remove(rec);
    else this.groupRemove(rec);
    this.oldest.remove(rec);
    if (this.ttl.remove(rec)) this.deadlinesChanged();
    this.readyCount--;
    this.readyBytes -= rec.sizeBytes;
    rec.state = MessageState.Detached;
  }

  /** Next message in delivery order, taken out of ready (its group, if any, becomes busy with it). */
  takeNext(): MessageRecord | undefined {
    const rec = this.order.peek();
    if (rec === undefined) return undefined;
    if (rec.group !== null) {
      // Busy before leaving ready, so that the group does not promote its next message.
      const group = this.groupOf(rec);
      invariant(group.busy === null, () => `${this.name}: group ${group.name} head ${rec.seq} while busy`);
      group.busy = rec;
    }
    this.leaveReady(rec);
    return rec;
  }

  // -------------------------------------------------------------------------------------------
  // Delayed and retrying

  /** Parks a detached record until `dueMs`; a retrying record keeps (or takes) its group's hold. */
  enterDelayed(rec: MessageRecord, dueMs: number, retrying: boolean): void {
    invariant(
      rec.state === MessageState.Detached,
      () => `${this.name}: delay of seq ${rec.seq} in ${rec.state}`,
    );
    if (!retrying) this.dropGroupHold(rec);
    rec.state = retrying ? MessageState.Retrying : MessageState.Delayed;
    rec.dueMs = dueMs;
    this.delayedCount++;
    this.delayed.push(rec);
    if (rec.expireAtMs > 0) this.pushTtl(rec);
    this.deadlinesChanged();
  }

  private leaveDelayed(rec: MessageRecord): void {
    this.delayed.remove(rec);
    this.ttl.remove(rec);
    this.delayedCount--;
    rec.state = MessageState.Detached;
    this.deadlinesChanged();
  }

  // -------------------------------------------------------------------------------------------
  // In flight

  enterInFlight(rec: MessageRecord, consumerId: string, deadlineMs: number): void {
    invariant(
      rec.state === MessageState.Detached,
      () => `${this.name}: lease of seq ${rec.seq} in ${rec.state}`,
    );
    rec.state = MessageState.InFlight;
    rec.consumerId = consumerId;
    rec.dueMs = deadlineMs;
    this.inFlightCount++;
    this.leases.push(rec);
    let held = this.leasesByConsumer.get(consumerId);
    if (held === undefined) {
      held = new Set();
      this.leasesByConsumer.set(consumerId, held);
      this.observer.consumerJoined(this, consumerId);
    }
    held.add(rec);
    this.deadlinesChanged();
  }

  /** Leaves the group hold in place: the caller decides whether the message retries (keeps it) or not. */
  private leaveInFlight(rec: MessageRecord): void {
    this.leases.remove(rec);
    const consumerId = rec.consumerId as string;
    const held = this.leasesByConsumer.get(consumerId);
    invariant(
      held?.delete(rec) === true,
      () => `${this.name}: seq ${rec.seq} missing from ${consumerId}'s leases`,
    );
    if (held.size === 0) {
      this.leasesByConsumer.delete(consumerId);
      this.observer.consumerLeft(this, consumerId);
    }
    rec.consumerId = null;
    this.inFlightCount--;
    rec.state = MessageState.Detached;
    this.deadlinesChanged();
  }

  /** Moves an in-flight record's deadline. */
  extendLease(rec: MessageRecord, deadlineMs: number): void {
    rec.dueMs = deadlineMs;
    this.leases.update(rec);
    this.deadlinesChanged();
  }

  // -------------------------------------------------------------------------------------------
  // Groups

  private groupOf(rec: MessageRecord): MessageGroup {
    const group = this.groups.get(rec.group as string);
    invariant(group !== undefined, () => `${this.name}: no group ${rec.group} for seq ${rec.seq}`);
    return group;
  }

  private groupInsert(rec: MessageRecord): void {
    const name = rec.group as string;
    let group = this.groups.get(name);
    if (group === undefined) {
      group = new MessageGroup(name);
      this.groups.set(name, group);
    }
    const head = group.head;
    if (head !== null && rec.seq < head.seq) {
      // An older message became ready (a delay ended): it goes first, the head steps back.
      this.order.remove(head);
      group.waiting.push(head);
      group.head = null;
    }
    group.waiting.push(rec);
    this.promote(group);
  }

  private groupRemove(rec: MessageRecord): void {
    const group = this.groupOf(rec);
    if (group.head === rec) {
      this.order.remove(rec);
      group.head = null;
    } else {
      invariant(group.waiting.remove(rec), () => `${this.name}: seq ${rec.seq} not in group ${group.name}`);
    }
    this.promote(group);
    if (group.empty) this.groups.delete(group.name);
  }

  /**
   * Restore only: makes `rec` (in flight or retrying) its group's busy message, before any of the
   * group's ready messages are added. False when the group already has one (a corrupt snapshot).
   */
  restoreGroupHold(rec: MessageRecord): boolean {
    const name = rec.group as string;
    let group = this.groups.get(name);
    if (group === undefined) {
      group = new MessageGroup(name);
      this.groups.set(name, group);
    }
    if (group.busy !== null) return false;
    group.busy = rec;
    return true;
  }

  /** Frees the record's group if the record was holding it (in flight or retrying). */
  private dropGroupHold(rec: MessageRecord): void {
    if (rec.group === null) return;
    const group = this.groups.get(rec.group);
    if (group === undefined || group.busy !== rec) return;
    group.busy = null;
    this.promote(group);
    if (group.empty) this.groups.delete(group.name);
  }

  /** Puts the group's lowest-seq ready message into the delivery order when the group is free. */
  private promote(group: MessageGroup): void {
    if (group.busy !== null || group.head !== null) return;
    const next = group.waiting.pop();
    if (next === undefined) return;
    group.head = next;
    this.pushOrder(next);
  }

  private pushOrder(rec: MessageRecord): void {
    this.order.push(rec);
    this.observer.gainedDeliverable(this);
  }

  // -------------------------------------------------------------------------------------------
  // Deadlines

  private pushTtl(rec: MessageRecord): void {
    this.ttl.push(rec);
    this.deadlinesChanged();
  }

  private deadlinesChanged(): void {
    if (this.deadlinesDirty) return;
    this.deadlinesDirty = true;
    this.observer.deadlinesChanged(this);
  }

  /** Earliest delay end, lease deadline or expiry; +Infinity when none. */
  nextDueMs(): number {
    let due = Number.POSITIVE_INFINITY;
    const delayed = this.delayed.peek();
    if (delayed !== undefined) due = delayed.dueMs;
    const lease = this.leases.peek();
    if (lease !== undefined && lease.dueMs < due) due = lease.dueMs;
    const ttl = this.ttl.peek();
    if (ttl !== undefined && ttl.expireAtMs < due) due = ttl.expireAtMs;
    return due;
  }

  // -------------------------------------------------------------------------------------------
  // Idempotency keys

  findDuplicate(key: string): DedupEntry | undefined {
    return this.dedup.get(key);
  }

  rememberKey(key: string, seq: number, atMs: number): void {
    const entry: DedupEntry = { key, seq, atMs };
    this.dedup.set(key, entry);
    this.dedupFifo.push(entry);
    this.deadlinesChanged();
  }

  /** Forgets keys older than the window; entries are in time order, so this costs O(keys dropped). */
  pruneKeys(nowMs: number): void {
    const windowMs = this.options.dedupWindowMs;
    const fifo = this.dedupFifo;
    let head = this.dedupHead;
    while (head < fifo.length) {
      const entry = fifo[head] as DedupEntry;
      if (entry.atMs + windowMs > nowMs) break;
      if (this.dedup.get(entry.key) === entry) this.dedup.delete(entry.key);
      head++;
    }
    if (head === this.dedupHead) return;
    // Compact once the dead prefix dominates, so the array does not grow without end.
    if (head > 1024 && head * 2 > fifo.length) {
      this.dedupFifo = fifo.slice(head);
      head = 0;
    }
    this.dedupHead = head;
    this.deadlinesChanged();
  }

  /** When the oldest remembered key expires; +Infinity when none. */
  nextKeyExpiryMs(): number {
    const entry = this.dedupFifo[this.dedupHead];
    return entry === undefined ? Number.POSITIVE_INFINITY : entry.atMs + this.options.dedupWindowMs;
  }

  /** Keys still remembered, oldest first. */
  *liveKeys(): Generator<DedupEntry> {
    for (let i = this.dedupHead; i < this.dedupFifo.length; i++) {
      const entry = this.dedupFifo[i] as DedupEntry;
      if (this.dedup.get(entry.key) === entry) yield entry;
    }
  }

  newRecordSeq(): number {
    return this.nextSeq++;
  }
}

export { MessageRecord };
