/**
 * The leader's consumers: push subscriptions with their credit windows and pull requests waiting
 * for messages, grouped by queue. The registry decides who gets the next deliver proposal:
 * only queues marked as worth a look (a queueReady effect, credit freed, a deliver that left
 * messages behind) are visited, never all queues per turn, and each visit asks for no more than
 * the queue can currently give, so one message does not wake a thousand waiters.
 *
 * Credit accounting follows docs/protocol.md: a subscription may hold at most `prefetch` leased,
 * unsettled deliveries; a delivery is settled by ack, nack or the end of its lease. The registry
 * keeps, per subscription, the unsettled deliveries (seq → deliveryId) plus a deliveryId index so
 * an ack from any session frees the right slot. Both are bounded by the windows.
 */
import { type ErrorCode, FlotillaError, isErrorCode } from '@flotilla/shared';
import type { Command, DeliveredMessage, Reply } from '../queues/index.js';
import type { TimerHandle } from '../runtime/timer-wheel.js';
import type { CommandOwner, ConsumerPort } from './types.js';

/** A push subscription as the runtime tracks it. */
export class Subscription implements CommandOwner {
  /** Unsettled deliveries: seq → deliveryId. */
  readonly unsettled = new Map<number, number>();
  /** Messages asked for by deliver proposals not yet applied. */
  requested = 0;
  /** No new deliveries (unsubscribed or ended); waits for `requested` to reach 0 when unsubscribing. */
  closed = false;
  /** Token of the unsubscribe request to answer once `requested` is 0, or -1. */
  unsubscribeToken = -1;

  constructor(
    readonly port: ConsumerPort,
    readonly subId: number,
    readonly queue: string,
    readonly consumerId: string,
    public prefetch: number,
    private readonly registry: ConsumerRegistry,
  ) {}

  /** How many more messages it may be sent now. */
  get freeCredit(): number {
    if (this.closed || this.port.congested) return 0;
    return this.prefetch - this.unsettled.size - this.requested;
  }

  commandApplied(_token: number, command: Command, reply: Reply): void {
    this.registry.deliverApplied(this, command, reply);
  }

  /** The token of a subscription's deliver proposal is the number of messages it asked for. */
  commandFailed(token: number, _error: FlotillaError): void {
    this.registry.deliverFailed(this, token);
  }
}

/** A `receive` waiting for messages (parked) or for its deliver proposal (proposed). */
export class PullRequest implements CommandOwner {
  proposed = false;
  /** Messages its deliver proposal in flight asked for. */
  askedMax = 0;
  done = false;
  timer: TimerHandle | null = null;

  constructor(
    readonly port: ConsumerPort,
    readonly token: number,
    readonly queue: string,
    readonly consumerId: string,
    readonly max: number,
    readonly leaseMs: number | null,
    readonly deadlineMs: number,
    private readonly registry: ConsumerRegistry,
  ) {}

  commandApplied(_token: number, command: Command, reply: Reply): void {
    this.registry.pullApplied(this, command, reply);
  }

  commandFailed(_token: number, error: FlotillaError): void {
    this.registry.pullFailed(this, error);
  }
}

/** Consumers of one queue. */
class QueueConsumers {
  readonly subs: Subscription[] = [];
  /** Parked pulls, oldest first. */
  readonly pulls: PullRequest[] = [];
  /** Messages asked for by deliver proposals on this queue not yet applied. */
  requested = 0;
  /** Where the next round starts, so credit is shared round-robin. */
  nextSub = 0;

  get empty(): boolean {
    return this.subs.length === 0 && this.pulls.length === 0 && this.requested === 0;
  }
}

/** What the registry needs from the runtime. */
export interface RegistryHost {
  /** Messages a deliver on `queue` could lease now. */
  deliverableCount(queue: string): number;
  /** Queue a deliver command for this turn's entry. */
  proposeDeliver(
    queue: string,
    consumerId: string,
    max: number,
    leaseMs: number | null,
    owner: CommandOwner,
    token: number,
  ): void;
  /** Ask for a delivery round for `queue` at the end of this turn. */
  markQueue(queue: string): void;
  /** Wall clock, ms. */
  nowMs(): number;
  /** Messages handed to consumers, for metrics. */
  delivered(queue: string, count: number): void;
}

