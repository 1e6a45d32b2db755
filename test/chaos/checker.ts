/**
 * The chaos checker: judges a campaign from its history (what clients were told) and the final
 * drained state, nothing else. The properties, numbered as in issue 6:
 *
 * 1. every confirmed publish was delivered and acked at least once, or reached its dead-letter queue;
 * 2. nothing was delivered that was never published (no phantom, corrupted or misrouted message);
 * 3. a message whose ack was confirmed is never delivered again;
 * 4. a message is stored once (idempotent publishes and the SDK's own retries never store twice);
 * 5. within a message group no two messages are in flight at once, and first deliveries keep the
 *    order in which one producer's publishes were confirmed;
 * 6. after the heal every member reports the same applied index and digest, the queues drain, and
 *    the cluster served again within the bound.
 *
 * What is *not* a violation, on purpose: a publish that failed with a "maybe applied" error may or
 * may not be stored; an ack that failed that way may or may not have settled the message; a
 * delivery to a consumer that crashed is not an ack; redelivery of unacked messages is allowed
 * (at-least-once), and only counted as duplicates.
 */
import {
  type Deliver,
  decodePayload,
  type EventBase,
  type FinalState,
  type HistoryEvent,
  type Payload,
  type PublishFail,
  type PublishInvoke,
  type PublishOk,
  type SettleFail,
  type SettleInvoke,
  type SettleOk,
} from './history.js';

export type Property = 1 | 2 | 3 | 4 | 5 | 6;

export interface Violation {
  property: Property;
  /** Short stable name: `lost`, `phantom`, `corrupted`, `misrouted`, `seq-reused`, ... */
  kind: string;
  message: string;
  /** The payload ids and `queue#seq` of the messages involved. */
  ids: string[];
}

export interface CheckCounts {
  faults: number;
  /** Logical messages the workload tried to publish (distinct payload ids). */
  published: number;
  confirmed: number;
  /** Messages whose every attempt failed with an error that guarantees nothing was stored. */
  failedDefinite: number;
  /** Messages never confirmed with at least one attempt of unknown outcome. */
  failedMaybe: number;
  /** Messages delivered at least once (in their own queue). */
  delivered: number;
  /** Delivery events, all queues. */
  deliveries: number;
  /** Messages delivered more than once in their own queue (allowed: at-least-once). */
  duplicates: number;
  /** Deliveries beyond each message's first. */
  redeliveries: number;
  acked: number;
  deadLettered: number;
  lost: number;
  unavailabilityWindows: number;
  longestUnavailableMs: number;
}

export interface UnavailabilityWindow {
  fromT: number;
  toT: number;
  ms: number;
}

export interface CheckReport {
  counts: CheckCounts;
  violations: Violation[];
  /** Deviations from the protocol that break none of the six properties (reported, not failed). */
  anomalies: Violation[];
  windows: UnavailabilityWindow[];
}

export interface CheckOptions {
  /** A gap between publish confirmations longer than this is an unavailability window (default 1,000 ms). */
  unavailableAfterMs?: number;
}

type Ev<T> = EventBase & T;

/** Everything known about one logical message (payload id). */
interface MessageInfo {
  pid: string;
  queue: string;
  group: string | null;
  producer: string;
  invokes: Ev<PublishInvoke>[];
  oks: Ev<PublishOk>[];
  fails: Ev<PublishFail>[];
  /** Attempts with no outcome in the history at all (unknown, like a maybe-applied failure). */
  unanswered: number;
  /** Deliveries in its own queue and in its dead-letter queue. */
  deliveries: Ev<Deliver>[];
  dlqDeliveries: Ev<Deliver>[];
}

/** One delivery with what became of its settlement. */
interface Settlement {
  invoke: Ev<SettleInvoke>;
  outcome: Ev<SettleOk> | Ev<SettleFail> | null;
}

const leaseKey = (queue: string, seq: number, deliveryId: number) => `${queue}#${seq}/${deliveryId}`;
const seqKey = (queue: string, seq: number) => `${queue}#${seq}`;

