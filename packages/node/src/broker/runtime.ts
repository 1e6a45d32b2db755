/**
 * The queue runtime: the application on top of the replicated log. It implements
 * `ReplicatedStateMachine` around the pure `QueueStateMachine` (apply, snapshot, restore), batches
 * the commands of every session into log entries, routes each applied command's reply back to
 * whoever submitted it, and, on the leader only, carries out the duties that keep the queues
 * moving: a `tick` entry when the state machine's next deadline passes, `releaseAllExcept` when
 * leadership is gained (leases held through other nodes come back at once) and `deliver` entries
 * for consumers with free credit on queues that have ready messages.
 *
 * Everything here runs on the event loop, one call at a time, and talks to sessions only through
 * the `ConsumerPort` / `CommandOwner` interfaces; work gathered in a turn is flushed once at its
 * end (`setImmediate`), after all I/O callbacks of that turn have run.
 */
import { FlotillaError } from '@flotilla/shared';
import type {
  AppliedEntry,
  NodeStatus,
  ReplicatedLog,
  ReplicatedStateMachine,
  SnapshotSource,
} from '../cluster/types.js';
import type { NodeMetrics } from '../metrics/metrics.js';
import {
  type Command,
  type Effect,
  type PublishMessage,
  QueueStateMachine,
  type Reply,
  SnapshotLoader,
} from '../queues/index.js';
import { DEFAULT_LIMITS as DEFAULT_RAFT_LIMITS } from '../raft/index.js';
import { type Logger, silentLogger } from '../runtime/logger.js';
import { type Clock, systemClock, type TimerHandle, type TimerWheel } from '../runtime/timer-wheel.js';
import { ProposalBatcher, type ProposeRefused } from './batcher.js';
import { ConsumerRegistry, PullRequest, type Subscription } from './consumers.js';
import {
  type CommandOwner,
  type ConsumerPort,
  commandSizeBytes,
  DEFAULT_RUNTIME_LIMITS,
  type RuntimeLimits,
} from './types.js';

export interface QueueRuntimeOptions {
  /** This node's id (consumer ids start with it). */
  nodeId: string;
  /**
   * The replicated log. May be attached later with `attachLog` when the log needs the runtime (its
   * state machine) to be built first; until then the node serves no leader-only request.
   */
  log?: ReplicatedLog;
  /** One timer structure per node, shared with the gateway. */
  timers: TimerWheel;
  clock?: Clock;
  logger?: Logger;
  metrics?: NodeMetrics | null;
  limits?: Partial<RuntimeLimits>;
}

/** Where leadership stands, from this runtime's point of view. */
type Leadership =
  | { kind: 'follower' }
  /** Leader in `term`; duties wait until our first entry of the term is applied (state caught up). */
  | { kind: 'starting'; term: number }
  | { kind: 'leading'; term: number };

export class QueueRuntime implements ReplicatedStateMachine {
  private sm = new QueueStateMachine();
  private appliedIndex = 0;
  private log: ReplicatedLog | null = null;
  private readonly timers: TimerWheel;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly metrics: NodeMetrics | null;
  private readonly limits: RuntimeLimits;
  private readonly batcher: ProposalBatcher;
  private readonly consumers: ConsumerRegistry;
  private leadership: Leadership = { kind: 'follower' };
  private flushScheduled = false;
  /** Queues to look at in this turn's delivery round. */
  private readonly marked = new Set<string>();
  /**
   * Messages published this turn (not yet proposed, deliverable at once) per queue with consumers:
   * the turn's deliver commands follow them in the same entry and may lease them on arrival.
   */
  private readonly arriving = new Map<string, number>();
  private tickTimer: TimerHandle | null = null;
  private tickInFlight = false;
  private retryTimer: TimerHandle | null = null;
  private readonly lostListeners: ((status: NodeStatus) => void)[] = [];
  private readonly statusListeners: ((status: NodeStatus) => void)[] = [];
  private unsubscribeStatus: () => void = () => {};
  private readBarrierShared: Promise<void> | null = null;
  private stopped = false;
  /** Set at the start of a shutdown: no new deliveries, so the log can drain. */
  private deliveriesStopped = false;

  /** Runtime-internal commands (tick, releaseAllExcept, release): their answers come back here. */
  private readonly internal: CommandOwner = {
    commandApplied: (token, command, reply) => this.internalApplied(token, command, reply),
    commandFailed: (token, error) => this.internalFailed(token, error),
  };

