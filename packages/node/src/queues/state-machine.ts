/**
 * The replicated queue state machine: every replica applies the same committed entries in the
 * same order and ends in the same state. It is pure and deterministic: no timers, no clock, no
 * randomness, no I/O. Time comes only from the leader's stamp on each entry, and never runs
 * backwards (`time = max(time, entry time)`), so a new leader with a slower clock changes nothing.
 *
 * `applyEntry(meta, commands)` first does the time-based work that is due (lease expiries, delays
 * ending, TTL expiries, dedup keys forgotten), in O(work due) through per-queue deadline heaps and
 * a heap of queues by their next deadline; then applies each command. A command that cannot be
 * applied (its queue was deleted meanwhile, a field out of range) gets an error reply and changes
 * nothing. Replies go back to whoever proposed the command; effects tell the gateway what changed.
 *
 * Deadlines are taken in time order across all queues (ties by queue name; within one queue and
 * one instant: lease expiries, then delay ends, then TTL expiries), but the work is done at the
 * entry's time, so whatever it schedules lies after that time and one apply always terminates.
 *
 * Decisions (see README.md beside this file; relied on by the tests):
 * - Nacks, lease expiries and releases marked `failed` (the consumer's session closed) count toward
 *   maxDeliveries; other releases (leader change) do not. Delivery counts always go up.
 * - An expired lease makes the message ready at once (no backoff); a nack waits for its delay.
 * - Publish limits under `reject`: a publish is all or nothing; if its new messages do not all fit
 *   together, each of them gets QUEUE_FULL and nothing is stored (duplicates still get their
 *   original seq). Under drop-oldest messages are admitted in order; once one does not fit, it and
 *   every later new message get QUEUE_FULL, so what is stored is always a prefix.
 * - purgeQueue drops ready, delayed and retrying messages; in-flight ones stay leased (their ack
 *   works; a nack or expiry brings them back).
 * - A leased message does not expire while leased; when its lease ends after its TTL, it expires then.
 * - Messages evicted from a queue to make room for a dead-lettered arrival are dropped, not
 *   dead-lettered further, so dead-letter chains and cycles cannot cascade.
 */
import type { QueueOptions } from '@flotilla/shared';
import { CommandDecodeError, type DecodedBatch, decodeBatch } from './commands.js';
import { type HeapSlot, IndexedHeap } from './heap.js';
import { MAX_COUNT, MAX_DELIVER_BATCH, MAX_DURATION_MS } from './limits.js';
import {
  copyQueueOptions,
  patchQueueOptions,
  queueOptionsProblem,
  retryDelayMs,
  sameQueueOptions,
} from './options.js';
import { QueueState } from './queue.js';
import { MessageRecord, MessageState, messageSizeBytes } from './record.js';
import {
  captureSnapshot,
  digestState,
  type Hasher,
  type QueueSnapshot,
  restoreSnapshot,
} from './snapshot.js';
import type {
  ApplyMeta,
  ApplyResult,
  Command,
  DeadLetterReason,
  DeliveredMessage,
  DeliveryRef,
  Effect,
  EntryResult,
  ExtendOutcome,
  Headers,
  ItemOutcome,
  LeaseEndReason,
  PeekedMessage,
  PublishMessage,
  PublishOutcome,
  QueueError,
  QueueErrorCode,
  QueueStats,
  Reply,
} from './types.js';
import {
  deliveryRefProblem,
  isIntIn,
  optionalDurationProblem,
  publishMessageProblem,
  queueNameProblem,
  stringListProblem,
} from './validate.js';

const BY_NEXT_DEADLINE: HeapSlot<QueueState> = {
  less: (a, b) => a.timerKeyMs < b.timerKeyMs || (a.timerKeyMs === b.timerKeyMs && a.name < b.name),
  getPos: (q) => q.timerPos,
  setPos: (q, p) => {
    q.timerPos = p;
  },
};
const BY_KEY_EXPIRY: HeapSlot<QueueState> = {
  less: (a, b) => a.dedupKeyMs < b.dedupKeyMs || (a.dedupKeyMs === b.dedupKeyMs && a.name < b.name),
  getPos: (q) => q.dedupTimerPos,
  setPos: (q, p) => {
    q.dedupTimerPos = p;
  },
};

function fail(code: QueueErrorCode, message: string): QueueError {
  return { ok: false, code, message };
}

function mismatch(code: QueueErrorCode, message: string): Match {
  return { kind: 'error', error: fail(code, message) };
}

function byName(a: QueueState, b: QueueState): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** Collects the effects of one entry; lease ends are merged per queue, consumer and reason. */
class EffectSink {
  private effects: Effect[] = [];
  private readonly ready = new Set<QueueState>();
  private readonly leaseEnds = new Map<string, Extract<Effect, { type: 'leasesEnded' }>>();

  add(effect: Effect): void {
    this.effects.push(effect);
  }

  markReady(queue: QueueState): void {
    this.ready.add(queue);
  }

  leaseEnded(queue: QueueState, consumerId: string, reason: LeaseEndReason, seq: number): void {
    const key = `${queue.name}\u0000${consumerId}\u0000${reason}`;
    const effect = this.leaseEnds.get(key);
    if (effect) effect.seqs.push(seq);
    else this.leaseEnds.set(key, { type: 'leasesEnded', queue: queue.name, consumerId, reason, seqs: [seq] });
  }

