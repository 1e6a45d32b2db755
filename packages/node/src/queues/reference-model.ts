/**
 * A deliberately naive second implementation of the queue semantics, for property tests only:
 * plain arrays scanned and sorted on every operation, no heaps, no indexes. It covers one work
 * queue dead-lettering into one DLQ (the cross-queue order of a tick then depends on nothing but
 * the rules). The property tests feed it and the real state machine the same commands and require
 * the same replies and the same messages, state by state.
 */
import type {
  DeadLetterInfo,
  DeadLetterReason,
  DeliveredMessage,
  DeliveryRef,
  PeekedMessage,
  QueueCounters,
} from './types.js';

export interface ModelQueueConfig {
  maxMessages: number;
  overflow: 'reject' | 'drop-oldest';
  maxDeliveries: number;
  deadLetterQueue: string | null;
  messageTtlMs: number;
  deliveryDelayMs: number;
  visibilityTimeoutMs: number;
  retryDelayMs: number;
  dedupWindowMs: number;
  priorityLevels: number;
}

type State = PeekedMessage['state'] | 'detached';

interface MMsg {
  seq: number;
  body: Uint8Array;
  group: string | null;
  priority: number;
  publishedAtMs: number;
  expireAtMs: number;
  state: State;
  dueMs: number;
  deliveryCount: number;
  failures: number;
  deliveryId: number;
  consumerId: string | null;
  deadLetter: DeadLetterInfo | null;
}

interface MQueue {
  name: string;
  cfg: ModelQueueConfig;
  nextSeq: number;
  msgs: MMsg[];
  keys: { key: string; seq: number; atMs: number }[];
  counters: QueueCounters;
}

export interface ModelPublish {
  body: Uint8Array;
  idempotencyKey?: string | null;
  delayMs?: number | null;
  ttlMs?: number | null;
  group?: string | null;
  priority?: number | null;
}

type Outcome = { ok: true } | { ok: false; code: string };

const zeroCounters = (): QueueCounters => ({
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
});

const bySeq = (a: MMsg, b: MMsg) => a.seq - b.seq;
const waiting = (m: MMsg) => m.state === 'delayed' || m.state === 'retrying';

export class ReferenceModel {
  timeMs = 0;
  private lastDeliveryId = 0;
  private readonly queues = new Map<string, MQueue>();

  addQueue(name: string, cfg: ModelQueueConfig): void {
    this.queues.set(name, { name, cfg, nextSeq: 1, msgs: [], keys: [], counters: zeroCounters() });
  }

  private q(name: string): MQueue {
    const q = this.queues.get(name);
    if (!q) throw new Error(`model has no queue ${name}`);
    return q;
  }

  // -------------------------------------------------------------------------------------------
  // Time

  /** Deadlines in time order over all queues (ties by name), each handled at the current time. */
  advance(timeMs: number): void {
    this.timeMs = Math.max(this.timeMs, timeMs);
    for (;;) {
      const due = [...this.queues.values()]
        .map((q) => ({ q, at: this.earliestDue(q) }))
        .filter((d) => d.at <= this.timeMs)
        .sort((a, b) => a.at - b.at || (a.q.name < b.q.name ? -1 : 1))[0];
      if (!due) break;
      this.processDueAt(due.q, due.at);
    }
    for (const q of this.queues.values())
      q.keys = q.keys.filter((k) => k.atMs + q.cfg.dedupWindowMs > this.timeMs);
  }

  private earliestDue(q: MQueue): number {
    const times = q.msgs.flatMap((m) => [
      m.state === 'in-flight' || waiting(m) ? m.dueMs : Number.POSITIVE_INFINITY,
      (m.state === 'ready' || waiting(m)) && m.expireAtMs > 0 ? m.expireAtMs : Number.POSITIVE_INFINITY,
    ]);
    return Math.min(Number.POSITIVE_INFINITY, ...times);
  }

  private processDueAt(q: MQueue, at: number): void {
    const byDue = (a: MMsg, b: MMsg) => a.dueMs - b.dueMs || a.seq - b.seq;
    for (const m of q.msgs.filter((m) => m.state === 'in-flight' && m.dueMs <= at).sort(byDue)) {
      m.state = 'detached';
      m.consumerId = null;
      q.counters.leasesExpired++;
      this.afterFailure(q, m, 'expired', null);
    }
    for (const m of q.msgs.filter((m) => waiting(m) && m.dueMs <= at).sort(byDue)) this.readyOrExpire(q, m);
    const byExpiry = (a: MMsg, b: MMsg) => a.expireAtMs - b.expireAtMs || a.seq - b.seq;
    const live = (m: MMsg) => m.state === 'ready' || waiting(m);
    for (const m of q.msgs.filter((m) => live(m) && m.expireAtMs > 0 && m.expireAtMs <= at).sort(byExpiry)) {
      this.exitExpired(q, m);
    }
  }