/** The history cut into indexes the properties read. */
class HistoryIndex {
  readonly messages = new Map<string, MessageInfo>();
  readonly deliveries: { event: Ev<Deliver>; payload: Payload | null }[] = [];
  /** Settlements by lease, in invoke order. */
  readonly settlements = new Map<string, Settlement[]>();
  /** The first delivery event seen for each lease. */
  readonly leases = new Map<string, Ev<Deliver>>();
  readonly dlqOf = new Map<string, string>();
  readonly publishOkTimes: number[] = [];
  faults = 0;
  readonly phases = new Map<string, number>();

  constructor(events: readonly HistoryEvent[], final: FinalState) {
    for (const queue of final.queues)
      if (queue.deadLetterQueue) this.dlqOf.set(queue.name, queue.deadLetterQueue);
    const publishOutcomes = new Map<number, Ev<PublishOk> | Ev<PublishFail>>();
    const settleOutcomes = new Map<number, Ev<SettleOk> | Ev<SettleFail>>();
    const settleInvokes: Ev<SettleInvoke>[] = [];
    for (const event of events) {
      switch (event.kind) {
        case 'publish-invoke':
          this.messageFor(event).invokes.push(event);
          break;
        case 'publish-ok':
          publishOutcomes.set(event.op, event);
          this.publishOkTimes.push(event.t);
          break;
        case 'publish-fail':
          publishOutcomes.set(event.op, event);
          break;
        case 'deliver':
          this.addDelivery(event);
          break;
        case 'settle-invoke':
          settleInvokes.push(event);
          break;
        case 'settle-ok':
        case 'settle-fail':
          settleOutcomes.set(event.op, event);
          break;
        case 'nemesis':
          if (event.phase === 'start') this.faults++;
          break;
        case 'phase':
          this.phases.set(event.name, event.t);
          break;
        case 'crash':
          break;
      }
    }
    this.attachPublishOutcomes(publishOutcomes);
    for (const invoke of settleInvokes) {
      const key = leaseKey(invoke.queue, invoke.seq, invoke.deliveryId);
      const list = this.settlements.get(key) ?? [];
      list.push({ invoke, outcome: settleOutcomes.get(invoke.op) ?? null });
      this.settlements.set(key, list);
    }
  }

  private messageFor(invoke: Ev<PublishInvoke>): MessageInfo {
    let info = this.messages.get(invoke.pid);
    if (!info) {
      info = {
        pid: invoke.pid,
        queue: invoke.queue,
        group: invoke.group,
        producer: invoke.client,
        invokes: [],
        oks: [],
        fails: [],
        unanswered: 0,
        deliveries: [],
        dlqDeliveries: [],
      };
      this.messages.set(invoke.pid, info);
    }
    return info;
  }

  private addDelivery(event: Ev<Deliver>): void {
    const payload = decodePayload(event.body);
    this.deliveries.push({ event, payload });
    const key = leaseKey(event.queue, event.seq, event.deliveryId);
    if (!this.leases.has(key)) this.leases.set(key, event);
  }

  private attachPublishOutcomes(outcomes: Map<number, Ev<PublishOk> | Ev<PublishFail>>): void {
    for (const info of this.messages.values()) {
      for (const invoke of info.invokes) {
        const outcome = outcomes.get(invoke.op);
        if (!outcome) info.unanswered++;
        else if (outcome.kind === 'publish-ok') info.oks.push(outcome);
        else info.fails.push(outcome);
      }
    }
    // Deliveries are attached once every message is known (a delivery names its message by payload).
    for (const { event, payload } of this.deliveries) {
      const info = payload ? this.messages.get(payload.pid) : undefined;
      if (!info) continue;
      if (event.queue === info.queue) info.deliveries.push(event);
      else if (event.queue === this.dlqOf.get(info.queue)) info.dlqDeliveries.push(event);
    }
  }