  drain(): Effect[] {
    const out = this.effects;
    for (const effect of this.leaseEnds.values()) {
      effect.seqs.sort((a, b) => a - b);
      out.push(effect);
    }
    for (const queue of this.ready) {
      if (!queue.deleted && queue.order.size > 0) out.push({ type: 'queueReady', queue: queue.name });
    }
    this.effects = [];
    this.ready.clear();
    this.leaseEnds.clear();
    return out;
  }
}

type Match =
  | { kind: 'match'; queue: QueueState; rec: MessageRecord }
  | { kind: 'gone' }
  | { kind: 'error'; error: QueueError };

export class QueueStateMachine {
  private time = 0;
  private lastDeliveryId = 0;
  private readonly queues = new Map<string, QueueState>();
  /** Queues in which each consumer holds leases: makes release O(leases held). */
  private readonly consumers = new Map<string, Set<QueueState>>();
  private readonly timers = new IndexedHeap<QueueState>(BY_NEXT_DEADLINE);
  private readonly keyTimers = new IndexedHeap<QueueState>(BY_KEY_EXPIRY);
  /** Queues whose deadlines changed since the heaps above were last brought up to date. */
  private dirty: QueueState[] = [];
  private readonly sink = new EffectSink();
  private readonly observer = {
    gainedDeliverable: (q: QueueState) => this.sink.markReady(q),
    deadlinesChanged: (q: QueueState) => this.dirty.push(q),
    consumerJoined: (q: QueueState, consumerId: string) => {
      let held = this.consumers.get(consumerId);
      if (held === undefined) {
        held = new Set();
        this.consumers.set(consumerId, held);
      }
      held.add(q);
    },
    consumerLeft: (q: QueueState, consumerId: string) => {
      const held = this.consumers.get(consumerId);
      held?.delete(q);
      if (held?.size === 0) this.consumers.delete(consumerId);
    },
  };

  /** The state's clock: the highest entry time applied so far (ms since epoch). */
  get timeMs(): number {
    return this.time;
  }

  /** Id of the latest delivery (global, increasing); part of the replicated state. */
  get deliveryIdHigh(): number {
    return this.lastDeliveryId;
  }

  // -------------------------------------------------------------------------------------------
  // Applying

  apply(meta: ApplyMeta, command: Command): ApplyResult {
    const { replies, effects } = this.applyEntry(meta, [command]);
    return { reply: replies[0] as Reply, effects };
  }

  /** Applies one log entry: time-based work first, then each command in order. */
  applyEntry(meta: ApplyMeta, commands: readonly Command[]): EntryResult {
    this.advanceTo(meta.timeMs);
    const replies = commands.map((command) => this.applyCommand(command));
    this.flushDeadlines();
    return { replies, effects: this.sink.drain() };
  }

  /**
   * Decodes and applies one log entry as encoded by `encodeBatch`. An entry whose envelope cannot
   * be decoded applies nothing and leaves the clock alone (every replica sees the same bytes, so
   * they all skip it alike); `decodeError` then says why.
   */
  applyEncoded(data: Uint8Array): EntryResult & { decodeError: string | null } {
    let batch: DecodedBatch;
    try {
      batch = decodeBatch(data);
    } catch (error) {
      if (!(error instanceof CommandDecodeError)) throw error;
      return { replies: [], effects: [], decodeError: error.message };
    }
    return { ...this.applyEntry({ timeMs: batch.timeMs }, batch.commands), decodeError: null };
  }

  /** Earliest time at which a tick would change something (delay end, lease deadline, expiry), or null. */
  nextDeadline(): number | null {
    this.flushDeadlines();
    const queue = this.timers.peek();
    return queue === undefined ? null : queue.timerKeyMs;
  }