  readonly nodeId: string;

  constructor(options: QueueRuntimeOptions) {
    this.nodeId = options.nodeId;
    this.timers = options.timers;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger;
    this.metrics = options.metrics ?? null;
    this.limits = { ...DEFAULT_RUNTIME_LIMITS, ...options.limits };
    // The batcher's view of the log, which may be attached after the runtime is built.
    const attached = () => this.log;
    const proposer = {
      tryPropose: (data: Uint8Array) => attached()?.tryPropose(data) ?? NO_LOG,
      get maxEntryBytes() {
        return attached()?.maxEntryBytes ?? DEFAULT_RAFT_LIMITS.maxEntryBytes;
      },
    };
    this.batcher = new ProposalBatcher(proposer, this.clock, this.limits, {
      scheduleFlush: () => this.scheduleFlush(),
      refusedError: (refusal) => this.refusedError(refusal),
      proposed: (commands) => this.metrics?.proposalsBatched.observe(commands),
      committed: (seconds) => this.metrics?.commitSeconds.observe(seconds),
    });
    this.consumers = new ConsumerRegistry(
      {
        deliverableCount: (queue) => this.sm.deliverableCount(queue),
        proposeDeliver: (queue, consumerId, max, leaseMs, owner, token) =>
          this.batcher.submit({ op: 'deliver', queue, consumerId, max, leaseMs }, owner, token, 64),
        markQueue: (queue) => this.markQueue(queue),
        nowMs: () => this.clock.now(),
        delivered: (queue, count) => this.metrics?.delivered.inc({ queue }, count),
      },
      this.limits.maxDeliverBatch,
    );
    if (options.log !== undefined) this.attachLog(options.log);
  }

  /** Connects the replicated log (once): from now on leadership changes drive the runtime. */
  attachLog(log: ReplicatedLog): void {
    if (this.log !== null) throw new Error('the runtime already has a log');
    if (log.nodeId !== this.nodeId)
      throw new Error(`log of node ${log.nodeId} given to runtime of ${this.nodeId}`);
    // Entries are cut at the soft cap; only a single large command goes past it, and the batcher
    // refuses one the log could not take. A soft cap at or above the log's limit is a mistake.
    if (this.limits.maxEntryBytes >= log.maxEntryBytes) {
      throw new Error(
        `runtime entries of up to ${this.limits.maxEntryBytes} bytes do not fit the log's limit of ${log.maxEntryBytes} bytes`,
      );
    }
    this.log = log;
    this.unsubscribeStatus = log.onStatusChange((status) => this.statusChanged(status));
    this.statusChanged(log.status());
  }

  // -------------------------------------------------------------------------------------------
  // Reads for the gateway

  /** The local state (read-only use: reads, stats, peek). Replaced on restore. */
  get state(): QueueStateMachine {
    return this.sm;
  }

  /** Index of the last entry applied to the local state. */
  get lastAppliedIndex(): number {
    return this.appliedIndex;
  }

  /** True while this node is the leader (it may still be catching up its duties). */
  get isLeader(): boolean {
    return this.leadership.kind !== 'follower';
  }

  /** True once this node leads and has applied its first entry of the term (leader duties running). */
  get dutiesActive(): boolean {
    return this.leadership.kind === 'leading';
  }

  /** The log's view of the cluster; before a log is attached, a follower that knows no leader. */
  status(): NodeStatus {
    return this.log?.status() ?? detachedStatus(this.nodeId, this.appliedIndex);
  }

  /** The error a follower answers leader-only requests with, naming the leader when known. */
  notLeaderError(): FlotillaError {
    const status = this.status();
    const leaderUrl = status.leaderAddress === null ? null : clientUrl(status.leaderAddress);
    return new FlotillaError('NOT_LEADER', `node ${status.nodeId} is not the leader`, {
      leaderId: status.leaderId === status.nodeId ? null : status.leaderId,
      leaderUrl: status.leaderId === status.nodeId ? null : leaderUrl,
    });
  }