export class ConsumerRegistry {
  private readonly byQueue = new Map<string, QueueConsumers>();
  private readonly byConsumer = new Map<string, Subscription>();
  /** Unsettled push deliveries: deliveryId → subscription. */
  private readonly leasedTo = new Map<number, Subscription>();

  constructor(
    private readonly host: RegistryHost,
    private readonly maxDeliverBatch: number,
  ) {}

  get subscriptionCount(): number {
    return this.byConsumer.size;
  }

  /** True when `queue` has a subscription or a parked pull. */
  hasConsumers(queue: string): boolean {
    const consumers = this.byQueue.get(queue);
    return consumers !== undefined && (consumers.subs.length > 0 || consumers.pulls.length > 0);
  }

  // -------------------------------------------------------------------------------------------
  // Registration

  subscribe(port: ConsumerPort, subId: number, queue: string, consumerId: string, prefetch: number) {
    const sub = new Subscription(port, subId, queue, consumerId, prefetch, this);
    this.consumersOf(queue).subs.push(sub);
    this.byConsumer.set(consumerId, sub);
    this.host.markQueue(queue);
    return sub;
  }

  setPrefetch(sub: Subscription, prefetch: number): void {
    sub.prefetch = prefetch;
    if (sub.freeCredit > 0) this.host.markQueue(sub.queue);
  }

  /**
   * Stops deliveries to `sub`. Leases it holds stay (docs/protocol.md: they can still be settled).
   * The port hears `unsubscribed(token)` once no deliver for it is in flight, so no delivery
   * reaches the client after the unsubscribe reply.
   */
  unsubscribe(sub: Subscription, token: number): void {
    this.detach(sub);
    sub.unsubscribeToken = token;
    this.maybeFinishUnsubscribe(sub);
  }

  /** Drops a subscription without any answer (its session closed). */
  drop(sub: Subscription): void {
    this.detach(sub);
  }

  private detach(sub: Subscription): void {
    if (sub.closed) return;
    sub.closed = true;
    const consumers = this.byQueue.get(sub.queue);
    if (consumers !== undefined) {
      removeItem(consumers.subs, sub);
      this.dropIfEmpty(sub.queue, consumers);
    }
    this.byConsumer.delete(sub.consumerId);
    for (const deliveryId of sub.unsettled.values()) this.leasedTo.delete(deliveryId);
    sub.unsettled.clear();
  }

  private maybeFinishUnsubscribe(sub: Subscription): void {
    if (sub.unsubscribeToken >= 0 && sub.requested === 0) {
      const token = sub.unsubscribeToken;
      sub.unsubscribeToken = -1;
      sub.port.unsubscribed(sub.subId, token);
    }
  }

  /** Parks a pull until `deadlineMs` or until its queue has messages; the caller arms the timer. */
  addPull(pull: PullRequest): void {
    this.consumersOf(pull.queue).pulls.push(pull);
    this.host.markQueue(pull.queue);
  }

  /** The pull's wait ended: answer it empty unless a deliver for it is in flight. */
  pullDeadline(pull: PullRequest): void {
    pull.timer = null;
    if (pull.done || pull.proposed) return;
    this.finishPull(pull, []);
  }

  /** Forgets a pull without answering it (its session closed). */
  cancelPull(pull: PullRequest): void {
    if (pull.done) return;
    pull.done = true;
    pull.timer?.cancel();
    this.unpark(pull);
  }

  // -------------------------------------------------------------------------------------------
  // Delivery rounds

  /**
   * Proposes deliveries for `queue`: parked pulls first (oldest first), then subscriptions with
   * credit, round-robin, never asking for more than the queue can give now plus
   * `arrivingMessages`: messages of publishes that go ahead of these deliver commands in the same
   * entry. Applied in order, such a publish stores them just before the deliver leases them, so
   * a message reaches its consumer after one commit. Asking for a message that does not arrive
   * (a duplicate, a full queue, a group already in flight) only leases fewer: the ask's credit
   * comes back when the deliver is applied.
   */
  deliveryRound(queue: string, arrivingMessages = 0): void {
    const consumers = this.byQueue.get(queue);
    if (consumers === undefined) return;
    let budget = this.host.deliverableCount(queue) + arrivingMessages - consumers.requested;
    while (budget > 0 && consumers.pulls.length > 0) {
      const pull = consumers.pulls.shift() as PullRequest;
      const max = Math.min(pull.max, budget);
      pull.proposed = true;
      pull.askedMax = max;
      consumers.requested += max;
      budget -= max;
      this.host.proposeDeliver(queue, pull.consumerId, max, pull.leaseMs, pull, pull.token);
    }
    if (consumers.pulls.length > 0) this.expirePulls(consumers);
    const subs = consumers.subs;
    for (let visited = 0; visited < subs.length && budget > 0; visited++) {
      const sub = subs[consumers.nextSub % subs.length] as Subscription;
      consumers.nextSub = (consumers.nextSub + 1) % subs.length;
      const max = Math.min(sub.freeCredit, budget, this.maxDeliverBatch);
      if (max <= 0) continue;
      sub.requested += max;
      consumers.requested += max;
      budget -= max;
      this.host.proposeDeliver(queue, sub.consumerId, max, null, sub, max);
    }
  }