  private afterFailure(q: MQueue, m: MMsg, how: 'expired' | 'nack', delayMs: number | null): void {
    m.failures++;
    if (q.cfg.maxDeliveries > 0 && m.failures >= q.cfg.maxDeliveries) {
      this.deadLetter(q, m, 'max-deliveries');
      return;
    }
    const wait = how === 'expired' ? 0 : (delayMs ?? q.cfg.retryDelayMs);
    if (wait > 0) {
      m.state = 'retrying';
      m.dueMs = this.timeMs + wait;
    } else {
      this.readyOrExpire(q, m);
    }
  }

  private readyOrExpire(q: MQueue, m: MMsg): void {
    if (m.expireAtMs > 0 && m.expireAtMs <= this.timeMs) this.exitExpired(q, m);
    else m.state = 'ready';
  }

  private exitExpired(q: MQueue, m: MMsg): void {
    if (q.cfg.deadLetterQueue !== null) {
      this.deadLetter(q, m, 'expired');
      return;
    }
    this.remove(q, m);
    q.counters.expired++;
  }

  private deadLetter(q: MQueue, m: MMsg, reason: DeadLetterReason): void {
    this.remove(q, m);
    const dlq = q.cfg.deadLetterQueue === null ? undefined : this.queues.get(q.cfg.deadLetterQueue);
    if (!dlq) {
      q.counters.dropped++;
      return;
    }
    const history = {
      queue: q.name,
      seq: m.seq,
      deliveryCount: m.deliveryCount,
      reason,
      timeMs: this.timeMs,
    };
    const stored = this.add(dlq, m.body, m.group, m.priority, 0, null, history, 'drop');
    if (stored === null) q.counters.dropped++;
    else q.counters.deadLettered++;
  }

  private remove(q: MQueue, m: MMsg): void {
    q.msgs = q.msgs.filter((x) => x !== m);
  }

  // -------------------------------------------------------------------------------------------
  // Storing

  private add(
    q: MQueue,
    body: Uint8Array,
    group: string | null,
    priority: number,
    delayMs: number,
    ttlMs: number | null,
    history: DeadLetterInfo | null,
    evict: 'dead-letter' | 'drop',
  ): MMsg | null {
    if (!this.makeRoom(q, body.length, evict)) {
      q.counters.rejected++;
      return null;
    }
    const now = this.timeMs;
    const ttl = ttlMs ?? q.cfg.messageTtlMs;
    const m: MMsg = {
      seq: q.nextSeq++,
      body,
      group,
      priority: Math.min(priority, q.cfg.priorityLevels - 1),
      publishedAtMs: now,
      expireAtMs: ttl > 0 ? now + ttl : 0,
      state: delayMs > 0 ? 'delayed' : 'ready',
      dueMs: delayMs > 0 ? now + delayMs : 0,
      deliveryCount: 0,
      failures: 0,
      deliveryId: 0,
      consumerId: null,
      deadLetter: history,
    };
    q.msgs.push(m);
    q.counters.published++;
    return m;
  }

  private makeRoom(q: MQueue, _size: number, evict: 'dead-letter' | 'drop'): boolean {
    const max = q.cfg.maxMessages;
    if (max === 0 || q.msgs.length + 1 <= max) return true;
    if (q.cfg.overflow !== 'drop-oldest') return false;
    const ready = q.msgs.filter((m) => m.state === 'ready').sort(bySeq);
    if (q.msgs.length - ready.length + 1 > max) return false;
    while (q.msgs.length + 1 > max) {
      const victim = ready.shift() as MMsg;
      if (evict === 'dead-letter') {
        this.deadLetter(q, victim, 'overflow');
      } else {
        this.remove(q, victim);
        q.counters.dropped++;
      }
    }
    return true;
  }