  /**
   * What the owners of commands the log refused hear: OVERLOADED when it has too much uncommitted
   * (retry here, with backoff: this node still leads), NOT_LEADER naming the transfer's target
   * during a hand-over, else NOT_LEADER naming the leader as this node knows it.
   */
  private refusedError(refusal: ProposeRefused): FlotillaError {
    if (refusal.reason === 'overloaded') {
      return new FlotillaError(
        'OVERLOADED',
        `node ${this.nodeId} has too much waiting to be committed; retry with backoff`,
        { reason: refusal.reason },
      );
    }
    if (refusal.reason === 'transferring') {
      const { leaderId, leaderAddress } = refusal;
      return new FlotillaError(
        'NOT_LEADER',
        `node ${this.nodeId} is handing leadership over${leaderId === null ? '' : ` to ${leaderId}`}`,
        { leaderId, leaderUrl: leaderAddress === null ? null : clientUrl(leaderAddress) },
      );
    }
    return this.notLeaderError();
  }

  /**
   * Resolves once everything committed before the call is applied here (a linearizable read point).
   * Calls in the same turn share one barrier.
   */
  readBarrier(): Promise<void> {
    if (this.readBarrierShared === null) {
      if (this.log === null) return Promise.reject(this.notLeaderError());
      const barrier = this.log.readBarrier();
      this.readBarrierShared = barrier;
      const clear = () => {
        if (this.readBarrierShared === barrier) this.readBarrierShared = null;
      };
      barrier.then(clear, clear);
      queueMicrotask(clear);
    }
    return this.readBarrierShared;
  }

  /** Listeners called after this node stopped being leader (pending work already failed). */
  onLeadershipLost(listener: (status: NodeStatus) => void): () => void {
    return addListener(this.lostListeners, listener);
  }

  /**
   * Listeners called after every status change of the log (role, term, leader), once the runtime
   * has reacted to it; e.g. to learn who leads after this node stepped down without knowing.
   */
  onStatusChange(listener: (status: NodeStatus) => void): () => void {
    return addListener(this.statusListeners, listener);
  }

  /** The prefix of consumer ids made by this node in the current term: `<nodeId>:<term>:`. */
  consumerPrefix(): string | null {
    return this.leadership.kind === 'follower' ? null : `${this.nodeId}:${this.leadership.term}:`;
  }

  // -------------------------------------------------------------------------------------------
  // Commands from sessions

  /**
   * Queues `command` for this turn's entry; `owner.commandApplied(token, ...)` or
   * `owner.commandFailed(token, ...)` follows exactly once. Refuses (returns the error, submits
   * nothing) when this node is not the leader or too much is already in flight.
   */
  submit(command: Command, owner: CommandOwner, token: number): FlotillaError | null {
    if (this.stopped) return new FlotillaError('UNAVAILABLE', 'the node is shutting down');
    if (!this.isLeader) return this.notLeaderError();
    const sizeBytes = commandSizeBytes(command);
    if (this.batcher.wouldOverload(sizeBytes)) {
      return new FlotillaError('OVERLOADED', 'too many commands waiting for the log; retry with backoff', {
        pendingBytes: this.batcher.pendingCommandBytes,
      });
    }
    this.batcher.submit(command, owner, token, sizeBytes);
    if (command.op === 'publish') this.noteArriving(command.queue, command.messages);
    return null;
  }

  /**
   * Counts a publish's messages that will be deliverable as soon as they are stored (no delay), if
   * the queue has consumers, and marks the queue: the turn's delivery round may then ask for them
   * in the publish's own entry, so publish and delivery share one commit instead of taking two.
   */
  private noteArriving(queue: string, messages: readonly PublishMessage[]): void {
    if (this.leadership.kind !== 'leading' || !this.consumers.hasConsumers(queue)) return;
    if ((this.sm.queueOptions(queue)?.deliveryDelayMs ?? 0) > 0) return;
    let count = 0;
    for (const m of messages) if (m.delayMs == null || m.delayMs <= 0) count++;
    if (count === 0) return;
    this.arriving.set(queue, (this.arriving.get(queue) ?? 0) + count);
    this.markQueue(queue);
  }

  /** Opens a push subscription (leader only; the caller checked leadership and the queue). */
  subscribe(
    port: ConsumerPort,
    subId: number,
    queue: string,
    consumerId: string,
    prefetch: number,
  ): Subscription {
    return this.consumers.subscribe(port, subId, queue, consumerId, prefetch);
  }

  setPrefetch(sub: Subscription, prefetch: number): void {
    this.consumers.setPrefetch(sub, prefetch);
  }