  isConfirmed(info: MessageInfo): boolean {
    return info.oks.length > 0;
  }

  /** Could the message have been stored? (confirmed, or some attempt's outcome is unknown) */
  mayBeStored(info: MessageInfo): boolean {
    return this.isConfirmed(info) || info.unanswered > 0 || info.fails.some((f) => f.maybeApplied);
  }

  settlementsOf(delivery: Ev<Deliver>): Settlement[] {
    return this.settlements.get(leaseKey(delivery.queue, delivery.seq, delivery.deliveryId)) ?? [];
  }

  /** The lease's ack was confirmed, or may have been applied (outcome unknown). */
  mayBeAcked(delivery: Ev<Deliver>): boolean {
    return this.settlementsOf(delivery).some(
      (s) =>
        s.invoke.settle === 'ack' &&
        (s.outcome === null ||
          s.outcome.kind === 'settle-ok' ||
          (s.outcome.kind === 'settle-fail' && s.outcome.maybeApplied)),
    );
  }

  /** The settlement of this lease that the broker confirmed, if any. */
  confirmedSettlement(delivery: Ev<Deliver>, settle?: 'ack' | 'nack'): Settlement | undefined {
    return this.settlementsOf(delivery).find(
      (s) => s.outcome?.kind === 'settle-ok' && (settle === undefined || s.invoke.settle === settle),
    );
  }
}

const describeDelivery = (d: Deliver) =>
  `${d.queue}#${d.seq} delivery ${d.deliveryId} (count ${d.deliveryCount}) to ${d.client}`;

/** Property 1: nothing confirmed is lost. */
function checkNothingLost(index: HistoryIndex, final: FinalState): Violation[] {
  const violations: Violation[] = [];
  const maxDeliveriesOf = new Map(final.queues.map((q) => [q.name, q.maxDeliveries]));
  for (const info of index.messages.values()) {
    if (!index.isConfirmed(info)) continue;
    if (info.dlqDeliveries.length > 0) continue;
    if (info.deliveries.some((d) => index.mayBeAcked(d))) continue;
    // A queue with maxDeliveries and no dead-letter queue drops what it would dead-letter.
    const max = maxDeliveriesOf.get(info.queue) ?? 0;
    const dropped =
      max > 0 && !index.dlqOf.has(info.queue) && info.deliveries.some((d) => d.deliveryCount >= max);
    if (dropped) continue;
    const seq = info.oks[0]!.seq;
    violations.push({
      property: 1,
      kind: 'lost',
      message:
        `${info.pid} (${info.queue}#${seq}) was confirmed at t=${info.oks[0]!.t} but never acked nor dead-lettered` +
        ` (${info.deliveries.length} deliveries, none acked)`,
      ids: [info.pid, seqKey(info.queue, seq)],
    });
  }
  return violations;
}