  private applyCommand(command: Command): Reply {
    if (typeof command !== 'object' || command === null)
      return fail('INVALID_ARGUMENT', 'command must be an object');
    const problem = nameFieldsProblem(command);
    if (problem !== null) return fail('INVALID_ARGUMENT', problem);
    switch (command.op) {
      case 'createQueue':
        return this.createQueue(command.queue, command.options);
      case 'updateQueue':
        return this.updateQueue(command.queue, command.changes);
      case 'deleteQueue':
        return this.deleteQueue(command.queue);
      case 'purgeQueue':
        return this.purgeQueue(command.queue);
      case 'publish':
        return this.publish(command.queue, command.messages);
      case 'deliver':
        return this.deliver(command.queue, command.consumerId, command.max, command.leaseMs ?? null);
      case 'ack':
        return this.ack(command.items);
      case 'nack':
        return this.nack(command.items, command.delayMs ?? null, command.deadLetter === true);
      case 'extend':
        return this.extend(command.items, command.ms);
      case 'release':
        return this.release(command.consumerIds, command.failed === true);
      case 'releaseAllExcept':
        return this.releaseAllExcept(command.ownerPrefix);
      case 'redrive':
        return this.redrive(command.dlq, command.target ?? null, command.max ?? null);
      case 'tick':
        return { ok: true, op: 'tick' };
      case 'invalid':
        return fail('INVALID_ARGUMENT', `undecodable command: ${command.reason}`);
      default:
        return fail('INVALID_ARGUMENT', `unknown op ${describe((command as { op: unknown }).op)}`);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Time

  private advanceTo(entryTimeMs: number): void {
    if (Number.isFinite(entryTimeMs)) {
      const t = Math.floor(entryTimeMs);
      if (t > this.time) this.time = t;
    }
    this.flushDeadlines();
    // Deadlines are taken in time order across all queues (ties by queue name), one timestamp of
    // one queue at a time, so the outcome depends only on the state and not on how often ticks
    // came. The work itself happens at the entry's time: anything it schedules lies beyond it.
    for (let q = this.timers.peek(); q !== undefined && q.timerKeyMs <= this.time; q = this.timers.peek()) {
      const dueMs = q.timerKeyMs;
      this.processDueAt(q, dueMs);
      this.flushDeadlines();
      if (!q.deleted && q.timerKeyMs <= dueMs) {
        throw new Error(
          `queue invariant violated: ${q.name} still due at ${q.timerKeyMs} after processing ${dueMs}`,
        );
      }
    }
    for (
      let q = this.keyTimers.peek();
      q !== undefined && q.dedupKeyMs <= this.time;
      q = this.keyTimers.peek()
    ) {
      q.pruneKeys(this.time);
      this.dirty.push(q);
      this.flushDeadlines();
    }
  }

  /** One queue's work due at `dueMs` (its earliest deadline): lease expiries, then delay ends, then TTL expiries. */
  private processDueAt(q: QueueState, dueMs: number): void {
    for (let rec = q.leases.peek(); rec !== undefined && rec.dueMs <= dueMs; rec = q.leases.peek()) {
      this.expireLease(q, rec);
    }
    for (let rec = q.delayed.peek(); rec !== undefined && rec.dueMs <= dueMs; rec = q.delayed.peek()) {
      q.detach(rec);
      this.readyOrExpire(q, rec);
    }
    for (let rec = q.ttl.peek(); rec !== undefined && rec.expireAtMs <= dueMs; rec = q.ttl.peek()) {
      q.detach(rec);
      this.exitExpired(q, rec);
    }
  }

  /** Brings the queue-deadline heaps up to date with the queues changed since the last call. */
  private flushDeadlines(): void {
    if (this.dirty.length === 0) return;
    const dirty = this.dirty;
    this.dirty = [];
    for (const q of dirty) {
      q.deadlinesDirty = false;
      if (q.deleted) continue;
      q.timerKeyMs = q.nextDueMs();
      placeInHeap(this.timers, q, q.timerKeyMs);
      q.dedupKeyMs = q.nextKeyExpiryMs();
      placeInHeap(this.keyTimers, q, q.dedupKeyMs);
    }
  }

  private expireLease(q: QueueState, rec: MessageRecord): void {
    this.sink.leaseEnded(q, rec.consumerId as string, 'expired', rec.seq);
    q.detach(rec);
    q.counters.leasesExpired++;
    this.afterFailure(q, rec, 'lease-expired', null);
  }

  /**
   * A delivery failed (nack or lease expiry): dead-letter at maxDeliveries, else retry. An expired
   * lease retries at once; a nack after its own delay or the queue's backoff.
   */
  private afterFailure(
    q: QueueState,
    rec: MessageRecord,
    how: 'nack' | 'lease-expired',
    delayMs: number | null,
  ): void {
    rec.failures++;
    const max = q.options.maxDeliveries;
    if (max > 0 && rec.failures >= max) {
      this.deadLetter(q, rec, 'max-deliveries');
      return;
    }
    const waitMs = how === 'lease-expired' ? 0 : (delayMs ?? retryDelayMs(q.options.retry, rec.failures));
    if (waitMs > 0) q.enterDelayed(rec, this.time + waitMs, true);
    else this.readyOrExpire(q, rec);
  }

  private readyOrExpire(q: QueueState, rec: MessageRecord): void {
    if (rec.expireAtMs > 0 && rec.expireAtMs <= this.time) this.exitExpired(q, rec);
    else q.enterReady(rec);
  }

  private exitExpired(q: QueueState, rec: MessageRecord): void {
    if (q.options.deadLetterQueue !== null) {
      this.deadLetter(q, rec, 'expired');
      return;
    }
    q.discard(rec);
    q.counters.expired++;
  }

  /**
   * Moves a detached message to the queue's DLQ as a new message there, with its history. Without
   * a DLQ (or with one that was deleted, or full) the message is dropped and counted.
   */
  private deadLetter(q: QueueState, rec: MessageRecord, reason: DeadLetterReason): void {
    const dlqName = q.options.deadLetterQueue;
    q.discard(rec);
    const dlq = dlqName === null ? undefined : this.queues.get(dlqName);
    if (dlq === undefined) {
      q.counters.dropped++;
      return;
    }
    const history = {
      queue: q.name,
      seq: rec.seq,
      deliveryCount: rec.deliveryCount,
      reason,
      timeMs: this.time,
    };
    const arrival = this.addMessage(
      dlq,
      rec.body,
      rec.headers,
      rec.group,
      rec.priority,
      0,
      null,
      history,
      'drop',
      rec.format,
    );
    if (arrival === null) q.counters.dropped++;
    else q.counters.deadLettered++;
  }

  // -------------------------------------------------------------------------------------------
  // Storing messages

  /**
   * Stores a new message in `q` if it fits (making room first under drop-oldest); returns null and
   * changes nothing when it does not. Evicted messages are dead-lettered (`evict = 'dead-letter'`)
   * or dropped (`'drop'`, for arrivals that are themselves dead-lettered).
   */
  private addMessage(
    q: QueueState,
    body: Uint8Array,
    headers: Headers | null,
    group: string | null,
    priority: number,
    delayMs: number,
    ttlMs: number | null,
    history: MessageRecord['deadLetter'],
    evict: 'dead-letter' | 'drop',
    format: number,
  ): MessageRecord | null {
    const now = this.time;
    const ttl = ttlMs ?? q.options.messageTtlMs;
    const level = Math.min(priority, q.options.priorityLevels - 1);
    const rec = new MessageRecord(
      q.nextSeq,
      body,
      headers,
      group,
      level,
      now,
      ttl > 0 ? now + ttl : 0,
      history,
      format,
    );
    if (!this.makeRoom(q, rec.sizeBytes, evict)) {
      q.counters.rejected++;
      return null;
    }
    q.newRecordSeq();
    q.store(rec);
    q.counters.published++;
    if (delayMs > 0) q.enterDelayed(rec, now + delayMs, false);
    else q.enterReady(rec);
    return rec;
  }

  private fits(q: QueueState, sizeBytes: number): boolean {
    const { maxMessages, maxBytes } = q.options;
    return (
      (maxMessages === 0 || q.size + 1 <= maxMessages) && (maxBytes === 0 || q.bytes + sizeBytes <= maxBytes)
    );
  }

  /** Ensures one more message of `sizeBytes` fits; evicts oldest ready messages only if that is enough. */
  private makeRoom(q: QueueState, sizeBytes: number, evict: 'dead-letter' | 'drop'): boolean {
    if (this.fits(q, sizeBytes)) return true;
    const { overflow, maxMessages, maxBytes } = q.options;
    if (overflow !== 'drop-oldest') return false;
    // Only ready messages can be evicted; if evicting all of them would not do, evict none.
    if (maxMessages > 0 && q.size - q.readyCount + 1 > maxMessages) return false;
    if (maxBytes > 0 && q.bytes - q.readyBytes + sizeBytes > maxBytes) return false;
    while (!this.fits(q, sizeBytes)) {
      const victim = q.oldest.peek() as MessageRecord;
      q.detach(victim);
      if (evict === 'dead-letter') {
        this.deadLetter(q, victim, 'overflow');
      } else {
        q.discard(victim);
        q.counters.dropped++;
      }
    }
    return true;
  }

  // -------------------------------------------------------------------------------------------
  // Queue management

  private createQueue(name: string, options: QueueOptions): Reply {
    const problem = queueNameProblem(name) ?? queueOptionsProblem(options, name);
    if (problem !== null) return fail('INVALID_ARGUMENT', problem);
    const existing = this.queues.get(name);
    if (existing !== undefined) {
      if (sameQueueOptions(existing.options, options)) return { ok: true, op: 'createQueue', created: false };
      return fail('QUEUE_EXISTS', `queue ${name} exists with different options`);
    }
    const dlq = options.deadLetterQueue;
    if (dlq !== null && !this.queues.has(dlq))
      return fail('QUEUE_NOT_FOUND', `dead-letter queue ${dlq} does not exist`);
    this.queues.set(name, new QueueState(name, copyQueueOptions(options), this.observer));
    this.sink.add({ type: 'queueCreated', queue: name });
    return { ok: true, op: 'createQueue', created: true };
  }

  private updateQueue(name: string, changes: Parameters<typeof patchQueueOptions>[1]): Reply {
    const q = this.queues.get(name);
    if (q === undefined) return fail('QUEUE_NOT_FOUND', `queue ${name} does not exist`);
    if (typeof changes !== 'object' || changes === null)
      return fail('INVALID_ARGUMENT', 'changes must be an object');
    const merged = patchQueueOptions(q.options, changes);
    const problem = queueOptionsProblem(merged, name);
    if (problem !== null) return fail('INVALID_ARGUMENT', problem);
    const dlq = merged.deadLetterQueue;
    if (dlq !== null && dlq !== q.options.deadLetterQueue && !this.queues.has(dlq)) {
      return fail('QUEUE_NOT_FOUND', `dead-letter queue ${dlq} does not exist`);
    }
    q.options = merged;
    // The dedup window may have changed: key expiries move with it.
    this.dirty.push(q);
    return { ok: true, op: 'updateQueue', options: copyQueueOptions(merged) };
  }

  private deleteQueue(name: string): Reply {
    const q = this.queues.get(name);
    if (q === undefined) return fail('QUEUE_NOT_FOUND', `queue ${name} does not exist`);
    for (const consumerId of q.leasesByConsumer.keys()) this.observer.consumerLeft(q, consumerId);
    this.timers.remove(q);
    this.keyTimers.remove(q);
    q.deleted = true;
    this.queues.delete(name);
    this.sink.add({ type: 'queueDeleted', queue: name });
    return { ok: true, op: 'deleteQueue', deletedMessages: q.size };
  }

  private purgeQueue(name: string): Reply {
    const q = this.queues.get(name);
    if (q === undefined) return fail('QUEUE_NOT_FOUND', `queue ${name} does not exist`);
    let purged = 0;
    // Deleting the entry being visited is safe in a Map iteration.
    for (const rec of q.messages.values()) {
      if (rec.state === MessageState.InFlight) continue;
      q.detach(rec);
      q.discard(rec);
      purged++;
    }
    q.counters.purged += purged;
    return { ok: true, op: 'purgeQueue', purged };
  }

  // -------------------------------------------------------------------------------------------
  // Publishing

  private publish(name: string, messages: PublishMessage[]): Reply {
    const q = this.queues.get(name);
    if (q === undefined) return fail('QUEUE_NOT_FOUND', `queue ${name} does not exist`);
    if (!Array.isArray(messages)) return fail('INVALID_ARGUMENT', 'messages must be a list');
    for (let i = 0; i < messages.length; i++) {
      const problem = publishMessageProblem(messages[i] as PublishMessage);
      if (problem !== null) return fail('INVALID_ARGUMENT', `messages[${i}]: ${problem}`);
    }
    q.pruneKeys(this.time);
    const results: PublishOutcome[] = [];
    // Under `reject` a publish is all or nothing (the wire protocol's promise: QUEUE_FULL means
    // nothing was stored). Under drop-oldest messages are admitted one by one, evicting as they go.
    let full = q.options.overflow === 'reject' && !this.batchFits(q, messages);
    for (const m of messages) {
      const key = m.idempotencyKey ?? null;
      const seen = key === null ? undefined : q.findDuplicate(key);
      if (seen !== undefined) {
        q.counters.duplicates++;
        results.push({ ok: true, seq: seen.seq, duplicate: true });
        continue;
      }
      const rec = full ? null : this.storePublished(q, m);
      if (rec === null) {
        if (full) q.counters.rejected++;
        full = true;
        results.push({ ok: false, code: 'QUEUE_FULL', message: `queue ${name} is full` });
        continue;
      }
      if (key !== null) q.rememberKey(key, rec.seq, this.time);
      results.push({ ok: true, seq: rec.seq, duplicate: false });
    }
    return { ok: true, op: 'publish', results };
  }

  /** Whether every new message of a batch fits the queue's limits together (duplicates take no room). */
  private batchFits(q: QueueState, messages: readonly PublishMessage[]): boolean {
    const { maxMessages, maxBytes } = q.options;
    if (maxMessages === 0 && maxBytes === 0) return true;
    const keys = new Set<string>();
    let count = 0;
    let sizeBytes = 0;
    for (const m of messages) {
      const key = m.idempotencyKey ?? null;
      if (key !== null) {
        if (keys.has(key) || q.findDuplicate(key) !== undefined) continue;
        keys.add(key);
      }
      count++;
      sizeBytes += messageSizeBytes(m.body, m.headers ?? null);
    }
    return (
      (maxMessages === 0 || q.size + count <= maxMessages) &&
      (maxBytes === 0 || q.bytes + sizeBytes <= maxBytes)
    );
  }

  private storePublished(q: QueueState, m: PublishMessage): MessageRecord | null {
    const delayMs = m.delayMs ?? q.options.deliveryDelayMs;
    const headers = m.headers ?? null;
    return this.addMessage(
      q,
      m.body,
      headers,
      m.group ?? null,
      m.priority ?? 0,
      delayMs,
      m.ttlMs ?? null,
      null,
      'dead-letter',
      m.format ?? 0,
    );
  }

  // -------------------------------------------------------------------------------------------
  // Delivering and settling

  private deliver(name: string, consumerId: string, max: number, leaseMs: number | null): Reply {
    const q = this.queues.get(name);
    if (q === undefined) return fail('QUEUE_NOT_FOUND', `queue ${name} does not exist`);
    if (typeof consumerId !== 'string' || consumerId.length === 0) {
      return fail('INVALID_ARGUMENT', 'consumerId must be a non-empty string');
    }
    if (!isIntIn(max, 1, MAX_DELIVER_BATCH))
      return fail('INVALID_ARGUMENT', `max must be in 1..${MAX_DELIVER_BATCH}`);
    const leaseProblem = optionalDurationProblem(leaseMs, 'leaseMs', 1);
    if (leaseProblem !== null) return fail('INVALID_ARGUMENT', leaseProblem);
    const deadlineMs = this.time + (leaseMs ?? q.options.visibilityTimeoutMs);
    const messages: DeliveredMessage[] = [];
    while (messages.length < max) {
      const rec = q.takeNext();
      if (rec === undefined) break;
      rec.deliveryCount++;
      rec.deliveryId = ++this.lastDeliveryId;
      q.enterInFlight(rec, consumerId, deadlineMs);
      q.counters.delivered++;
      messages.push(deliveredView(rec));
    }
    if (messages.length > 0) this.sink.add({ type: 'delivered', queue: name, consumerId, messages });
    return { ok: true, op: 'deliver', messages, more: q.order.size > 0 };
  }

  /**
   * Finds the message a delivery ref names. `gone`: the message left the queue already (an
   * idempotent retry of an ack). A ref to an older delivery fails with LEASE_EXPIRED; a ref to a
   * delivery that never happened is invalid.
   */
  private match(ref: DeliveryRef): Match {
    const problem = deliveryRefProblem(ref);
    if (problem !== null) return mismatch('INVALID_ARGUMENT', problem);
    const q = this.queues.get(ref.queue);
    if (q === undefined) return mismatch('QUEUE_NOT_FOUND', `queue ${ref.queue} does not exist`);
    const rec = q.messages.get(ref.seq);
    if (rec === undefined) {
      if (ref.seq < q.nextSeq) return { kind: 'gone' };
      return mismatch('INVALID_ARGUMENT', `seq ${ref.seq} was never published to ${ref.queue}`);
    }
    if (ref.deliveryId < rec.deliveryId) {
      return mismatch('LEASE_EXPIRED', `seq ${ref.seq} was delivered again since delivery ${ref.deliveryId}`);
    }
    if (ref.deliveryId > rec.deliveryId) {
      return mismatch('INVALID_ARGUMENT', `delivery ${ref.deliveryId} of seq ${ref.seq} never happened`);
    }
    return { kind: 'match', queue: q, rec };
  }

  private ack(items: DeliveryRef[]): Reply {
    if (!Array.isArray(items)) return fail('INVALID_ARGUMENT', 'items must be a list');
    const results = items.map((item): ItemOutcome => {
      const found = this.match(item);
      if (found.kind === 'gone') return this.ackOfGone(item);
      if (found.kind === 'error') return found.error;
      found.queue.detach(found.rec);
      found.queue.discard(found.rec);
      found.queue.counters.acked++;
      return { ok: true };
    });
    return { ok: true, op: 'ack', results };
  }

  /**
   * An ack of a message that left its queue. Acked (under this or a newer delivery), expired,
   * purged: `ok`, it will not be delivered again. Dead-lettered, with its copy still in the queue's
   * dead-letter queue: LEASE_EXPIRED, because that copy will be delivered from there — an `ok`
   * would promise the consumer the message is done with.
   */
  private ackOfGone(item: DeliveryRef): ItemOutcome {
    const dlqName = this.queues.get(item.queue)?.options.deadLetterQueue ?? null;
    const dlqSeq =
      dlqName === null ? undefined : this.queues.get(dlqName)?.deadLetteredFrom(item.queue, item.seq);
    if (dlqSeq === undefined) return { ok: true };
    return fail(
      'LEASE_EXPIRED',
      `seq ${item.seq} of ${item.queue} was dead-lettered to ${dlqName} (seq ${dlqSeq}) before this ack`,
    );
  }

  /**
   * Gives deliveries back for a retry, or with `deadLetter` (the consumer rejects the message)
   * moves each to the queue's DLQ at once, whatever its failure count.
   */
  private nack(items: DeliveryRef[], delayMs: number | null, deadLetter: boolean): Reply {
    if (!Array.isArray(items)) return fail('INVALID_ARGUMENT', 'items must be a list');
    const delayProblem = optionalDurationProblem(delayMs, 'delayMs');
    if (delayProblem !== null) return fail('INVALID_ARGUMENT', delayProblem);
    if (deadLetter && delayMs !== null) return fail('INVALID_ARGUMENT', 'delayMs cannot go with deadLetter');
    const results = items.map((item): ItemOutcome => {
      const found = this.match(item);
      if (found.kind === 'gone') return { ok: true };
      if (found.kind === 'error') return found.error;
      // Already released, expired or nacked under this delivery: nothing more to do.
      if (found.rec.state !== MessageState.InFlight) return { ok: true };
      found.queue.detach(found.rec);
      found.queue.counters.nacked++;
      if (deadLetter) this.deadLetter(found.queue, found.rec, 'rejected');
      else this.afterFailure(found.queue, found.rec, 'nack', delayMs);
      return { ok: true };
    });
    return { ok: true, op: 'nack', results };
  }

  private extend(items: DeliveryRef[], ms: number): Reply {
    if (!Array.isArray(items)) return fail('INVALID_ARGUMENT', 'items must be a list');
    if (!isIntIn(ms, 1, MAX_DURATION_MS))
      return fail('INVALID_ARGUMENT', `ms must be an integer in 1..${MAX_DURATION_MS}`);
    const results = items.map((item): ExtendOutcome => {
      const found = this.match(item);
      if (found.kind === 'gone')
        return fail('LEASE_EXPIRED', `seq ${item.seq} is no longer in ${item.queue}`);
      if (found.kind === 'error') return found.error;
      if (found.rec.state !== MessageState.InFlight) {
        return fail('LEASE_EXPIRED', `the lease of seq ${item.seq} ended`);
      }
      const deadlineMs = this.time + ms;
      found.queue.extendLease(found.rec, deadlineMs);
      return { ok: true, leaseDeadlineMs: deadlineMs };
    });
    return { ok: true, op: 'extend', results };
  }

  // -------------------------------------------------------------------------------------------
  // Releasing leases

  private release(consumerIds: string[], failed: boolean): Reply {
    const problem = stringListProblem(consumerIds, 'consumerIds');
    if (problem !== null) return fail('INVALID_ARGUMENT', problem);
    let released = 0;
    for (const consumerId of consumerIds) released += this.releaseConsumer(consumerId, failed);
    return { ok: true, op: 'release', released };
  }

  private releaseAllExcept(ownerPrefix: string): Reply {
    if (typeof ownerPrefix !== 'string') return fail('INVALID_ARGUMENT', 'ownerPrefix must be a string');
    // Sorted, so the outcome does not depend on the order consumers were first seen in.
    const others = [...this.consumers.keys()].filter((id) => !id.startsWith(ownerPrefix)).sort();
    let released = 0;
    for (const consumerId of others) released += this.releaseConsumer(consumerId, false);
    return { ok: true, op: 'releaseAllExcept', released };
  }

  /**
   * Every lease of `consumerId` ends and the messages are ready at once. With `failed` (the consumer
   * went away, e.g. a worker crashed on a poison message) each counts as a failed delivery, so
   * maxDeliveries still dead-letters it; otherwise (leader change) nothing is counted.
   */
  private releaseConsumer(consumerId: string, failed: boolean): number {
    const queues = this.consumers.get(consumerId);
    if (queues === undefined) return 0;
    let released = 0;
    for (const q of [...queues].sort(byName)) {
      const held = [...(q.leasesByConsumer.get(consumerId) ?? [])].sort((a, b) => a.seq - b.seq);
      for (const rec of held) {
        this.sink.leaseEnded(q, consumerId, 'released', rec.seq);
        q.detach(rec);
        if (failed) this.afterFailure(q, rec, 'lease-expired', null);
        else this.readyOrExpire(q, rec);
        released++;
      }
    }
    return released;
  }

  // -------------------------------------------------------------------------------------------
  // Redrive

  /**
   * Moves up to `max` ready messages of a dead-letter queue, oldest first, to `target` or to the
   * queue each came from. Messages whose destination does not exist or is full stay (skipped).
   * Cost is O(messages in the DLQ): an operator action, not a hot path.
   */
  private redrive(dlqName: string, target: string | null, max: number | null): Reply {
    const dlq = this.queues.get(dlqName);
    if (dlq === undefined) return fail('QUEUE_NOT_FOUND', `queue ${dlqName} does not exist`);
    if (target !== null) {
      const problem = queueNameProblem(target, 'target');
      if (problem !== null) return fail('INVALID_ARGUMENT', problem);
      if (target === dlqName)
        return fail('INVALID_ARGUMENT', 'target must differ from the dead-letter queue');
      if (!this.queues.has(target)) return fail('QUEUE_NOT_FOUND', `queue ${target} does not exist`);
    }
    if (max !== null && !isIntIn(max, 1, MAX_COUNT))
      return fail('INVALID_ARGUMENT', `max must be in 1..${MAX_COUNT}`);
    const limit = max ?? MAX_COUNT;
    // Collected first: moving a message can evict into this same queue (a DLQ cycle).
    const candidates = [...dlq.messages.values()].filter((rec) => rec.state === MessageState.Ready);
    let moved = 0;
    let skipped = 0;
    for (const rec of candidates) {
      if (moved >= limit) break;
      if (rec.state !== MessageState.Ready) continue;
      if (this.redriveOne(dlq, rec, target)) moved++;
      else skipped++;
    }
    return { ok: true, op: 'redrive', moved, skipped };
  }

  private redriveOne(dlq: QueueState, rec: MessageRecord, target: string | null): boolean {
    const destName = target ?? rec.deadLetter?.queue ?? null;
    const dest = destName === null || destName === dlq.name ? undefined : this.queues.get(destName);
    if (dest === undefined) return false;
    dlq.detach(rec);
    const copy = this.addMessage(
      dest,
      rec.body,
      rec.headers,
      rec.group,
      rec.priority,
      0,
      null,
      null,
      'dead-letter',
      rec.format,
    );
    if (copy === null) {
      dlq.enterReady(rec);
      return false;
    }
    dlq.discard(rec);
    dlq.counters.redriven++;
    return true;
  }

  // -------------------------------------------------------------------------------------------
  // Reads (not commands: they change nothing)

  queueNames(): string[] {
    return [...this.queues.keys()].sort();
  }

  queueOptions(name: string): QueueOptions | null {
    const q = this.queues.get(name);
    return q === undefined ? null : copyQueueOptions(q.options);
  }

  /** True when a deliver on `name` would lease at least one message now. */
  hasReady(name: string): boolean {
    return (this.queues.get(name)?.order.size ?? 0) > 0;
  }

  /**
   * How many messages a deliver on `name` could lease now (ready and not held back by a busy
   * group); 0 for an unknown queue. O(1): the gateway sizes its deliver proposals with it.
   */
  deliverableCount(name: string): number {
    return this.queues.get(name)?.order.size ?? 0;
  }

  stats(name: string): QueueStats | null {
    const q = this.queues.get(name);
    if (q === undefined) return null;
    const oldest = q.oldest.peek();
    return {
      queue: name,
      ready: q.readyCount,
      inFlight: q.inFlightCount,
      delayed: q.delayedCount,
      bytes: q.bytes,
      oldestAgeMs: oldest === undefined ? 0 : Math.max(0, this.time - oldest.publishedAtMs),
      groups: q.groups.size,
      consumers: q.leasesByConsumer.size,
      counters: { ...q.counters },
    };
  }

  /**
   * Up to `max` messages with seq >= `fromSeq`, in seq order, whatever their state. Costs
   * O(min(seq range, messages held) + max).
   */
  peek(name: string, fromSeq: number, max: number): PeekedMessage[] | null {
    const q = this.queues.get(name);
    if (q === undefined) return null;
    const out: PeekedMessage[] = [];
    if (!isIntIn(max, 1, MAX_DELIVER_BATCH) || !Number.isSafeInteger(fromSeq)) return out;
    const from = Math.max(1, fromSeq);
    if (q.nextSeq - from <= q.messages.size) {
      for (let seq = from; seq < q.nextSeq && out.length < max; seq++) {
        const rec = q.messages.get(seq);
        if (rec !== undefined) out.push(peekedView(rec));
      }
      return out;
    }
    for (const rec of q.messages.values()) {
      if (out.length >= max) break;
      if (rec.seq >= from) out.push(peekedView(rec));
    }
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // Snapshot, restore, digest

  /**
   * The whole state as a stream of chunks of about `chunkBytes` each (one message larger than that
   * gets a chunk of its own). Taken from a copy made now, so chunks may be pulled while later
   * entries are applied.
   */
  snapshot(chunkBytes?: number): QueueSnapshot {
    return captureSnapshot(this, chunkBytes);
  }

  /** A new state machine rebuilt from `snapshot()` chunks; throws SnapshotFormatError for bad input. */
  static restore(chunks: Iterable<Uint8Array>): QueueStateMachine {
    return restoreSnapshot(chunks);
  }

  /** Hash of the logical state (canonical traversal); equal on replicas that applied the same entries. */
  digest(hasher?: Hasher): string {
    return digestState(this, hasher);
  }

  // -------------------------------------------------------------------------------------------
  // Access for snapshot and restore (same package only)

  /** @internal Queues in name order, for snapshots. */
  queuesByName(): QueueState[] {
    return [...this.queues.values()].sort(byName);
  }

  /** @internal Replaces the clock and delivery id counter (restore only, before any queue is added). */
  restoreClock(timeMs: number, lastDeliveryId: number): void {
    this.time = timeMs;
    this.lastDeliveryId = lastDeliveryId;
  }

  /** @internal Adds an empty queue during restore. */
  restoreQueue(name: string, options: QueueOptions): QueueState {
    const q = new QueueState(name, options, this.observer);
    this.queues.set(name, q);
    return q;
  }

  /** @internal Finishes a restore: deadline heaps are built, effects of rebuilding are dropped. */
  finishRestore(): void {
    this.flushDeadlines();
    this.sink.drain();
  }
}

/**
 * Checks the name fields every handler uses before anything else, so handlers (and the messages
 * they build) can rely on them being strings.
 */
function nameFieldsProblem(command: Command): string | null {
  switch (command.op) {
    case 'createQueue':
    case 'updateQueue':
    case 'deleteQueue':
    case 'purgeQueue':
    case 'publish':
    case 'deliver':
      return queueNameProblem(command.queue);
    case 'redrive':
      return (
        queueNameProblem(command.dlq, 'dlq') ??
        (command.target == null ? null : queueNameProblem(command.target, 'target'))
      );
    case 'invalid':
      return typeof command.reason === 'string' ? null : 'undecodable command';
    default:
      return null;
  }
}

/** A value for an error message that cannot throw while being turned into text. */
function describe(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : typeof value;
}

function placeInHeap(heap: IndexedHeap<QueueState>, q: QueueState, keyMs: number): void {
  const inHeap = heap.has(q);
  if (keyMs === Number.POSITIVE_INFINITY) {
    if (inHeap) heap.remove(q);
  } else if (inHeap) {
    heap.update(q);
  } else {
    heap.push(q);
  }
}

function deliveredView(rec: MessageRecord): DeliveredMessage {
  return {
    seq: rec.seq,
    deliveryId: rec.deliveryId,
    body: rec.body,
    headers: rec.headers,
    group: rec.group,
    priority: rec.priority,
    format: rec.format,
    deliveryCount: rec.deliveryCount,
    publishedAtMs: rec.publishedAtMs + 0,
    leaseDeadlineMs: rec.dueMs,
    deadLetter: rec.deadLetter,
  };
}

const PEEK_STATE: readonly PeekedMessage['state'][] = ['ready', 'delayed', 'retrying', 'in-flight'];

function peekedView(rec: MessageRecord): PeekedMessage {
  return {
    seq: rec.seq,
    state: PEEK_STATE[rec.state] ?? 'ready',
    body: rec.body,
    headers: rec.headers,
    group: rec.group,
    priority: rec.priority,
    format: rec.format,
    deliveryCount: rec.deliveryCount,
    // `+ 0` turns the records' internal -0 ("no time") into a plain 0.
    publishedAtMs: rec.publishedAtMs + 0,
    dueMs: rec.state === MessageState.Ready ? null : rec.dueMs + 0,
    expiresAtMs: rec.expireAtMs + 0,
    consumerId: rec.consumerId,
    deadLetter: rec.deadLetter,
  };
}
