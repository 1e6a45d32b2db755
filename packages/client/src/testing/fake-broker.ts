/**
 * In-memory queue state for the fake server: queues, seqs, leases, delivery ids, dedup by
 * idempotency key, push subscriptions with prefetch windows, long-poll receives, dead-lettering and
 * redrive. Deliberately simple (a linear scan picks the next message) but faithful to the protocol
 * document's rules, so the SDK's tests exercise the same semantics as against a real cluster:
 * settlements follow the broker's state machine (an ack of a message that already left the queue
 * succeeds; LEASE_EXPIRED while the message is still there under a newer delivery or waits in the
 * dead-letter queue), purge
 * leaves in-flight messages with their consumers, and a dead-lettered message is pushed to the
 * dead-letter queue's subscribers like any publish.
 * Time only matters for delays; leases end when a test says so (`expireLeases`), never by a timer.
 */

import {
  type AckItem,
  type BodyFormat,
  DEFAULT_QUEUE_OPTIONS,
  type DeadLetterInfo,
  type DeliveredMessage,
  type ErrorCode,
  FlotillaError,
  type ItemOutcomes,
  invalidArgument,
  type PublishMessage,
  type PublishResult,
  type QueueOptions,
  type QueueOptionsPatch,
  type QueueStats,
  resolveQueueOptions,
} from '@flotilla/shared';

/** Who holds a lease: a session (connection), and the push subscription if it came from one. */
export interface LeaseOwner {
  sessionId: number;
  sub: FakeSubscription | null;
}

/** A push subscription as the broker sees it. */
export interface FakeSubscription {
  sessionId: number;
  subId: number;
  queue: string;
  window: number;
  /** Delivery ids leased through this subscription and not yet settled. */
  unsettled: Set<number>;
  /** The most unsettled deliveries this subscription ever had at once. */
  maxUnsettled: number;
  push(queue: string, messages: DeliveredMessage[]): void;
}

interface StoredMessage {
  seq: number;
  body: Uint8Array;
  format: BodyFormat;
  headers: Record<string, string> | null;
  group: string | null;
  priority: number;
  publishedAtMs: number;
  deliveryCount: number;
  /** Id of the latest delivery (0: never delivered); settlements quoting an older one are stale. */
  lastDeliveryId: number;
  state: 'ready' | 'delayed' | 'inflight';
  lease: { deliveryId: number; owner: LeaseOwner; deadlineMs: number } | null;
  /** For a dead-lettered message: where it came from (the redrive target by default) and why. */
  deadLetter: DeadLetterInfo | null;
}

interface FakeQueue {
  name: string;
  options: QueueOptions;
  messages: Map<number, StoredMessage>;
  nextSeq: number;
  dedup: Map<string, number>;
  /** In-flight messages per group: a group with one in flight gets no other delivery. */
  groupsInFlight: Map<string, number>;
  publishedCount: number;
  deliveredCount: number;
  ackedCount: number;
  deadLetteredCount: number;
}

interface ParkedReceive {
  sessionId: number;
  queue: string;
  max: number;
  visibilityTimeoutMs: number | undefined;
  answer(messages: DeliveredMessage[]): void;
  timer: ReturnType<typeof setTimeout>;
}

function queueNotFound(name: string): FlotillaError {
  return new FlotillaError('QUEUE_NOT_FOUND', `no queue named ${name}`, { queue: name });
}

/** The shared state of a fake cluster (every fake node serves the same broker). */
export class FakeBroker {
  private readonly queues = new Map<string, FakeQueue>();
  private readonly subscriptions = new Set<FakeSubscription>();
  private parked: ParkedReceive[] = [];
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  private nextDeliveryId = 1;

  // ---------------------------------------------------------------------------------------------
  // Admin

  createQueue(name: string, patch: QueueOptionsPatch): QueueOptions {
    if (this.queues.has(name))
      throw new FlotillaError('QUEUE_EXISTS', `queue ${name} exists`, { queue: name });
    const resolved = resolveQueueOptions(name, patch);
    if (!resolved.ok) throw resolved.error;
    const dlq = resolved.value.deadLetterQueue;
    if (dlq !== null && !this.queues.has(dlq)) throw queueNotFound(dlq);
    this.queues.set(name, {
      name,
      options: resolved.value,
      messages: new Map(),
      nextSeq: 1,
      dedup: new Map(),
      groupsInFlight: new Map(),
      publishedCount: 0,
      deliveredCount: 0,
      ackedCount: 0,
      deadLetteredCount: 0,
    });
    return resolved.value;
  }