  publish(
    name: string,
    messages: ModelPublish[],
  ): ({ ok: true; seq: number; duplicate: boolean } | { ok: false; code: 'QUEUE_FULL' })[] {
    const q = this.q(name);
    q.keys = q.keys.filter((k) => k.atMs + q.cfg.dedupWindowMs > this.timeMs);
    // Under reject: all new messages (distinct unseen keys, or none) must fit together, or none is stored.
    const fresh = new Set<string>();
    let newCount = 0;
    for (const p of messages) {
      const key = p.idempotencyKey ?? null;
      if (key !== null && (fresh.has(key) || q.keys.some((k) => k.key === key))) continue;
      if (key !== null) fresh.add(key);
      newCount++;
    }
    const max = q.cfg.maxMessages;
    let full = q.cfg.overflow === 'reject' && max > 0 && q.msgs.length + newCount > max;
    return messages.map((p) => {
      const key = p.idempotencyKey ?? null;
      const seen = q.keys.find((k) => k.key === key);
      if (seen) {
        q.counters.duplicates++;
        return { ok: true, seq: seen.seq, duplicate: true };
      }
      const m = full
        ? null
        : this.add(
            q,
            p.body,
            p.group ?? null,
            p.priority ?? 0,
            p.delayMs ?? q.cfg.deliveryDelayMs,
            p.ttlMs ?? null,
            null,
            'dead-letter',
          );
      if (m === null) {
        if (full) q.counters.rejected++;
        full = true;
        return { ok: false, code: 'QUEUE_FULL' };
      }
      if (key !== null) q.keys.push({ key, seq: m.seq, atMs: this.timeMs });
      return { ok: true, seq: m.seq, duplicate: false };
    });
  }

  // -------------------------------------------------------------------------------------------
  // Delivering

  private nextDeliverable(q: MQueue): MMsg | undefined {
    const busy = new Set(
      q.msgs
        .filter((m) => m.group !== null && (m.state === 'in-flight' || m.state === 'retrying'))
        .map((m) => m.group),
    );
    const heads = new Map<string, MMsg>();
    const candidates: MMsg[] = [];
    for (const m of q.msgs.filter((m) => m.state === 'ready').sort(bySeq)) {
      if (m.group === null) candidates.push(m);
      else if (!busy.has(m.group) && !heads.has(m.group)) heads.set(m.group, m);
    }
    candidates.push(...heads.values());
    return candidates.sort((a, b) => b.priority - a.priority || a.seq - b.seq)[0];
  }

  deliver(
    name: string,
    consumerId: string,
    max: number,
    leaseMs: number | null,
  ): { messages: DeliveredMessage[]; more: boolean } {
    const q = this.q(name);
    const messages: DeliveredMessage[] = [];
    const deadline = this.timeMs + (leaseMs ?? q.cfg.visibilityTimeoutMs);
    for (let m = this.nextDeliverable(q); m && messages.length < max; m = this.nextDeliverable(q)) {
      m.state = 'in-flight';
      m.deliveryCount++;
      m.deliveryId = ++this.lastDeliveryId;
      m.consumerId = consumerId;
      m.dueMs = deadline;
      q.counters.delivered++;
      messages.push({
        seq: m.seq,
        deliveryId: m.deliveryId,
        body: m.body,
        headers: null,
        group: m.group,
        priority: m.priority,
        format: 0,
        deliveryCount: m.deliveryCount,
        publishedAtMs: m.publishedAtMs,
        leaseDeadlineMs: deadline,
        deadLetter: m.deadLetter,
      });
    }
    return { messages, more: this.nextDeliverable(q) !== undefined };
  }

  private match(ref: DeliveryRef): { q: MQueue; m: MMsg } | 'gone' | Outcome {
    const q = this.q(ref.queue);
    const m = q.msgs.find((x) => x.seq === ref.seq);
    if (!m) return ref.seq < q.nextSeq ? 'gone' : { ok: false, code: 'INVALID_ARGUMENT' };
    if (ref.deliveryId < m.deliveryId) return { ok: false, code: 'LEASE_EXPIRED' };
    if (ref.deliveryId > m.deliveryId) return { ok: false, code: 'INVALID_ARGUMENT' };
    return { q, m };
  }

  ack(items: DeliveryRef[]): Outcome[] {
    return items.map((ref) => {
      const found = this.match(ref);
      if (found === 'gone') return this.ackOfGone(ref);
      if ('ok' in found) return found;
      this.remove(found.q, found.m);
      found.q.counters.acked++;
      return { ok: true };
    });
  }