  /** Stops deliveries; the port hears `unsubscribed(subId, token)` once none is in flight. */
  unsubscribe(sub: Subscription, token: number): void {
    this.consumers.unsubscribe(sub, token);
  }

  /** Forgets a subscription of a closed session (its leases are released by `releaseConsumers`). */
  dropSubscription(sub: Subscription): void {
    this.consumers.drop(sub);
  }

  /**
   * A pull: leases up to `max` messages now, or waits up to `waitMs` for some. The port hears
   * `receiveDone(token, ...)` or `commandFailed(token, ...)`. Returns the handle to cancel it.
   */
  receive(
    port: ConsumerPort,
    token: number,
    request: { queue: string; consumerId: string; max: number; waitMs: number; leaseMs: number | null },
  ): PullRequest {
    const deadlineMs = this.clock.now() + request.waitMs;
    const pull = new PullRequest(
      port,
      token,
      request.queue,
      request.consumerId,
      request.max,
      request.leaseMs,
      deadlineMs,
      this.consumers,
    );
    this.consumers.addPull(pull);
    // Without a wait the delivery round of this turn answers it (with what is there, or nothing).
    if (request.waitMs > 0) pull.timer = this.timers.at(deadlineMs, () => this.consumers.pullDeadline(pull));
    return pull;
  }

  cancelReceive(pull: PullRequest): void {
    this.consumers.cancelPull(pull);
  }

  /**
   * Releases every lease of these consumers (a session closed): proposed as one `release` with
   * `failed`, so each counts as a failed delivery toward maxDeliveries. Only the leader can.
   */
  releaseConsumers(consumerIds: string[]): void {
    if (consumerIds.length === 0 || !this.isLeader) return;
    this.submitInternal({ op: 'release', consumerIds, failed: true }, InternalToken.release);
  }

  // -------------------------------------------------------------------------------------------
  // ReplicatedStateMachine

  apply(entry: AppliedEntry): void {
    if (entry.index <= this.appliedIndex) {
      throw new Error(`entry ${entry.index} applied after ${this.appliedIndex}: the log went backwards`);
    }
    this.appliedIndex = entry.index;
    const result = this.sm.applyEncoded(entry.data);
    if (result.decodeError !== null) {
      this.logger.error({ index: entry.index, error: result.decodeError }, 'skipped an undecodable entry');
    }
    this.handleEffects(result.effects);
    const batch = this.batcher.resolve(entry.index, entry.term);
    if (batch !== null) {
      if (result.decodeError !== null) {
        throw new Error(`our own entry ${entry.index} could not be decoded: ${result.decodeError}`);
      }
      this.settleAcks(batch.commands, result.replies);
      ProposalBatcher.deliverReplies(batch, result.replies);
    }
    if (this.leadership.kind === 'leading') this.armTick();
    if (this.marked.size > 0) this.scheduleFlush();
  }

  snapshot(): SnapshotSource {
    const snapshot = this.sm.snapshot();
    return { index: this.appliedIndex, next: () => snapshot.nextChunk() };
  }

  async restore(chunks: AsyncIterable<Uint8Array>, index: number): Promise<void> {
    const loader = new SnapshotLoader();
    for await (const chunk of chunks) loader.push(chunk);
    this.sm = loader.finish();
    this.appliedIndex = index;
    // Whatever we had in flight is now either inside the snapshot or lost: we cannot tell which.
    this.batcher.failAll(maybeAppliedError('a snapshot replaced the state'), this.notLeaderError());
    this.logger.info({ index }, 'restored the queue state from a snapshot');
    if (this.leadership.kind === 'leading') this.armTick();
  }

  // -------------------------------------------------------------------------------------------
  // Leadership

  private statusChanged(status: NodeStatus): void {
    if (this.stopped) return;
    const current = this.leadership;
    const leaderNow = status.role === 'leader';
    if (current.kind !== 'follower' && (!leaderNow || status.term !== current.term)) {
      this.loseLeadership(status);
    }
    if (leaderNow && this.leadership.kind === 'follower') this.gainLeadership(status.term);
    for (const listener of [...this.statusListeners]) listener(status);
  }

  private gainLeadership(term: number): void {
    this.leadership = { kind: 'starting', term };
    this.logger.info({ term }, 'leading: releasing leases held through other nodes');
    this.proposeLeadershipStart();
  }