  updateQueue(name: string, patch: QueueOptionsPatch): QueueOptions {
    const queue = this.queue(name);
    const resolved = resolveQueueOptions(name, patch, queue.options, { forUpdate: true });
    if (!resolved.ok) throw resolved.error;
    queue.options = resolved.value;
    return resolved.value;
  }

  /** Deletes a queue; returns the subscriptions that were on it (the server ends them). */
  deleteQueue(name: string): FakeSubscription[] {
    this.queue(name);
    this.queues.delete(name);
    const ended = [...this.subscriptions].filter((sub) => sub.queue === name);
    for (const sub of ended) this.subscriptions.delete(sub);
    return ended;
  }

  /** Drops ready and delayed messages; in-flight ones stay with their consumers (as on a real node). */
  purgeQueue(name: string): number {
    const queue = this.queue(name);
    let count = 0;
    for (const message of [...queue.messages.values()]) {
      if (message.state === 'inflight') continue;
      queue.messages.delete(message.seq);
      count++;
    }
    return count;
  }

  stats(name: string): QueueStats {
    const queue = this.queue(name);
    let ready = 0;
    let inFlight = 0;
    let delayed = 0;
    let totalBytes = 0;
    let oldest: number | null = null;
    for (const message of queue.messages.values()) {
      if (message.state === 'ready') ready++;
      else if (message.state === 'inflight') inFlight++;
      else delayed++;
      totalBytes += message.body.byteLength;
      oldest = oldest === null ? message.publishedAtMs : Math.min(oldest, message.publishedAtMs);
    }
    return {
      name,
      depth: queue.messages.size,
      ready,
      inFlight,
      delayed,
      totalBytes,
      publishedCount: queue.publishedCount,
      deliveredCount: queue.deliveredCount,
      ackedCount: queue.ackedCount,
      deadLetteredCount: queue.deadLetteredCount,
      oldestMessageAgeMs: oldest === null ? null : Date.now() - oldest,
      options: queue.options,
    };
  }

  listQueues(): QueueStats[] {
    return [...this.queues.keys()].map((name) => this.stats(name));
  }

  // ---------------------------------------------------------------------------------------------
  // Publish

  /** Stores a batch, all or nothing; keys seen inside the dedup window are not stored again. */
  publish(name: string, messages: PublishMessage[]): PublishResult {
    const queue = this.queue(name);
    messages.forEach((message, index) => {
      if ((message.priority ?? 0) >= queue.options.priorityLevels) {
        throw invalidArgument(
          `messages[${index}].priority`,
          `${message.priority} is not below the queue's ${queue.options.priorityLevels} levels`,
        );
      }
    });
    const fresh = messages.filter(
      (m) => m.idempotencyKey === undefined || !queue.dedup.has(m.idempotencyKey),
    );
    const max = queue.options.maxMessages;
    if (max > 0 && queue.messages.size + fresh.length > max) {
      throw new FlotillaError('QUEUE_FULL', `queue ${name} holds its maximum of ${max} messages`, {
        queue: name,
      });
    }
    const seqs: number[] = [];
    const duplicates: number[] = [];
    messages.forEach((message, index) => {
      const known =
        message.idempotencyKey === undefined ? undefined : queue.dedup.get(message.idempotencyKey);
      if (known !== undefined) {
        seqs.push(known);
        duplicates.push(index);
        return;
      }
      seqs.push(this.store(queue, message));
    });
    this.pump(name);
    return { seqs, duplicates };
  }

  private store(queue: FakeQueue, message: PublishMessage, deadLetter: DeadLetterInfo | null = null): number {
    const seq = queue.nextSeq++;
    const delayMs = message.delayMs ?? queue.options.deliveryDelayMs;
    queue.messages.set(seq, {
      seq,
      body: message.body.slice(),
      format: message.format ?? 0,
      headers: message.headers ?? null,
      group: message.group ?? null,
      priority: message.priority ?? 0,
      publishedAtMs: Date.now(),
      deliveryCount: 0,
      lastDeliveryId: 0,
      state: delayMs > 0 ? 'delayed' : 'ready',
      lease: null,
      deadLetter,
    });
    if (message.idempotencyKey !== undefined) queue.dedup.set(message.idempotencyKey, seq);
    queue.publishedCount++;
    if (delayMs > 0) this.later(delayMs, () => this.makeReady(queue.name, seq));
    return seq;
  }

  // ---------------------------------------------------------------------------------------------
  // Deliveries

  /** Throws QUEUE_NOT_FOUND unless the queue exists. */
  requireQueue(name: string): void {
    this.queue(name);
  }