/** Property 2: every delivery is of a message that was published, intact, in the right queue. */
function checkNoPhantoms(index: HistoryIndex): Violation[] {
  const violations: Violation[] = [];
  const pidsBySeq = new Map<string, Set<string>>();
  for (const { event, payload } of index.deliveries) {
    const at = describeDelivery(event);
    if (!payload) {
      violations.push({
        property: 2,
        kind: 'corrupted',
        message: `${at}: body is not an intact payload: ${JSON.stringify(event.body.slice(0, 120))}`,
        ids: [seqKey(event.queue, event.seq)],
      });
      continue;
    }
    const ids = [payload.pid, seqKey(event.queue, event.seq)];
    const info = index.messages.get(payload.pid);
    if (!info) {
      violations.push({
        property: 2,
        kind: 'phantom',
        message: `${at}: ${payload.pid} was never published`,
        ids,
      });
      continue;
    }
    const wrongGroup = event.queue === info.queue && event.group !== info.group;
    if (payload.queue !== info.queue || wrongGroup) {
      violations.push({
        property: 2,
        kind: 'corrupted',
        message: `${at}: ${payload.pid} was published to ${info.queue} (group ${info.group}), delivered as ${payload.queue} (group ${event.group})`,
        ids,
      });
    }
    if (event.queue !== info.queue && event.queue !== index.dlqOf.get(info.queue)) {
      violations.push({
        property: 2,
        kind: 'misrouted',
        message: `${at}: ${payload.pid} was published to ${info.queue}, which does not dead-letter into ${event.queue}`,
        ids,
      });
    }
    if (!index.mayBeStored(info)) {
      violations.push({
        property: 2,
        kind: 'phantom',
        message: `${at}: every publish of ${payload.pid} failed with an error that guarantees nothing was stored (${info.fails.map((f) => f.code).join(', ')})`,
        ids,
      });
    }
    const key = seqKey(event.queue, event.seq);
    const pids = pidsBySeq.get(key) ?? new Set<string>();
    pids.add(payload.pid);
    pidsBySeq.set(key, pids);
  }
  for (const [key, pids] of pidsBySeq) {
    if (pids.size > 1) {
      violations.push({
        property: 2,
        kind: 'seq-reused',
        message: `${key} was delivered with different messages: ${[...pids].join(', ')}`,
        ids: [key, ...pids],
      });
    }
  }
  return violations;
}

/** Is `other` a delivery of the same message made after `than` (a higher count, or another lease with the same count)? */
function isNewer(other: Deliver, than: Deliver): boolean {
  return (
    other.deliveryCount > than.deliveryCount ||
    (other.deliveryCount === than.deliveryCount && other.deliveryId !== than.deliveryId)
  );
}

/**
 * Property 3: once an ack is confirmed, the message is never delivered again — neither in its
 * queue (a newer delivery) nor from its dead-letter queue. Such a delivery seen only *before* the
 * ack was confirmed breaks no promise to the user. It is what docs/protocol.md ("What a
 * settlement's outcome means") describes when the message had left the queue by the time the ack
 * was applied (acked under the newer delivery, or dead-lettered and settled from the DLQ): that
 * ack answers `ok` with no effect. `LEASE_EXPIRED` is for a message still in the queue under a
 * newer delivery or waiting in the DLQ, and the history cannot always tell them apart, so this is
 * reported as an anomaly, not a violation.
 */
function checkNoRedeliveryAfterAck(index: HistoryIndex): { violations: Violation[]; anomalies: Violation[] } {
  const violations: Violation[] = [];
  const anomalies: Violation[] = [];
  for (const info of index.messages.values()) {
    for (const acked of info.deliveries) {
      const ack = index.confirmedSettlement(acked, 'ack');
      if (!ack) continue;
      const ackedAt = ack.outcome!;
      const newer = info.deliveries.filter((d) => d.seq === acked.seq && isNewer(d, acked));
      for (const later of [...newer, ...info.dlqDeliveries]) {
        const ids = [...new Set([info.pid, seqKey(acked.queue, acked.seq), seqKey(later.queue, later.seq)])];
        const afterwards = later.i > ackedAt.i;
        const what = later.queue === acked.queue ? 'redelivered-after-ack' : 'dead-lettered-after-ack';
        const list = afterwards ? violations : anomalies;
        list.push({
          property: 3,
          kind: afterwards ? what : 'stale-ack-confirmed',
          message: afterwards
            ? `${info.pid}: ack of ${describeDelivery(acked)} was confirmed at t=${ackedAt.t}, then ${describeDelivery(later)} at t=${later.t}`
            : `${info.pid}: ack of ${describeDelivery(acked)} was confirmed at t=${ackedAt.t} although ${describeDelivery(later)} had come at t=${later.t}: allowed if the message had left the queue when the ack was applied (ok, no effect)`,
          ids,
        });
      }
    }
  }
  return { violations, anomalies };
}