  /**
   * Our first entry of the term: releases every lease not made by this node in this term. Once it
   * is applied, everything committed before is applied too, and the duties start.
   */
  private proposeLeadershipStart(): void {
    const prefix = this.consumerPrefix();
    if (prefix === null) return;
    this.submitInternal({ op: 'releaseAllExcept', ownerPrefix: prefix }, InternalToken.leadershipStart);
  }

  private startDuties(): void {
    if (this.leadership.kind !== 'starting') return;
    this.leadership = { kind: 'leading', term: this.leadership.term };
    this.logger.info({ term: this.leadership.term }, 'leader duties started');
    for (const queue of this.consumers.queues()) this.markQueue(queue);
    this.armTick();
    this.scheduleFlush();
  }

  private loseLeadership(status: NodeStatus): void {
    const term = this.leadership.kind === 'follower' ? 0 : this.leadership.term;
    this.leadership = { kind: 'follower' };
    this.logger.info({ term, leaderId: status.leaderId }, 'no longer leading');
    this.cancelTimers();
    this.tickInFlight = false;
    this.marked.clear();
    this.arriving.clear();
    const notLeader = this.notLeaderError();
    this.batcher.failAll(maybeAppliedError('this node lost leadership'), notLeader);
    this.consumers.clear(notLeader);
    for (const listener of [...this.lostListeners]) listener(status);
  }

  private cancelTimers(): void {
    this.tickTimer?.cancel();
    this.tickTimer = null;
    this.retryTimer?.cancel();
    this.retryTimer = null;
  }

  // -------------------------------------------------------------------------------------------
  // Ticks

  /** Keeps one timer armed for the state machine's next deadline (re-armed only if it moved earlier). */
  private armTick(): void {
    if (this.tickInFlight) return;
    const deadline = this.sm.nextDeadline();
    if (deadline === null) return;
    if (this.tickTimer !== null) {
      if (this.tickTimer.deadlineMs <= deadline) return;
      this.tickTimer.cancel();
    }
    this.tickTimer = this.timers.at(deadline, this.tickDue);
  }

  private readonly tickDue = (): void => {
    this.tickTimer = null;
    if (this.leadership.kind !== 'leading' || this.tickInFlight) return;
    const deadline = this.sm.nextDeadline();
    if (deadline === null) return;
    if (deadline > this.clock.now()) {
      this.armTick();
      return;
    }
    this.tickInFlight = true;
    this.submitInternal({ op: 'tick' }, InternalToken.tick);
  };

  // -------------------------------------------------------------------------------------------
  // Internal commands

  private submitInternal(command: Command, token: InternalToken): void {
    this.batcher.submit(command, this.internal, token, commandSizeBytes(command));
  }

  private internalApplied(token: number, command: Command, reply: Reply): void {
    if (!reply.ok) {
      this.logger.error(
        { op: command.op, code: reply.code, message: reply.message },
        'internal command refused',
      );
    }
    if (token === InternalToken.leadershipStart) this.startDuties();
    if (token === InternalToken.tick) {
      this.tickInFlight = false;
      if (this.leadership.kind === 'leading') this.armTick();
    }
  }

  private internalFailed(token: number, error: FlotillaError): void {
    if (token === InternalToken.tick) {
      this.tickInFlight = false;
      if (this.leadership.kind === 'leading') {
        // Not at once: the log just refused a proposal, give it a moment.
        this.tickTimer?.cancel();
        this.tickTimer = this.timers.after(this.limits.leadershipRetryMs, this.tickDue);
      }
    }
    if (token === InternalToken.leadershipStart && this.leadership.kind === 'starting') {
      // The log refused it (e.g. a transfer is under way): try again shortly while still leader.
      this.logger.warn({ code: error.code }, 'leadership start entry not accepted; retrying');
      this.retryTimer?.cancel();
      this.retryTimer = this.timers.after(this.limits.leadershipRetryMs, () => {
        this.retryTimer = null;
        if (this.leadership.kind === 'starting') this.proposeLeadershipStart();
      });
    }
    if (token === InternalToken.release) {
      this.logger.warn({ code: error.code }, 'release of a closed session was not applied');
    }
  }

  // -------------------------------------------------------------------------------------------
  // Effects and settlements