  subscribe(sub: FakeSubscription): void {
    this.queue(sub.queue);
    this.subscriptions.add(sub);
    this.pump(sub.queue);
  }

  setWindow(sub: FakeSubscription, window: number): void {
    sub.window = window;
    this.pump(sub.queue);
  }

  unsubscribe(sub: FakeSubscription): void {
    this.subscriptions.delete(sub);
  }

  /** Leases up to `max` ready messages now; if none and `waitMs` > 0, parks until some arrive. */
  receive(
    sessionId: number,
    name: string,
    max: number,
    waitMs: number,
    visibilityTimeoutMs: number | undefined,
    answer: (messages: DeliveredMessage[]) => void,
  ): void {
    const messages = this.leaseMany(name, max, { sessionId, sub: null }, visibilityTimeoutMs);
    if (messages.length > 0 || waitMs === 0) {
      answer(messages);
      return;
    }
    const parked: ParkedReceive = {
      sessionId,
      queue: name,
      max,
      visibilityTimeoutMs,
      answer,
      timer: setTimeout(() => {
        this.parked = this.parked.filter((p) => p !== parked);
        answer([]);
      }, waitMs),
    };
    this.parked.push(parked);
  }

  peek(name: string, max: number, fromSeq: number): DeliveredMessage[] {
    const queue = this.queue(name);
    const out: DeliveredMessage[] = [];
    for (const message of queue.messages.values()) {
      if (out.length >= max) break;
      if (message.seq < fromSeq) continue;
      out.push(this.view(name, message, 0, message.lease?.deadlineMs ?? 0));
    }
    return out;
  }

  /**
   * Acks: the latest delivery removes the message whatever its state, an older delivery gets
   * LEASE_EXPIRED. A message that already left the queue succeeds (the ack's promise holds),
   * unless it was dead-lettered and its copy is still in the DLQ: LEASE_EXPIRED.
   */
  ack(items: AckItem[]): ItemOutcomes {
    return this.settleEach(items, (queue, message, item) => {
      if (message === null) return this.inDeadLetterQueue(queue, item.seq) ? 'LEASE_EXPIRED' : null;
      this.endLease(queue, message);
      queue.messages.delete(message.seq);
      queue.ackedCount++;
      return null;
    });
  }

  /**
   * Nacks of the latest delivery still in flight give the message back; with `deadLetter` (a
   * rejection) it goes to the queue's DLQ at once, reason `rejected`. Nacks of a message that
   * left the queue, or whose latest lease already ended, change nothing and succeed.
   */
  nack(items: AckItem[], delayMs: number | undefined, deadLetter = false): ItemOutcomes {
    return this.settleEach(items, (queue, message) => {
      if (message === null || message.state !== 'inflight') return null;
      this.endLease(queue, message);
      if (deadLetter) this.deadLetter(queue, message, 'rejected');
      else this.requeue(queue, message, delayMs);
      return null;
    });
  }

  /** Extends leases still held; anything else (gone, ended, redelivered) is LEASE_EXPIRED. */
  extend(items: AckItem[], ms: number): ItemOutcomes {
    return this.settleEach(items, (_queue, message) => {
      if (message === null || message.state !== 'inflight') return 'LEASE_EXPIRED';
      message.lease!.deadlineMs = Date.now() + ms;
      return null;
    });
  }

  /** A session went away: its subscriptions end, its leases (and parked receives) are released. */
  dropSession(sessionId: number): void {
    for (const sub of [...this.subscriptions])
      if (sub.sessionId === sessionId) this.subscriptions.delete(sub);
    for (const parked of this.parked.filter((p) => p.sessionId === sessionId)) clearTimeout(parked.timer);
    this.parked = this.parked.filter((p) => p.sessionId !== sessionId);
    this.releaseLeases((owner) => owner.sessionId === sessionId);
  }

  /** Ends every lease (as after their visibility timeout, or a leader change); returns how many. */
  expireLeases(): number {
    return this.releaseLeases(() => true);
  }

  /** Moves dead-lettered messages back (to `target` or where each came from). */
  redrive(dlq: string, target: string | undefined, max: number): number {
    const source = this.queue(dlq);
    if (target !== undefined) this.queue(target);
    let moved = 0;
    for (const message of [...source.messages.values()]) {
      if (moved >= max) break;
      if (message.state === 'inflight') continue;
      const destination = target ?? message.deadLetter?.queue ?? null;
      if (destination === null || !this.queues.has(destination)) continue;
      source.messages.delete(message.seq);
      this.store(this.queue(destination), this.asPublish(message));
      moved++;
    }
    for (const name of this.queues.keys()) this.pump(name);
    return moved;
  }