/** Property 4: each message is stored once: one seq per queue, whatever the retries. */
function checkStoredOnce(index: HistoryIndex): Violation[] {
  const violations: Violation[] = [];
  for (const info of index.messages.values()) {
    const seqs = new Map<string, Set<number>>();
    const note = (queue: string, seq: number) => {
      const set = seqs.get(queue) ?? new Set<number>();
      set.add(seq);
      seqs.set(queue, set);
    };
    for (const ok of info.oks) note(info.queue, ok.seq);
    for (const d of info.deliveries) note(d.queue, d.seq);
    for (const d of info.dlqDeliveries) note(d.queue, d.seq);
    for (const [queue, set] of seqs) {
      if (set.size <= 1) continue;
      const keyed = info.invokes.some((inv) => inv.key !== null);
      violations.push({
        property: 4,
        kind: 'stored-twice',
        message: `${info.pid} is stored ${set.size} times in ${queue} (seqs ${[...set].join(', ')}; ${info.invokes.length} publish attempts, ${keyed ? 'application idempotency key' : 'SDK-generated key'})`,
        ids: [info.pid, ...[...set].map((seq) => seqKey(queue, seq))],
      });
    }
  }
  return violations;
}

/** Property 5a: two deliveries of one group that were both surely leased at the same moment. */
function checkGroupExclusive(index: HistoryIndex): Violation[] {
  const violations: Violation[] = [];
  // A confirmed settlement of a message's last delivery proves the message was in flight from
  // (before) that delivery to (after) the settle call, or ready at the head of its group, which
  // bars the rest of the group just the same. (The broker also confirms settlements of leases a
  // newer delivery replaced, so earlier deliveries prove nothing.)
  const bySeq = new Map<string, Ev<Deliver>[]>();
  for (const { event } of index.deliveries) {
    const key = seqKey(event.queue, event.seq);
    const list = bySeq.get(key) ?? [];
    list.push(event);
    bySeq.set(key, list);
  }
  const intervals = new Map<string, { start: number; end: number; delivery: Ev<Deliver> }[]>();
  for (const { event } of index.deliveries) {
    if (event.group === null) continue;
    const settlement = index.confirmedSettlement(event);
    if (!settlement) continue;
    if (bySeq.get(seqKey(event.queue, event.seq))!.some((other) => isNewer(other, event))) continue;
    const key = `${event.queue}/${event.group}`;
    const list = intervals.get(key) ?? [];
    list.push({ start: event.i, end: settlement.invoke.i, delivery: event });
    intervals.set(key, list);
  }
  for (const [group, list] of intervals) {
    list.sort((a, b) => a.start - b.start);
    let open = list[0];
    for (const next of list.slice(1)) {
      if (open && next.start < open.end && next.delivery.seq !== open.delivery.seq) {
        violations.push({
          property: 5,
          kind: 'group-overlap',
          message: `group ${group}: ${describeDelivery(open.delivery)} and ${describeDelivery(next.delivery)} were in flight at once (events ${open.start}..${open.end} and ${next.start}..${next.end})`,
          ids: [
            seqKey(open.delivery.queue, open.delivery.seq),
            seqKey(next.delivery.queue, next.delivery.seq),
          ],
        });
      }
      if (!open || next.end > open.end) open = next;
    }
  }
  return violations;
}