  /** Pulls whose wait is over (a receive without wait, found nothing this round) are answered empty. */
  private expirePulls(consumers: QueueConsumers): void {
    const nowMs = this.host.nowMs();
    for (const pull of [...consumers.pulls]) {
      if (pull.deadlineMs <= nowMs) this.finishPull(pull, []);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Outcomes of deliver proposals

  deliverApplied(sub: Subscription, command: Command, reply: Reply): void {
    this.deliverSettled(sub, command.op === 'deliver' ? command.max : 0);
    if (reply.ok && reply.op === 'deliver') {
      const messages = reply.messages;
      if (messages.length > 0) {
        if (!sub.closed) {
          for (const m of messages) {
            sub.unsettled.set(m.seq, m.deliveryId);
            this.leasedTo.set(m.deliveryId, sub);
          }
        }
        // Pushed even after an unsubscribe: these leases are the consumer's, and the unsubscribe
        // reply is held back until they have been sent (so the client learns of them first).
        if (!sub.closed || sub.unsubscribeToken >= 0) {
          sub.port.pushDeliveries(sub.subId, sub.queue, messages);
          this.host.delivered(sub.queue, messages.length);
        }
      }
      if (reply.more || sub.freeCredit > 0) this.host.markQueue(sub.queue);
    } else if (!reply.ok && reply.code === 'QUEUE_NOT_FOUND') {
      this.endSubscription(sub, 'QUEUE_NOT_FOUND', `queue ${sub.queue} no longer exists`);
    }
    this.maybeFinishUnsubscribe(sub);
  }

  deliverFailed(sub: Subscription, max: number): void {
    this.deliverSettled(sub, max);
    this.maybeFinishUnsubscribe(sub);
  }

  /** A deliver for `sub` asking for `max` messages is no longer in flight: its count comes off the books. */
  private deliverSettled(sub: Subscription, max: number): void {
    sub.requested -= max;
    const consumers = this.byQueue.get(sub.queue);
    if (consumers !== undefined) {
      consumers.requested -= max;
      this.dropIfEmpty(sub.queue, consumers);
    }
    if (sub.requested < 0)
      throw new Error(`subscription ${sub.consumerId} requested went to ${sub.requested}`);
  }

  pullApplied(pull: PullRequest, _command: Command, reply: Reply): void {
    const max = pull.askedMax;
    pull.proposed = false;
    pull.askedMax = 0;
    const consumers = this.byQueue.get(pull.queue);
    if (consumers !== undefined) {
      consumers.requested -= max;
      this.dropIfEmpty(pull.queue, consumers);
    }
    if (pull.done) return;
    if (!reply.ok) {
      this.host.markQueue(pull.queue);
      this.failPull(pull, reply.code, reply.message);
      return;
    }
    if (reply.op !== 'deliver') throw new Error(`pull got a ${reply.op} reply`);
    if (reply.messages.length > 0 || this.host.nowMs() >= pull.deadlineMs) {
      if (reply.more) this.host.markQueue(pull.queue);
      this.host.delivered(pull.queue, reply.messages.length);
      this.finishPull(pull, reply.messages);
      return;
    }
    // Someone else got the messages first: wait again for the rest of the wait.
    this.consumersOf(pull.queue).pulls.push(pull);
  }

  pullFailed(pull: PullRequest, error: FlotillaError): void {
    const consumers = this.byQueue.get(pull.queue);
    if (consumers !== undefined) {
      consumers.requested -= pull.askedMax;
      this.dropIfEmpty(pull.queue, consumers);
    }
    pull.proposed = false;
    pull.askedMax = 0;
    if (pull.done) return;
    pull.done = true;
    pull.timer?.cancel();
    pull.port.commandFailed(pull.token, error);
  }

  private finishPull(pull: PullRequest, messages: readonly DeliveredMessage[]): void {
    pull.done = true;
    pull.timer?.cancel();
    this.unpark(pull);
    pull.port.receiveDone(pull.token, pull.queue, messages);
  }

  private failPull(pull: PullRequest, code: ErrorCode | string, message: string): void {
    pull.done = true;
    pull.timer?.cancel();
    this.unpark(pull);
    pull.port.commandFailed(pull.token, errorOf(code, message));
  }

  private unpark(pull: PullRequest): void {
    const consumers = this.byQueue.get(pull.queue);
    if (consumers === undefined) return;
    removeItem(consumers.pulls, pull);
    this.dropIfEmpty(pull.queue, consumers);
  }

  // -------------------------------------------------------------------------------------------
  // Settlements and lease ends

  /** An ack or nack of `deliveryId` succeeded: the slot it held is free. */
  settled(deliveryId: number, seq: number): void {
    const sub = this.leasedTo.get(deliveryId);
    if (sub === undefined) return;
    this.leasedTo.delete(deliveryId);
    if (sub.unsettled.get(seq) === deliveryId) sub.unsettled.delete(seq);
    this.host.markQueue(sub.queue);
  }

  /** Leases of `consumerId` ended without a settlement (expired or released). */
  leasesEnded(consumerId: string, seqs: readonly number[]): void {
    const sub = this.byConsumer.get(consumerId);
    if (sub === undefined) return;
    for (const seq of seqs) {
      const deliveryId = sub.unsettled.get(seq);
      if (deliveryId === undefined) continue;
      sub.unsettled.delete(seq);
      this.leasedTo.delete(deliveryId);
    }
    this.host.markQueue(sub.queue);
  }

  /** The queue is gone: its subscriptions end and its parked pulls fail. */
  queueDeleted(queue: string): void {
    const consumers = this.byQueue.get(queue);
    if (consumers === undefined) return;
    for (const sub of [...consumers.subs]) {
      this.endSubscription(sub, 'QUEUE_NOT_FOUND', `queue ${queue} was deleted`);
    }
    for (const pull of [...consumers.pulls])
      this.failPull(pull, 'QUEUE_NOT_FOUND', `queue ${queue} was deleted`);
  }

  private endSubscription(sub: Subscription, code: ErrorCode, message: string): void {
    if (sub.closed) return;
    this.detach(sub);
    sub.port.subscriptionEnded(sub.subId, code, message);
  }

  /**
   * This node stopped leading: every subscription ends (NOT_LEADER) and parked pulls fail with
   * `error`. Proposals in flight are failed by the batcher, which calls back here.
   */
  clear(error: FlotillaError): void {
    for (const sub of [...this.byConsumer.values()]) this.endSubscription(sub, 'NOT_LEADER', error.message);
    for (const consumers of [...this.byQueue.values()]) {
      for (const pull of [...consumers.pulls]) {
        pull.done = true;
        pull.timer?.cancel();
        pull.port.commandFailed(pull.token, error);
      }
      consumers.pulls.length = 0;
    }
    this.leasedTo.clear();
    for (const [queue, consumers] of this.byQueue) this.dropIfEmpty(queue, consumers);
  }

  private consumersOf(queue: string): QueueConsumers {
    let consumers = this.byQueue.get(queue);
    if (consumers === undefined) {
      consumers = new QueueConsumers();
      this.byQueue.set(queue, consumers);
    }
    return consumers;
  }

  private dropIfEmpty(queue: string, consumers: QueueConsumers): void {
    if (consumers.empty) this.byQueue.delete(queue);
  }

  /** Queues with at least one consumer (for the first round after gaining leadership). */
  queues(): string[] {
    return [...this.byQueue.keys()];
  }
}

function removeItem<T>(list: T[], item: T): void {
  const at = list.indexOf(item);
  if (at >= 0) list.splice(at, 1);
}

function errorOf(code: string, message: string): FlotillaError {
  return new FlotillaError(isErrorCode(code) ? code : 'INTERNAL', message);
}