  /** Highest number of unsettled deliveries any subscription of `queue` had at once. */
  maxUnsettled(queue: string, subs: Iterable<FakeSubscription> = this.subscriptions): number {
    let max = 0;
    for (const sub of subs) if (sub.queue === queue) max = Math.max(max, sub.maxUnsettled);
    return max;
  }

  /** Every stored message of a queue (tests inspect bodies and keys through this). */
  stored(name: string): DeliveredMessage[] {
    return this.peek(name, Number.MAX_SAFE_INTEGER, 0);
  }

  close(): void {
    for (const timer of this.timers) clearTimeout(timer);
    for (const parked of this.parked) clearTimeout(parked.timer);
    this.timers.clear();
    this.parked = [];
  }

  // ---------------------------------------------------------------------------------------------
  // Internals

  private queue(name: string): FakeQueue {
    const queue = this.queues.get(name);
    if (queue === undefined) throw queueNotFound(name);
    return queue;
  }

  private later(ms: number, run: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      run();
    }, ms);
    this.timers.add(timer);
  }

  private makeReady(name: string, seq: number): void {
    const message = this.queues.get(name)?.messages.get(seq);
    if (message === undefined || message.state !== 'delayed') return;
    message.state = 'ready';
    this.pump(name);
  }

  /** Hands ready messages to parked receives, then to subscriptions with room. */
  private pump(name: string): void {
    for (const parked of this.parked.filter((p) => p.queue === name)) {
      const messages = this.leaseMany(
        name,
        parked.max,
        { sessionId: parked.sessionId, sub: null },
        parked.visibilityTimeoutMs,
      );
      if (messages.length === 0) break;
      clearTimeout(parked.timer);
      this.parked = this.parked.filter((p) => p !== parked);
      parked.answer(messages);
    }
    for (const sub of this.subscriptions) {
      if (sub.queue !== name) continue;
      const room = sub.window - sub.unsettled.size;
      if (room <= 0) continue;
      const messages = this.leaseMany(name, room, { sessionId: sub.sessionId, sub }, undefined);
      if (messages.length > 0) sub.push(name, messages);
    }
  }

  private leaseMany(
    name: string,
    max: number,
    owner: LeaseOwner,
    visibilityTimeoutMs: number | undefined,
  ): DeliveredMessage[] {
    const queue = this.queues.get(name);
    if (queue === undefined) return [];
    const out: DeliveredMessage[] = [];
    while (out.length < max) {
      const message = this.nextReady(queue);
      if (message === undefined) break;
      out.push(this.lease(queue, message, owner, visibilityTimeoutMs ?? queue.options.visibilityTimeoutMs));
    }
    return out;
  }

  /** Highest priority first, then lowest seq; skips groups that have a message in flight. */
  private nextReady(queue: FakeQueue): StoredMessage | undefined {
    const singleLevel = queue.options.priorityLevels === 1;
    let best: StoredMessage | undefined;
    for (const message of queue.messages.values()) {
      if (message.state !== 'ready') continue;
      if (message.group !== null && queue.groupsInFlight.has(message.group)) continue;
      // Messages iterate in seq order: with one level the first eligible one is the answer.
      if (singleLevel) return message;
      if (best === undefined || message.priority > best.priority) best = message;
    }
    return best;
  }

  private endLease(queue: FakeQueue, message: StoredMessage): void {
    const lease = message.lease;
    if (lease === null) return;
    lease.owner.sub?.unsettled.delete(lease.deliveryId);
    message.lease = null;
    if (message.group === null) return;
    const left = (queue.groupsInFlight.get(message.group) ?? 1) - 1;
    if (left > 0) queue.groupsInFlight.set(message.group, left);
    else queue.groupsInFlight.delete(message.group);
  }

  private lease(
    queue: FakeQueue,
    message: StoredMessage,
    owner: LeaseOwner,
    visibilityMs: number,
  ): DeliveredMessage {
    const deliveryId = this.nextDeliveryId++;
    message.lastDeliveryId = deliveryId;
    message.state = 'inflight';
    message.deliveryCount++;
    message.lease = { deliveryId, owner, deadlineMs: Date.now() + visibilityMs };
    if (message.group !== null) {
      queue.groupsInFlight.set(message.group, (queue.groupsInFlight.get(message.group) ?? 0) + 1);
    }
    queue.deliveredCount++;
    if (owner.sub !== null) {
      owner.sub.unsettled.add(deliveryId);
      owner.sub.maxUnsettled = Math.max(owner.sub.maxUnsettled, owner.sub.unsettled.size);
    }
    return this.view(queue.name, message, deliveryId, message.lease.deadlineMs);
  }

  private view(
    queue: string,
    message: StoredMessage,
    deliveryId: number,
    leaseDeadlineMs: number,
  ): DeliveredMessage {
    return {
      queue,
      seq: message.seq,
      deliveryId,
      body: message.body,
      format: message.format,
      headers: message.headers,
      group: message.group,
      priority: message.priority,
      deliveryCount: message.deliveryCount,
      publishedAtMs: message.publishedAtMs,
      leaseDeadlineMs,
      deadLetter: message.deadLetter,
    };
  }

  /**
   * The message an item names (null: it left the queue already), or the item's error code:
   * QUEUE_NOT_FOUND, or LEASE_EXPIRED for a delivery that is not the message's latest (or never
   * happened, which a real node reports the same way).
   */
  private match(item: AckItem): { queue: FakeQueue; message: StoredMessage | null } | ErrorCode {
    const queue = this.queues.get(item.queue);
    if (queue === undefined) return 'QUEUE_NOT_FOUND';
    const message = queue.messages.get(item.seq);
    if (message === undefined) return item.seq < queue.nextSeq ? { queue, message: null } : 'LEASE_EXPIRED';
    if (message.lastDeliveryId !== item.deliveryId) return 'LEASE_EXPIRED';
    return { queue, message };
  }

  /** Applies `settle` to each item's match; it returns an item error code or null (success). */
  private settleEach(
    items: AckItem[],
    settle: (queue: FakeQueue, message: StoredMessage | null, item: AckItem) => ErrorCode | null,
  ): ItemOutcomes {
    const failed: ItemOutcomes['failed'] = [];
    const touched = new Set<string>();
    items.forEach((item, index) => {
      const found = this.match(item);
      const code = typeof found === 'string' ? found : settle(found.queue, found.message, item);
      if (code !== null) failed.push({ index, code });
      else touched.add(item.queue);
    });
    for (const name of touched) this.pump(name);
    return { failed };
  }

  private requeue(queue: FakeQueue, message: StoredMessage, delayMs: number | undefined): void {
    const max = queue.options.maxDeliveries;
    if (max > 0 && message.deliveryCount >= max) {
      this.deadLetter(queue, message, 'max-deliveries');
      return;
    }
    const waitMs = delayMs ?? queue.options.retry.delayMs;
    message.state = waitMs > 0 ? 'delayed' : 'ready';
    if (waitMs > 0) this.later(waitMs, () => this.makeReady(queue.name, message.seq));
  }

  /** Is the message `seq` of `queue` waiting in the queue's DLQ, dead-lettered from there? */
  private inDeadLetterQueue(queue: FakeQueue, seq: number): boolean {
    const dlqName = queue.options.deadLetterQueue;
    const dlq = dlqName === null ? undefined : this.queues.get(dlqName);
    if (dlq === undefined) return false;
    for (const m of dlq.messages.values()) {
      if (m.deadLetter?.queue === queue.name && m.deadLetter.seq === seq) return true;
    }
    return false;
  }

  private deadLetter(queue: FakeQueue, message: StoredMessage, reason: DeadLetterInfo['reason']): void {
    queue.messages.delete(message.seq);
    queue.deadLetteredCount++;
    const dlq =
      queue.options.deadLetterQueue === null ? undefined : this.queues.get(queue.options.deadLetterQueue);
    if (dlq === undefined) return;
    const history = {
      queue: queue.name,
      seq: message.seq,
      deliveryCount: message.deliveryCount,
      reason,
      timeMs: Date.now(),
    };
    this.store(dlq, this.asPublish(message), history);
    // The arrival is a publish to the DLQ: its subscribers and long polls get it now.
    this.pump(dlq.name);
  }

  private asPublish(message: StoredMessage): PublishMessage {
    return {
      body: message.body,
      format: message.format,
      headers: message.headers ?? undefined,
      group: message.group ?? undefined,
      priority: message.priority,
      delayMs: 0,
    };
  }

  private releaseLeases(match: (owner: LeaseOwner) => boolean): number {
    let released = 0;
    for (const queue of this.queues.values()) {
      for (const message of queue.messages.values()) {
        if (message.lease === null || !match(message.lease.owner)) continue;
        this.endLease(queue, message);
        message.state = 'ready';
        released++;
      }
    }
    for (const name of this.queues.keys()) this.pump(name);
    return released;
  }
}

/** Options a fresh queue gets in the fake (the protocol defaults). */
export const FAKE_DEFAULT_OPTIONS = DEFAULT_QUEUE_OPTIONS;