  private handleEffects(effects: readonly Effect[]): void {
    const leading = this.leadership.kind !== 'follower';
    for (const effect of effects) {
      switch (effect.type) {
        case 'queueReady':
          if (leading) this.markQueue(effect.queue);
          break;
        case 'leasesEnded':
          if (leading) this.consumers.leasesEnded(effect.consumerId, effect.seqs);
          break;
        case 'queueDeleted':
          if (leading) this.consumers.queueDeleted(effect.queue);
          break;
        default:
          break;
      }
    }
  }

  /** Successful acks and nacks of our own commands free the credit their deliveries held. */
  private settleAcks(commands: readonly Command[], replies: readonly Reply[]): void {
    for (let i = 0; i < commands.length; i++) {
      const command = commands[i]!;
      if (command.op !== 'ack' && command.op !== 'nack') continue;
      const reply = replies[i]!;
      if (!reply.ok || (reply.op !== 'ack' && reply.op !== 'nack')) continue;
      const items = command.items;
      for (let j = 0; j < items.length; j++) {
        if (reply.results[j]?.ok) this.consumers.settled(items[j]!.deliveryId, items[j]!.seq);
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // The end of a turn

  private markQueue(queue: string): void {
    if (this.leadership.kind === 'follower') return;
    this.marked.add(queue);
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(this.flush);
  }

  /** Runs the delivery rounds of the turn, then proposes everything gathered as entries. */
  private readonly flush = (): void => {
    if (this.leadership.kind === 'leading' && this.marked.size > 0 && !this.deliveriesStopped) {
      const queues = [...this.marked];
      this.marked.clear();
      for (const queue of queues) this.consumers.deliveryRound(queue, this.arriving.get(queue) ?? 0);
    }
    this.arriving.clear();
    this.batcher.flush();
    this.flushScheduled = false;
    // Refusals inside the flush may have queued more (e.g. a retry): take it next turn.
    if (this.batcher.queuedCommands > 0) this.scheduleFlush();
    // Last, once a new flush can be scheduled: the log may apply committed entries right here,
    // and what they mark (a queue whose consumer got credit back) needs a flush of its own.
    this.log?.sendProposals?.();
  };

  /**
   * First step of a shutdown: no new deliveries are proposed (leases already made stay), so the
   * commands in flight can drain to zero while clients are still connected.
   */
  stopDeliveries(): void {
    this.deliveriesStopped = true;
    this.marked.clear();
  }

  /**
   * Stops the runtime: pending proposals fail (maybe applied), no more commands are taken. Call
   * after the gateway finished its in-flight confirms (see the gateway's shutdown).
   */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.unsubscribeStatus();
    this.cancelTimers();
    const error = new FlotillaError('UNAVAILABLE', 'the node is shutting down');
    this.batcher.failAll(maybeAppliedError('the node is shutting down'), error);
    this.consumers.clear(error);
  }

  /** Commands proposed and not yet applied (the gateway's shutdown waits for 0). */
  get pendingCommands(): number {
    return this.batcher.inFlightEntries + this.batcher.queuedCommands;
  }
}

function detachedStatus(nodeId: string, appliedIndex: number): NodeStatus {
  return {
    nodeId,
    role: 'follower',
    term: 0,
    leaderId: null,
    leaderAddress: null,
    commitIndex: appliedIndex,
    appliedIndex,
    lastIndex: appliedIndex,
    snapshotIndex: 0,
    members: [],
  };
}

/** What proposing answers before a log is attached. */
const NO_LOG: ProposeRefused = { ok: false, reason: 'not-leader', leaderId: null, leaderAddress: null };

/** Tokens of runtime-internal commands. */
const InternalToken = {
  tick: 1,
  leadershipStart: 2,
  release: 3,
} as const;
type InternalToken = (typeof InternalToken)[keyof typeof InternalToken];

function maybeAppliedError(why: string): FlotillaError {
  return new FlotillaError(
    'TIMEOUT',
    `${why} before the request was confirmed; it may or may not have been applied`,
  );
}

/** The client URL of a node from its advertised `host:port`. */
function clientUrl(address: string): string {
  return `ws://${address}/client`;
}

/** Adds `listener` to `listeners`; returns the function that removes it. */
function addListener<T>(listeners: ((value: T) => void)[], listener: (value: T) => void): () => void {
  listeners.push(listener);
  return () => {
    const at = listeners.indexOf(listener);
    if (at >= 0) listeners.splice(at, 1);
  };
}