  /** A message that left its queue: LEASE_EXPIRED while its dead-lettered copy is still in the DLQ. */
  private ackOfGone(ref: DeliveryRef): Outcome {
    const dlqName = this.queues.get(ref.queue)?.cfg.deadLetterQueue ?? null;
    const dlq = dlqName === null ? undefined : this.queues.get(dlqName);
    const copy = dlq?.msgs.find((m) => m.deadLetter?.queue === ref.queue && m.deadLetter.seq === ref.seq);
    return copy === undefined ? { ok: true } : { ok: false, code: 'LEASE_EXPIRED' };
  }

  nack(items: DeliveryRef[], delayMs: number | null, deadLetter = false): Outcome[] {
    return items.map((ref) => {
      const found = this.match(ref);
      if (found === 'gone') return { ok: true };
      if ('ok' in found) return found;
      if (found.m.state !== 'in-flight') return { ok: true };
      found.m.state = 'detached';
      found.m.consumerId = null;
      found.q.counters.nacked++;
      if (deadLetter) this.deadLetter(found.q, found.m, 'rejected');
      else this.afterFailure(found.q, found.m, 'nack', delayMs);
      return { ok: true };
    });
  }

  extend(
    items: DeliveryRef[],
    ms: number,
  ): ({ ok: true; leaseDeadlineMs: number } | { ok: false; code: string })[] {
    return items.map((ref) => {
      const found = this.match(ref);
      if (found === 'gone') return { ok: false, code: 'LEASE_EXPIRED' };
      if ('ok' in found) return found as { ok: false; code: string };
      if (found.m.state !== 'in-flight') return { ok: false, code: 'LEASE_EXPIRED' };
      found.m.dueMs = this.timeMs + ms;
      return { ok: true, leaseDeadlineMs: found.m.dueMs };
    });
  }

  release(consumerIds: string[], failed = false): number {
    let released = 0;
    for (const consumerId of consumerIds) {
      for (const q of [...this.queues.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
        for (const m of q.msgs.filter((x) => x.consumerId === consumerId).sort(bySeq)) {
          m.state = 'detached';
          m.consumerId = null;
          if (failed) this.afterFailure(q, m, 'expired', null);
          else this.readyOrExpire(q, m);
          released++;
        }
      }
    }
    return released;
  }

  releaseAllExcept(prefix: string): number {
    const holders = new Set<string>();
    for (const q of this.queues.values())
      for (const m of q.msgs) if (m.consumerId !== null) holders.add(m.consumerId);
    return this.release([...holders].filter((id) => !id.startsWith(prefix)).sort());
  }

  purge(name: string): number {
    const q = this.q(name);
    const before = q.msgs.length;
    q.msgs = q.msgs.filter((m) => m.state === 'in-flight');
    q.counters.purged += before - q.msgs.length;
    return before - q.msgs.length;
  }

  redrive(dlqName: string, max: number | null): { moved: number; skipped: number } {
    const dlq = this.q(dlqName);
    let moved = 0;
    let skipped = 0;
    for (const m of dlq.msgs.filter((x) => x.state === 'ready').sort(bySeq)) {
      if (moved >= (max ?? Number.MAX_SAFE_INTEGER)) break;
      if (m.state !== 'ready' || !dlq.msgs.includes(m)) continue;
      const dest = m.deadLetter ? this.queues.get(m.deadLetter.queue) : undefined;
      if (!dest || dest === dlq) {
        skipped++;
        continue;
      }
      m.state = 'detached';
      const copy = this.add(dest, m.body, m.group, m.priority, 0, null, null, 'dead-letter');
      if (copy === null) {
        m.state = 'ready';
        skipped++;
        continue;
      }
      this.remove(dlq, m);
      dlq.counters.redriven++;
      moved++;
    }
    return { moved, skipped };
  }

  // -------------------------------------------------------------------------------------------
  // Reads

  messages(name: string): PeekedMessage[] {
    return [...this.q(name).msgs].sort(bySeq).map((m) => ({
      seq: m.seq,
      state: m.state as PeekedMessage['state'],
      body: m.body,
      headers: null,
      group: m.group,
      priority: m.priority,
      format: 0,
      deliveryCount: m.deliveryCount,
      publishedAtMs: m.publishedAtMs,
      dueMs: m.state === 'ready' ? null : m.dueMs,
      expiresAtMs: m.expireAtMs,
      consumerId: m.consumerId,
      deadLetter: m.deadLetter,
    }));
  }

  counters(name: string): QueueCounters {
    return { ...this.q(name).counters };
  }
}