/** Property 5b: per producer and group, first deliveries follow the order publishes were confirmed in. */
function checkGroupOrder(index: HistoryIndex): Violation[] {
  const violations: Violation[] = [];
  const chains = new Map<string, MessageInfo[]>();
  for (const info of index.messages.values()) {
    if (info.group === null || !index.isConfirmed(info)) continue;
    const key = `${info.queue}/${info.group}/${info.producer}`;
    const list = chains.get(key) ?? [];
    list.push(info);
    chains.set(key, list);
  }
  const firstDelivery = (info: MessageInfo) => info.deliveries[0]?.i;
  for (const [chain, list] of chains) {
    list.sort((a, b) => a.oks[0]!.i - b.oks[0]!.i);
    for (let k = 1; k < list.length; k++) {
      const before = list[k - 1]!;
      const after = list[k]!;
      // Only publishes confirmed before the next one was even sent have an order to keep.
      if (before.oks[0]!.i > after.invokes[0]!.i) continue;
      const afterFirst = firstDelivery(after);
      if (afterFirst === undefined) continue;
      const beforeFirst = firstDelivery(before);
      // Dead-lettered without any delivery the workload saw: its place in the order was never observable.
      if (beforeFirst === undefined && before.dlqDeliveries.length > 0) continue;
      if (beforeFirst !== undefined && beforeFirst < afterFirst) continue;
      violations.push({
        property: 5,
        kind: 'group-order',
        message: `${chain}: ${after.pid} (confirmed after ${before.pid}) was first delivered at event ${afterFirst}, ${before.pid} ${beforeFirst === undefined ? 'never' : `only at event ${beforeFirst}`}`,
        ids: [before.pid, after.pid],
      });
    }
  }
  return violations;
}

/** Property 6: replicas converge, queues drain, the cluster serves again within the bound. */
function checkRecovery(final: FinalState): Violation[] {
  const violations: Violation[] = [];
  const states = new Set(final.nodes.map((n) => `${n.appliedIndex}/${n.digest}`));
  if (final.nodes.length === 0 || states.size > 1) {
    violations.push({
      property: 6,
      kind: 'diverged',
      message: `members disagree after the heal: ${final.nodes.map((n) => `${n.id} applied ${n.appliedIndex} digest ${n.digest}`).join('; ') || 'no member answered'}`,
      ids: final.nodes.map((n) => n.id),
    });
  }
  const bound = final.recoveryBoundMs;
  if (final.convergedMs === null || final.convergedMs > bound) {
    violations.push({
      property: 6,
      kind: 'slow-convergence',
      message: `members reported one applied index and digest ${final.convergedMs === null ? 'never' : `only after ${final.convergedMs} ms`} (bound ${bound} ms)`,
      ids: [],
    });
  }
  if (final.servedAgainMs === null || final.servedAgainMs > bound) {
    violations.push({
      property: 6,
      kind: 'unavailable-after-heal',
      message: `the cluster ${final.servedAgainMs === null ? 'never served' : `served only ${final.servedAgainMs} ms`} after the heal (bound ${bound} ms)`,
      ids: [],
    });
  }
  for (const queue of final.queues) {
    if (queue.depth === 0) continue;
    const holds =
      queue.depth < 0
        ? 'could not be read from any member'
        : `still holds ${queue.depth} messages (${queue.inFlight} in flight, ${queue.delayed} delayed)`;
    violations.push({
      property: 6,
      kind: 'not-drained',
      message: `${queue.name} ${holds} after the drain`,
      ids: [queue.name],
    });
  }
  const reported = new Set(final.nodes.map((n) => n.id));
  for (const id of final.members ?? []) {
    if (reported.has(id)) continue;
    violations.push({
      property: 6,
      kind: 'member-silent',
      message: `member ${id} did not report its applied index and digest`,
      ids: [id],
    });
  }
  for (const crash of final.crashes ?? []) {
    violations.push({
      property: 6,
      kind: 'node-crashed',
      message: `${crash.id} ${crash.detail}`,
      ids: [crash.id],
    });
  }
  for (const error of final.faultErrors ?? []) {
    violations.push({
      property: 6,
      kind: 'fault-failed',
      message: `the cluster could not go through fault ${error}`,
      ids: [],
    });
  }
  return violations;
}

function unavailability(index: HistoryIndex, thresholdMs: number): UnavailabilityWindow[] {
  const from = index.phases.get('workload-start') ?? 0;
  const to = index.phases.get('drain-start') ?? Number.POSITIVE_INFINITY;
  const times = index.publishOkTimes.filter((t) => t >= from && t <= to).sort((a, b) => a - b);
  const windows: UnavailabilityWindow[] = [];
  let previous = from;
  for (const t of times) {
    if (t - previous > thresholdMs) windows.push({ fromT: previous, toT: t, ms: Math.round(t - previous) });
    previous = t;
  }
  return windows;
}

function countOutcomes(index: HistoryIndex, lost: number, windows: UnavailabilityWindow[]): CheckCounts {
  let confirmed = 0;
  let failedDefinite = 0;
  let failedMaybe = 0;
  let delivered = 0;
  let duplicates = 0;
  let redeliveries = 0;
  let acked = 0;
  let deadLettered = 0;
  for (const info of index.messages.values()) {
    if (index.isConfirmed(info)) confirmed++;
    else if (index.mayBeStored(info)) failedMaybe++;
    else failedDefinite++;
    if (info.deliveries.length > 0) delivered++;
    if (info.deliveries.length > 1) duplicates++;
    redeliveries += Math.max(0, info.deliveries.length - 1);
    if (info.deliveries.some((d) => index.confirmedSettlement(d, 'ack'))) acked++;
    if (info.dlqDeliveries.length > 0) deadLettered++;
  }
  return {
    faults: index.faults,
    published: index.messages.size,
    confirmed,
    failedDefinite,
    failedMaybe,
    delivered,
    deliveries: index.deliveries.length,
    duplicates,
    redeliveries,
    acked,
    deadLettered,
    lost,
    unavailabilityWindows: windows.length,
    longestUnavailableMs: windows.reduce((max, w) => Math.max(max, w.ms), 0),
  };
}

/** Judges a campaign. Pure: same history and final state, same report. */
export function checkHistory(
  events: readonly HistoryEvent[],
  final: FinalState,
  options: CheckOptions = {},
): CheckReport {
  const index = new HistoryIndex(events, final);
  const lost = checkNothingLost(index, final);
  const afterAck = checkNoRedeliveryAfterAck(index);
  const violations = [
    ...lost,
    ...checkNoPhantoms(index),
    ...afterAck.violations,
    ...checkStoredOnce(index),
    ...checkGroupExclusive(index),
    ...checkGroupOrder(index),
    ...checkRecovery(final),
  ];
  const windows = unavailability(index, options.unavailableAfterMs ?? 1_000);
  return {
    counts: countOutcomes(index, lost.length, windows),
    violations,
    anomalies: afterAck.anomalies,
    windows,
  };
}

/** The last line of a campaign: `chaos: F faults, C confirmed, L lost, D duplicates, V violations`. */
export function summaryLine(report: CheckReport): string {
  const { faults, confirmed, lost, duplicates } = report.counts;
  return `chaos: ${faults} faults, ${confirmed} confirmed, ${lost} lost, ${duplicates} duplicates, ${report.violations.length} violations`;
}

/** Counts, unavailability windows and every violation, for people. */
export function formatReport(report: CheckReport): string {
  const c = report.counts;
  const lines = [
    `published ${c.published} messages: ${c.confirmed} confirmed, ${c.failedMaybe} of unknown outcome, ${c.failedDefinite} refused`,
    `delivered ${c.delivered} messages in ${c.deliveries} deliveries (${c.duplicates} delivered more than once, ${c.redeliveries} redeliveries); ${c.acked} acked, ${c.deadLettered} dead-lettered`,
    `lost ${c.lost}; ${c.unavailabilityWindows} unavailability windows (longest ${c.longestUnavailableMs} ms); ${report.anomalies.length} anomalies`,
  ];
  for (const w of report.windows)
    lines.push(`  no publish confirmed from t=${w.fromT} to t=${w.toT} (${w.ms} ms)`);
  for (const a of report.anomalies) {
    lines.push(
      `ANOMALY [${a.property}] ${a.kind}: ${a.message}${a.ids.length ? ` [${a.ids.join(' ')}]` : ''}`,
    );
  }
  for (const v of report.violations) {
    lines.push(
      `VIOLATION [${v.property}] ${v.kind}: ${v.message}${v.ids.length ? ` [${v.ids.join(' ')}]` : ''}`,
    );
  }
  return lines.join('\n');
}
