/**
 * The Raft driver: the actor that ties the pure Raft core to real time, durable storage, the peer
 * transport and the application, and offers the application the `ReplicatedLog` contract.
 *
 * - Time: one interval timer ticks the core every `tickMs`; election and heartbeat periods are
 *   converted to ticks.
 * - The Ready loop runs once per event-loop turn (setImmediate) after any input (a tick, peer
 *   messages, proposals, a write completing), pipelined as the core's README describes: a Ready's
 *   `messages` go out at once; its hard state, entries and snapshot chunks are queued to storage;
 *   when that write (and every earlier one) is durable its `messagesAfterPersist` go out and the
 *   core hears `persisted(id)`; committed entries are applied right away (after a restore).
 * - Snapshots: see app-runner.ts (apply, restore, local snapshots) and bootstrap.ts (the snapshot
 *   every initial member starts from). InstallSnapshot chunks to followers are read from the
 *   current snapshot file, one reader per transfer.
 * - Addresses: from `--peers`, from membership entries (AddLearner carries the address) and from
 *   the preamble of restored snapshots; peers that dial us announce theirs as a fallback.
 * - Fast failover: when the link from the current leader dropped and dialing it back fails, the
 *   core is told to forget the leader and campaigns after a short random delay (still PreVote).
 * - Failure: an I/O error from storage or a broken invariant logs fatal and stops the node.
 */
import { randomInt } from 'node:crypto';
import { FlotillaError } from '@flotilla/shared';
import {
  type ConfChange,
  ConfChangeType,
  type ConfState,
  DEFAULT_LIMITS,
  decodeConfChange,
  type Entry,
  EntryType,
  type GroupId,
  type Message,
  type NodeId,
  type RaftLimits,
  RaftNode,
  type RaftStatus,
  type Ready,
  Refusal,
  type SnapshotMessage,
  type SnapshotMeta,
  type SoftState,
} from '../raft/index.js';
import { type Logger, silentLogger } from '../runtime/logger.js';
import {
  FileStorage,
  NodeDisk,
  type RaftStorage,
  type RecoveredState,
  type SnapshotReader,
  type SnapshotWriter,
  type SyncReport,
} from '../storage/index.js';
import { AppRunner, type SnapshotEvent } from './app-runner.js';
import { bootstrap, isEmptyStorage } from './bootstrap.js';
import {
  invalidArgument,
  type LeaderHint,
  notLeader,
  outcomeUnknown,
  refused,
  unavailable,
} from './errors.js';
import { ReadWaiters } from './read-waiters.js';
import { readSnapshotPreamble } from './snapshot-format.js';
import type { PeerHandler, PeerTransport } from './transport/index.js';
import type {
  MemberStatus,
  NodeStatus,
  ProposeOutcome,
  ProposeRefusal,
  ReplicatedLog,
  ReplicatedStateMachine,
  Role,
} from './types.js';

/** Readys taken in one drive; far above what one turn produces, so only a core that never settles hits it. */
const READYS_PER_DRIVE_MAX = 100_000;
const NODE_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const HOST_PORT = /^(\[[0-9A-Fa-f:.]+\]|[^:\s/[\]]+):(\d{1,5})$/;

/** Hooks for metrics; every one is optional and called synchronously (keep them cheap). */
export interface DriverObserver {
  /** Every WAL group commit (only when the driver opened the storage itself from `dataDir`). */
  sync?(report: SyncReport): void;
  /** One of this leader's proposals was applied, `latencyMs` after `propose`. */
  committed?(latencyMs: number): void;
  /** This node learned of a new leader (a different node, or the same one in a new term). */
  leaderChanged?(leaderId: NodeId, term: number): void;
  /** A local snapshot was taken, or the state machine restored from one. */
  snapshot?(event: SnapshotEvent): void;
}

export interface RaftDriverOptions {
  nodeId: NodeId;
  /** `host:port` peers use to reach this node (`--advertise`). */
  advertise: string;
  /**
   * `--peers`: the initial voters with their addresses, this node included, identical on every
   * initial member. With `join`, addresses of existing members to start from (hints only).
   */
  peers: ReadonlyMap<NodeId, string>;
  /** Do not bootstrap a new cluster: wait to be added by a leader (`--join`). */
  join?: boolean;
  /** Directory for the log, hard state and snapshots; or give `storage`. */
  dataDir?: string;
  /** A storage not yet recovered (tests, the simulator's disk); `dataDir` is ignored then. */
  storage?: RaftStorage;
  /** Carries this group's messages; the driver closes it on stop. */
  transport: PeerTransport;
  app: ReplicatedStateMachine;
  tickMs: number;
  electionTimeoutMs: number;
  heartbeatMs: number;
  /** Take a snapshot and compact after this many bytes of applied entries since the last one. */
  snapshotLogBytes: number;
  /** Overrides of the core's limits (election and heartbeat ticks come from the times above). */
  raftLimits?: Partial<RaftLimits>;
  group?: GroupId;
  logger?: Logger;
  observer?: DriverObserver;
  /** Called once when the node stops because of an error (the process should exit). */
  onFatal?: (err: Error) => void;
  /** Random integer in [0, bound) for election jitter. Default `crypto.randomInt`. */
  randomInt?: (bound: number) => number;
  /**
   * Campaign soon (instead of after a full election timeout) once the leader's link dropped and
   * dialing it failed. Default true; off only to measure what it saves.
   */
  fastFailover?: boolean;
}

export interface StopOptions {
  /** Hand leadership to another voter first if this node leads. Default true. */
  transfer?: boolean;
  /** Longest wait for the transfer. Default two election timeouts. */
  transferTimeoutMs?: number;
}

type State = 'new' | 'starting' | 'running' | 'stopping' | 'stopped' | 'failed';

interface InFlightReady {
  rd: Ready;
  /** Writes of this Ready not yet durable. */
  remaining: number;
}

interface PendingChange {
  what: string;
  index: number;
  term: number;
  resolve: () => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

interface PendingTransfer {
  target: NodeId;
  promise: Promise<void>;
  resolve: () => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export class RaftDriver implements ReplicatedLog {
  readonly nodeId: NodeId;
  readonly advertise: string;
  /** Resolves when the node has stopped: null after `stop`/`kill`, the error after a fatal one. */
  readonly closed: Promise<Error | null>;
  private resolveClosed!: (reason: Error | null) => void;

  private readonly options: RaftDriverOptions;
  private readonly group: GroupId;
  private readonly logger: Logger;
  private readonly storage: RaftStorage;
  private readonly transport: PeerTransport;
  private readonly app: ReplicatedStateMachine;
  private readonly limits: RaftLimits;
  private readonly runner: AppRunner;
  private raft: RaftNode | null = null;
  private state: State = 'new';
  private ticker: NodeJS.Timeout | null = null;
  /** The scheduled drive, if any. */
  private driveImmediate: NodeJS.Immediate | null = null;
  /** Inside `drive` (a Ready's callbacks must not start another drive). */
  private driving = false;
  private unregister: () => void = () => {};
  private starting: Promise<void> = Promise.resolve();

  // Persistence pipeline.
  private readonly inFlight: InFlightReady[] = [];
  private incomingWriter: SnapshotWriter | null = null;
  /** Snapshot readers for transfers to followers, by follower. */
  private readonly readers = new Map<NodeId, SnapshotReader>();
  /** Chunks waiting to be read and sent, by follower (the head one is being read). */
  private readonly chunkQueues = new Map<NodeId, SnapshotMessage[]>();

  // Membership and addresses.
  private readonly addresses = new Map<NodeId, string>();
  private conf: ConfState = { voters: [], learners: [] };
  private confDirty = true;
  /** Highest index of a membership entry handed to storage (a truncation below it may change membership). */
  private lastConfEntryIndex = 0;
  private readonly dialed = new Set<NodeId>();

  // Soft state as last seen.
  private role: SoftState['role'] = 'follower';
  private term = 0;
  private leaderId: NodeId | null = null;
  private notified = '';
  private lastLeaderSeen = '';

  // Operations waiting on the log.
  private readonly reads = new ReadWaiters();
  private pendingChange: PendingChange | null = null;
  private pendingTransfer: PendingTransfer | null = null;
  /** Leader: (index, time) of recent proposals, for commit latency. */
  private readonly proposedIndexes: number[] = [];
  private readonly proposedAtMs: number[] = [];
  private readonly listeners = new Set<(status: NodeStatus) => void>();

  constructor(options: RaftDriverOptions) {
    checkOptions(options);
    this.options = options;
    this.nodeId = options.nodeId;
    this.advertise = options.advertise;
    this.group = options.group ?? 1;
    this.transport = options.transport;
    this.app = options.app;
    this.logger = (options.logger ?? silentLogger).child({ component: 'raft' });
    this.limits = { ...DEFAULT_LIMITS, ...options.raftLimits, ...timingTicks(options) };
    this.storage =
      options.storage ??
      new FileStorage({
        disk: new NodeDisk(options.dataDir!),
        onSync:
          options.observer?.sync === undefined ? undefined : (report) => options.observer!.sync!(report),
      });
    for (const [id, address] of options.peers) this.addresses.set(id, address);
    this.addresses.set(this.nodeId, this.advertise);
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
    this.runner = new AppRunner({
      storage: this.storage,
      app: this.app,
      logger: this.logger,
      snapshotLogBytes: options.snapshotLogBytes,
      snapshotMetaAt: (index) => this.raft!.snapshotMetaAt(index),
      snapshotTaken: (meta, sizeBytes) => this.snapshotTaken(meta, sizeBytes),
      addressBook: (meta) => this.addressBook(meta.conf),
      learnedAddresses: (book) => this.learnAddresses(book),
      confChangeApplied: (entry, change) => this.confChangeApplied(entry, change),
      appliedTo: (index, entry) => this.appliedTo(index, entry),
      snapshotEvent: (event) => this.options.observer?.snapshot?.(event),
      fail: (err) => this.fail(err),
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Lifecycle

  /**
   * Recovers storage (bootstrapping a new cluster on an initial member's first start), starts the
   * core, registers with the transport and starts ticking. Rejects on corrupt storage.
   */
  start(): Promise<void> {
    if (this.state !== 'new') throw new Error(`driver of ${this.nodeId} already started`);
    this.state = 'starting';
    this.starting = this.recoverAndStart();
    return this.starting;
  }

  private async recoverAndStart(): Promise<void> {
    try {
      let recovered = this.storage.recover();
      let snapshotSizeBytes = snapshotSize(this.storage);
      if (!this.options.join && isEmptyStorage(recovered)) {
        this.logger.info(
          { voters: [...this.options.peers.keys()] },
          'empty storage: bootstrapping a new cluster',
        );
        ({ recovered, snapshotSizeBytes } = await bootstrap(this.storage, this.options.peers, this.app));
      }
      await this.readAddressBook();
      this.startCore(recovered, snapshotSizeBytes);
    } catch (err) {
      this.state = 'failed';
      this.resolveClosed(err as Error);
      throw err;
    }
  }

  /** Where the snapshot's members are, known before any link is needed (the restore reads it again). */
  private async readAddressBook(): Promise<void> {
    const reader = this.storage.openSnapshot();
    if (reader === null) return;
    try {
      const { addresses } = await readSnapshotPreamble(reader);
      for (const [id, address] of addresses) if (!this.addresses.has(id)) this.addresses.set(id, address);
    } finally {
      reader.close();
    }
  }

  private startCore(recovered: RecoveredState, snapshotSizeBytes: number): void {
    for (const entry of recovered.entries) if (entry.type === EntryType.ConfChange) this.noteConfEntry(entry);
    this.raft = new RaftNode({
      id: this.nodeId,
      group: this.group,
      initialVoters: this.options.join ? [] : [...this.options.peers.keys()],
      recovered,
      snapshotSizeBytes,
      randomInt: this.options.randomInt ?? ((bound) => randomInt(bound)),
      logger: this.logger,
      limits: this.limits,
    });
    this.term = this.raft.status().term;
    this.unregister = this.transport.registerGroup(this.group, this.peerHandler);
    this.state = 'running';
    this.ticker = setInterval(this.tick, this.options.tickMs);
    this.logger.info(
      { term: this.term, snapshot: recovered.snapshot?.index ?? 0, entries: recovered.entries.length },
      'raft node started',
    );
    this.scheduleDrive();
  }

  /**
   * Graceful stop: hand leadership over (if leading and asked to; bounded wait), stop ticking, fail
   * what waits on the log, close the peer links, flush and close storage. Idempotent.
   */
  async stop(options: StopOptions = {}): Promise<void> {
    if (this.state === 'starting') await this.starting.catch(() => {});
    if (this.state !== 'running') {
      if (this.state === 'new') this.finish(null);
      await this.closed;
      return;
    }
    if ((options.transfer ?? true) && this.role === 'leader' && this.otherVoters().length > 0) {
      await this.handOver(options.transferTimeoutMs ?? 2 * this.options.electionTimeoutMs);
    }
    if (this.state !== 'running') return void (await this.closed);
    this.state = 'stopping';
    this.halt(unavailable('operation', 'the node is stopping'));
    await this.transport.close();
    this.unregister(); // after the links closed, so late frames are not logged as for an unknown group
    await new Promise<void>((resolve) => this.storage.close(() => resolve()));
    this.finish(null);
  }

  /** Stops at once, like a killed process: links dropped, nothing flushed beyond what is queued (tests). */
  kill(): void {
    if (this.state === 'stopped' || this.state === 'failed') return;
    if (this.state === 'new') {
      this.finish(null);
      return;
    }
    this.state = 'stopped';
    this.halt(unavailable('operation', 'the node was killed'));
    this.transport.terminate();
    this.unregister();
    this.storage.close(() => this.finish(null));
  }

  private async handOver(timeoutMs: number): Promise<void> {
    const started = performance.now();
    try {
      await withTimeout(this.transferLeadership(), timeoutMs);
      this.logger.info(
        { leader: this.leaderId, ms: Math.round(performance.now() - started) },
        'leadership handed over',
      );
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'could not hand leadership over before stopping');
    }
  }

  /** Stops ticking and driving, and fails everything that waits on the log. */
  private halt(reason: Error): void {
    if (this.ticker !== null) clearInterval(this.ticker);
    this.ticker = null;
    this.runner.stop();
    this.incomingWriter?.abort();
    this.incomingWriter = null;
    for (const reader of this.readers.values()) reader.close();
    this.readers.clear();
    this.chunkQueues.clear();
    this.reads.failAll(reason);
    this.failChange(outcomeUnknown(this.pendingChange?.what ?? 'change', 'the node stopped'));
    this.settleTransfer(reason);
  }

  private finish(reason: Error | null): void {
    if (this.state !== 'failed') this.state = 'stopped';
    this.resolveClosed(reason);
  }

  /** An I/O error or broken invariant: the state is in doubt, so stop now (restart from disk is safe). */
  private fail(err: unknown): void {
    if (this.state === 'failed' || this.state === 'stopped') return;
    const error = err instanceof Error ? err : new Error(String(err));
    this.logger.fatal({ err: error, term: this.term }, 'raft node failed; stopping');
    this.state = 'failed';
    this.halt(unavailable('operation', `the node failed: ${error.message}`));
    this.transport.terminate();
    this.unregister();
    this.storage.close(() => this.finish(error));
    this.options.onFatal?.(error);
  }

  // ---------------------------------------------------------------------------------------------
  // Inputs

  private readonly tick = (): void => {
    if (this.state !== 'running') return;
    this.guard(() => this.raft!.tick());
    this.scheduleDrive();
  };

  private readonly peerHandler: PeerHandler = {
    receive: (message) => this.receive(message),
    unreachable: (peer) => {
      if (this.state !== 'running') return;
      this.raft!.reportUnreachable(peer);
      this.scheduleDrive();
    },
    dialFailed: (peer) => this.maybeForgetLeader(peer),
  };

  private receive(message: Message): void {
    if (this.state !== 'running') return;
    const result = this.guard(() => this.raft!.step(message));
    if (result !== undefined && !result.ok) {
      this.logger.debug(
        { from: message.from, type: message.type, reason: result.reason },
        'peer message refused',
      );
    }
    this.scheduleDrive();
  }

  /**
   * Fast failover: dialing the leader failed and its own link to us is gone too, so it is most
   * likely dead. The core stops honouring its lease and campaigns soon (PreVote keeps this safe if
   * the leader is in fact alive and only unreachable from here).
   */
  private maybeForgetLeader(peer: NodeId): void {
    if (this.state !== 'running' || peer !== this.leaderId || this.role !== 'follower') return;
    if (this.options.fastFailover === false) return;
    if (this.transport.hasInbound(peer)) return;
    this.logger.info(
      { leader: peer, term: this.term },
      'leader unreachable in both directions; campaigning soon',
    );
    this.raft!.forgetLeader();
    this.scheduleDrive();
  }

  /** Runs an input against the core; a thrown invariant stops the node. */
  private guard<T>(input: () => T): T | undefined {
    try {
      return input();
    } catch (err) {
      this.fail(err);
      return undefined;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // The Ready loop

  private scheduleDrive(): void {
    if (this.driveImmediate !== null || this.state !== 'running') return;
    this.driveImmediate = setImmediate(this.drive);
  }

  sendProposals(): void {
    if (this.driveImmediate === null || this.driving) return;
    clearImmediate(this.driveImmediate);
    this.drive();
  }

  private readonly drive = (): void => {
    this.driveImmediate = null;
    if (this.state !== 'running') return;
    this.driving = true;
    try {
      const raft = this.raft!;
      for (let n = 0; raft.hasReady(); n++) {
        if (n === READYS_PER_DRIVE_MAX) throw new Error(`core still has a Ready after ${n} in one turn`);
        this.handleReady(raft.ready());
        if (this.state !== 'running') return;
      }
      this.afterDrive();
    } catch (err) {
      this.fail(err);
    } finally {
      this.driving = false;
    }
  };

  private handleReady(rd: Ready): void {
    if (rd.softState !== null) this.softStateChanged(rd.softState);
    // Storage first: a write starts on the thread pool while the appends are encoded and sent (a
    // small one with nothing else in flight is made on this thread once the sends are out, see
    // NodeDisk).
    this.persist(rd);
    this.send(rd.messages);
    this.completeReadys();
    if (rd.restoreSnapshot !== null) {
      this.confDirty = true;
      this.runner.restore(rd.restoreSnapshot);
    }
    this.runner.apply(rd.committedEntries);
    // While a restore runs the state machine is not at any index yet: confirmed reads wait for it.
    const applied = this.runner.isRestoring ? -1 : this.runner.appliedIndex;
    for (const readState of rd.readStates) this.reads.confirm(readState, applied);
    this.runner.run();
  }

  private afterDrive(): void {
    if (this.confDirty) this.refreshMembership();
    if (this.pendingTransfer !== null) this.checkTransfer();
    this.notifyStatus();
  }

  private softStateChanged(soft: SoftState): void {
    const wasLeader = this.role === 'leader';
    this.role = soft.role;
    this.term = soft.term;
    this.leaderId = soft.leader;
    if (wasLeader && soft.role !== 'leader') this.leadershipLost();
    const seen = `${soft.leader}@${soft.term}`;
    if (soft.leader !== null && seen !== this.lastLeaderSeen) {
      this.lastLeaderSeen = seen;
      this.logger.info({ leader: soft.leader, term: soft.term }, 'leader elected');
      this.options.observer?.leaderChanged?.(soft.leader, soft.term);
    }
  }

  /** Reads the core never confirmed will not be (it drops them); proposals' fate shows on apply. */
  private leadershipLost(): void {
    const hint = this.leaderHint();
    this.reads.failPending(notLeader('read', hint));
    this.proposedIndexes.length = 0;
    this.proposedAtMs.length = 0;
  }

  // ---------------------------------------------------------------------------------------------
  // Sending

  private send(messages: Message[]): void {
    if (messages.length === 0) return;
    let plain = messages;
    if (messages.some((m) => m.type === 'snapshot')) {
      plain = messages.filter((m) => m.type !== 'snapshot');
      for (const m of messages) if (m.type === 'snapshot') this.sendSnapshotChunk(m);
    }
    for (const m of plain) this.ensureDialed(m.to);
    this.transport.send(plain);
  }

  /** Peers outside the membership (a leader we were told about, a new learner) get a link on first use. */
  private ensureDialed(peer: NodeId): void {
    if (this.dialed.has(peer)) return;
    const address = this.addresses.get(peer);
    if (address === undefined) return; // the transport falls back to the address the peer announced
    this.dialed.add(peer);
    this.transport.setPeer(peer, address);
  }

  /**
   * Fills a chunk from the snapshot being transferred to its follower, then sends it. Reads for one
   * follower run one at a time, so chunks leave in offset order (parallel reads on the thread pool
   * could finish out of order, and the follower would ask for a resend).
   */
  private sendSnapshotChunk(m: SnapshotMessage): void {
    const queue = this.chunkQueues.get(m.to);
    if (queue !== undefined) {
      queue.push(m);
      return;
    }
    this.chunkQueues.set(m.to, [m]);
    this.readNextChunk(m.to);
  }

  private readNextChunk(peer: NodeId): void {
    const queue = this.chunkQueues.get(peer);
    const m = queue?.[0];
    if (queue === undefined || m === undefined) {
      this.chunkQueues.delete(peer);
      return;
    }
    const reader = this.readerFor(peer, m.meta);
    if (reader === null) {
      this.snapshotUnreadable(peer, null);
      return;
    }
    reader.read(m.offset, m.length, (err, data) => {
      if (this.state !== 'running') return;
      if (err !== null || data === undefined || data.length !== m.length) {
        reader.close();
        this.snapshotUnreadable(peer, err);
        return;
      }
      this.ensureDialed(peer);
      this.transport.send([{ ...m, data }]);
      queue.shift();
      this.readNextChunk(peer);
    });
  }

  /** The snapshot to send is gone or unreadable: the core restarts the transfer later. */
  private snapshotUnreadable(peer: NodeId, err: Error | null): void {
    this.logger.warn({ peer, err: err?.message }, 'snapshot chunk could not be read');
    this.chunkQueues.delete(peer);
    this.readers.delete(peer);
    this.raft!.reportSnapshotFailed(peer);
    this.scheduleDrive();
  }

  private readerFor(peer: NodeId, meta: SnapshotMeta): SnapshotReader | null {
    const matches = (r: SnapshotReader | null | undefined) =>
      r != null && r.meta.index === meta.index && r.meta.term === meta.term;
    const current = this.readers.get(peer);
    if (matches(current)) return current!;
    current?.close();
    this.readers.delete(peer);
    const fresh = this.storage.openSnapshot();
    if (!matches(fresh)) {
      fresh?.close();
      return null;
    }
    this.readers.set(peer, fresh!);
    return fresh;
  }

  // ---------------------------------------------------------------------------------------------
  // Persisting (pipelined; completions in Ready order)

  /** Hands the Ready's writes to storage; `completeReadys` (after the Ready's sends) finishes it. */
  private persist(rd: Ready): void {
    const item: InFlightReady = { rd, remaining: 0 };
    this.inFlight.push(item);
    const done = (err: Error | null) => {
      if (err !== null) {
        this.fail(err);
        return;
      }
      item.remaining--;
      this.completeReadys();
    };
    if (rd.hardState !== null || rd.entries.length > 0) {
      item.remaining++;
      // One request at a time (a publisher awaiting each confirm): these entries follow the commit
      // index, nothing else is in flight, and storage may write them on this thread. A follower
      // learns the leader's commit with the append that carries them.
      const soleInFlight = rd.entries.length > 0 && rd.entries[0]!.index === this.raft!.committedIndex() + 1;
      this.storage.write(
        {
          ...(rd.hardState === null ? {} : { hardState: rd.hardState }),
          ...(rd.entries.length === 0 ? {} : { entries: rd.entries }),
          soleInFlight,
        },
        done,
      );
      this.noteAppended(rd.entries);
    }
    for (const chunk of rd.snapshotChunks) {
      if (chunk.offset === 0) {
        this.incomingWriter?.abort();
        this.incomingWriter = this.storage.createSnapshot(chunk.meta, { resetLog: chunk.resetLog });
        this.logger.info(
          { index: chunk.meta.index, term: chunk.meta.term, bytes: chunk.sizeBytes },
          'receiving a snapshot',
        );
      }
      if (this.incomingWriter === null)
        throw new Error(`snapshot chunk at ${chunk.offset} without a transfer in progress`);
      this.incomingWriter.write(chunk.data);
      if (chunk.done) {
        item.remaining++;
        this.incomingWriter.commit(done);
        this.incomingWriter = null;
        this.confDirty = true;
      }
    }
  }

  /** Readys become durable in order: send what waited on them and tell the core. */
  private completeReadys(): void {
    if (this.state !== 'running') return;
    let progressed = false;
    while (this.inFlight.length > 0 && this.inFlight[0]!.remaining === 0) {
      const { rd } = this.inFlight.shift()!;
      this.send(rd.messagesAfterPersist);
      this.guard(() => this.raft!.persisted(rd.id));
      if (this.state !== 'running') return;
      progressed = true;
    }
    if (progressed) this.scheduleDrive();
  }

  /** Membership entries handed to storage: learn addresses now (a leader dials a new learner at once). */
  private noteAppended(entries: Entry[]): void {
    if (entries.length === 0) return;
    if (entries[0]!.index <= this.lastConfEntryIndex) this.confDirty = true; // a truncation may undo one
    for (const entry of entries) if (entry.type === EntryType.ConfChange) this.noteConfEntry(entry);
  }

  private noteConfEntry(entry: Entry): void {
    this.lastConfEntryIndex = Math.max(this.lastConfEntryIndex, entry.index);
    this.confDirty = true;
    const change = decodeConfChange(entry.data);
    if (change?.address !== undefined) this.addresses.set(change.node, change.address);
  }

  // ---------------------------------------------------------------------------------------------
  // Applying (see AppRunner) and what waits on it

  private appliedTo(index: number, entry: Entry | null): void {
    const change = this.pendingChange;
    if (change !== null && index >= change.index) {
      // Had our change been applied, confChangeApplied would have settled it already.
      this.clearChange(change);
      change.reject(
        entry === null
          ? outcomeUnknown(change.what, 'a snapshot replaced the state before the change was seen')
          : unavailable(change.what, 'lost to a leader change; retry'),
      );
    }
    this.reads.applied(index);
    this.reportCommitLatency(index);
  }

  private confChangeApplied(entry: Entry, change: ConfChange): void {
    this.confDirty = true;
    if (change.address !== undefined) this.addresses.set(change.node, change.address);
    this.logger.info({ index: entry.index, change: describeChange(change) }, 'membership change applied');
    const pending = this.pendingChange;
    if (pending === null || pending.index !== entry.index) return;
    this.clearChange(pending);
    if (entry.term === pending.term) pending.resolve();
    else pending.reject(unavailable(pending.what, 'lost to a leader change; retry'));
  }

  private clearChange(change: PendingChange): void {
    clearTimeout(change.timer);
    if (this.pendingChange === change) this.pendingChange = null;
  }

  private failChange(err: Error): void {
    const change = this.pendingChange;
    if (change === null) return;
    this.clearChange(change);
    change.reject(err);
  }

  private reportCommitLatency(appliedIndex: number): void {
    if (this.proposedIndexes.length === 0) return;
    const now = performance.now();
    let n = 0;
    while (n < this.proposedIndexes.length && this.proposedIndexes[n]! <= appliedIndex) {
      this.options.observer?.committed?.(now - this.proposedAtMs[n]!);
      n++;
    }
    this.proposedIndexes.splice(0, n);
    this.proposedAtMs.splice(0, n);
  }

  private snapshotTaken(meta: SnapshotMeta, sizeBytes: number): void {
    if (this.state !== 'running') return;
    this.raft!.snapshotTaken(meta, sizeBytes);
    this.storage.compact(Math.max(0, meta.index - this.limits.compactionKeepEntries));
    this.scheduleDrive();
  }

  // ---------------------------------------------------------------------------------------------
  // Membership, addresses and status

  private refreshMembership(): void {
    this.confDirty = false;
    const conf = this.raft!.status().conf;
    const before = new Set([...this.conf.voters, ...this.conf.learners]);
    this.conf = conf;
    for (const id of [...conf.voters, ...conf.learners]) {
      before.delete(id);
      if (id === this.nodeId) continue;
      const address = this.addresses.get(id);
      if (address === undefined) {
        // Normal while a snapshot's preamble (the address book) is still being read.
        this.logger.debug({ peer: id }, 'no address known for a member yet');
        continue;
      }
      this.dialed.add(id);
      this.transport.setPeer(id, address);
    }
    for (const gone of before) {
      if (gone === this.nodeId) {
        this.logger.warn(
          { term: this.term },
          'this node is no longer a member of the cluster; it can be stopped',
        );
        continue;
      }
      this.dialed.delete(gone);
      this.transport.removePeer(gone);
      this.readers.get(gone)?.close();
      this.readers.delete(gone);
    }
  }

  private addressBook(conf: ConfState): Map<NodeId, string> {
    const book = new Map<NodeId, string>();
    for (const id of [...conf.voters, ...conf.learners]) {
      const address = this.addresses.get(id);
      if (address !== undefined) book.set(id, address);
    }
    return book;
  }

  /** Addresses from a snapshot fill gaps; what this node was told later (log, config) wins. */
  private learnAddresses(book: Map<NodeId, string>): void {
    for (const [id, address] of book) if (!this.addresses.has(id)) this.addresses.set(id, address);
    this.confDirty = true;
    this.scheduleDrive();
  }

  private leaderHint(): LeaderHint {
    return { leaderId: this.leaderId, leaderAddress: this.addressOf(this.leaderId) };
  }

  private addressOf(id: NodeId | null): string | null {
    if (id === null) return null;
    return this.addresses.get(id) ?? this.transport.announcedAddress(id);
  }

  private publicRole(): Role {
    if (this.role === 'follower' && this.conf.learners.includes(this.nodeId)) return 'learner';
    return this.role;
  }

  private notifyStatus(): void {
    const key = `${this.publicRole()}|${this.term}|${this.leaderId}`;
    if (key === this.notified) return;
    this.notified = key;
    const status = this.status();
    for (const listener of [...this.listeners]) listener(status);
  }

  status(): NodeStatus {
    const raft = this.raft;
    if (raft === null) return this.startingStatus();
    const s = raft.status();
    const isLeader = s.role === 'leader';
    const match = new Map(s.peers.map((p) => [p.id, p.match]));
    const member = (id: NodeId, voter: boolean): MemberStatus => ({
      id,
      address: this.addressOf(id) ?? '',
      voter,
      matchIndex: !isLeader ? null : id === this.nodeId ? s.persisted : (match.get(id) ?? 0),
      connected: id === this.nodeId || this.transport.isConnected(id),
    });
    return {
      nodeId: this.nodeId,
      role: s.role === 'follower' && s.conf.learners.includes(this.nodeId) ? 'learner' : s.role,
      term: s.term,
      leaderId: s.leader,
      leaderAddress: this.addressOf(s.leader),
      commitIndex: s.commit,
      appliedIndex: this.runner.appliedIndex,
      lastIndex: s.persisted,
      snapshotIndex: s.snapshotIndex,
      members: [
        ...s.conf.voters.map((id) => member(id, true)),
        ...s.conf.learners.map((id) => member(id, false)),
      ],
    };
  }

  private startingStatus(): NodeStatus {
    return {
      nodeId: this.nodeId,
      role: 'follower',
      term: 0,
      leaderId: null,
      leaderAddress: null,
      commitIndex: 0,
      appliedIndex: 0,
      lastIndex: 0,
      snapshotIndex: 0,
      members: [],
    };
  }

  onStatusChange(listener: (status: NodeStatus) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The current term, cheaply (for a logger's mixin: every line carries node id and term). */
  get currentTerm(): number {
    return this.term;
  }

  /** The core's own view (role, indexes, per-peer progress), for diagnostics and tests. */
  raftStatus(): RaftStatus | null {
    return this.raft?.status() ?? null;
  }

  // ---------------------------------------------------------------------------------------------
  // ReplicatedLog operations

  /** Largest entry the core accepts (its `maxEntryBytes` limit). */
  get maxEntryBytes(): number {
    return this.limits.maxEntryBytes;
  }

  /**
   * Appends `data` if this node leads and accepts proposals; otherwise says why not: not the
   * leader (naming it when known), a transfer in progress (naming its target), too much
   * uncommitted, or larger than `maxEntryBytes`. Never throws.
   */
  tryPropose(data: Uint8Array): ProposeOutcome {
    if (this.state !== 'running') return this.refusedProposal('not-leader', null);
    const result = this.guard(() => this.raft!.propose(data));
    if (result === undefined) return this.refusedProposal('not-leader', null);
    if (!result.ok) {
      const reason = this.proposeRefusal(result.reason);
      if (reason === 'overloaded' || reason === 'too-large')
        this.logger.debug({ reason, bytes: data.length }, 'proposal refused');
      if (reason === 'transferring')
        return this.refusedProposal(reason, this.pendingTransfer?.target ?? null);
      return this.refusedProposal(reason, result.leader === this.nodeId ? null : result.leader);
    }
    if (this.options.observer?.committed !== undefined) {
      this.proposedIndexes.push(result.index);
      this.proposedAtMs.push(performance.now());
    }
    this.scheduleDrive();
    return { ok: true, index: result.index, term: result.term };
  }

  /** `tryPropose` for callers that only need to know whether the entry was taken (tests, benchmarks). */
  propose(data: Uint8Array): { index: number; term: number } | null {
    const outcome = this.tryPropose(data);
    return outcome.ok ? { index: outcome.index, term: outcome.term } : null;
  }

  /** The core's refusal of a proposal in the log contract's terms (it gives no others for a proposal). */
  private proposeRefusal(reason: Refusal): ProposeRefusal {
    return reason === 'transferring' || reason === 'overloaded' || reason === 'too-large'
      ? reason
      : 'not-leader';
  }

  private refusedProposal(reason: ProposeRefusal, leaderId: NodeId | null): ProposeOutcome {
    return { ok: false, reason, leaderId, leaderAddress: this.addressOf(leaderId) };
  }

  readBarrier(): Promise<void> {
    if (this.state !== 'running') return Promise.reject(unavailable('read', 'the node is not running'));
    const ctx = this.reads.nextContext();
    const result = this.raft!.readIndex(ctx);
    if (!result.ok) return Promise.reject(refused('read', result.reason, this.leaderHint()));
    this.scheduleDrive();
    return this.reads.wait(ctx);
  }

  transferLeadership(to?: NodeId): Promise<void> {
    if (this.state !== 'running') return Promise.reject(unavailable('transfer', 'the node is not running'));
    if (this.role !== 'leader') return Promise.reject(notLeader('transfer', this.leaderHint()));
    const pending = this.pendingTransfer;
    if (pending !== null && (to === undefined || to === pending.target)) return pending.promise;
    if (pending !== null)
      return Promise.reject(unavailable('transfer', `a transfer to ${pending.target} is in progress`));
    const target = to ?? this.pickTransferee();
    if (target === null)
      return Promise.reject(unavailable('transfer', 'no other voter to hand leadership to'));
    if (target === this.nodeId) return Promise.resolve();
    const result = this.raft!.transferLeadership(target);
    if (!result.ok) return Promise.reject(refused(`transfer to ${target}`, result.reason, this.leaderHint()));
    this.logger.info({ to: target, term: this.term }, 'transferring leadership');
    this.scheduleDrive();
    return this.trackTransfer(target);
  }

  private trackTransfer(target: NodeId): Promise<void> {
    let resolve!: () => void;
    let reject!: (err: Error) => void;
    const promise = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const timer = setTimeout(
      () => this.settleTransfer(outcomeUnknown(`transfer to ${target}`, 'no new leader in time')),
      3 * this.options.electionTimeoutMs,
    );
    this.pendingTransfer = { target, promise, resolve, reject, timer };
    return promise;
  }

  /** Resolved once another node leads; rejected when the core gave up while this node still leads. */
  private checkTransfer(): void {
    const pending = this.pendingTransfer!;
    if (this.leaderId !== null && this.leaderId !== this.nodeId) this.settleTransfer(null);
    else if (this.role === 'leader' && this.raft!.status().transferee === null) {
      this.settleTransfer(
        unavailable(`transfer to ${pending.target}`, 'the target did not catch up in time'),
      );
    }
  }

  private settleTransfer(err: Error | null): void {
    const pending = this.pendingTransfer;
    if (pending === null) return;
    this.pendingTransfer = null;
    clearTimeout(pending.timer);
    if (err === null) pending.resolve();
    else pending.reject(err);
  }

  /** The voter with the longest log, preferring those with a live link. */
  private pickTransferee(): NodeId | null {
    const peers = this.raft!.status().peers.filter((p) => this.conf.voters.includes(p.id));
    peers.sort(
      (a, b) =>
        Number(this.transport.isConnected(b.id)) - Number(this.transport.isConnected(a.id)) ||
        b.match - a.match,
    );
    return peers[0]?.id ?? null;
  }

  private otherVoters(): NodeId[] {
    return this.conf.voters.filter((id) => id !== this.nodeId);
  }

  addLearner(id: NodeId, address: string): Promise<void> {
    if (!NODE_ID.test(id))
      return Promise.reject(invalidArgument('id', 'letters, digits, _ . - (at most 64)'));
    if (!HOST_PORT.test(address)) {
      return Promise.reject(invalidArgument('address', `expected host:port, got ${JSON.stringify(address)}`));
    }
    return this.changeWhenPossible(`add learner ${id}`, {
      type: ConfChangeType.AddLearner,
      node: id,
      address,
    });
  }

  /** Promotes a learner, waiting (bounded) for it to catch up if it is still behind. */
  promoteLearner(id: NodeId): Promise<void> {
    return this.changeWhenPossible(`promote ${id}`, { type: ConfChangeType.PromoteLearner, node: id });
  }

  removeMember(id: NodeId): Promise<void> {
    return this.changeWhenPossible(`remove ${id}`, { type: ConfChangeType.RemoveNode, node: id });
  }

  /**
   * Proposes a change, retrying for a while (every heartbeat, up to ten election timeouts) while the
   * core answers "not yet": a new leader's first entry is not committed, an earlier change is still
   * uncommitted, or the learner to promote is behind. Other refusals are final.
   */
  private async changeWhenPossible(what: string, change: ConfChange): Promise<void> {
    const deadline = Date.now() + 10 * this.options.electionTimeoutMs;
    for (;;) {
      try {
        return await this.changeMembership(what, change);
      } catch (err) {
        const reason = err instanceof FlotillaError ? err.details.reason : undefined;
        const notYet = reason === Refusal.ChangePending || reason === Refusal.LearnerBehind;
        if (!notYet || Date.now() > deadline) throw err;
        await new Promise((resolve) => setTimeout(resolve, this.options.heartbeatMs));
      }
    }
  }

  private changeMembership(what: string, change: ConfChange): Promise<void> {
    if (this.state !== 'running') return Promise.reject(unavailable(what, 'the node is not running'));
    if (this.pendingChange !== null) {
      return Promise.reject(
        unavailable(what, `another membership change (${this.pendingChange.what}) is pending`),
      );
    }
    const result = this.guard(() => this.raft!.proposeConfChange(change));
    if (result === undefined) return Promise.reject(unavailable(what, 'the node failed'));
    if (!result.ok) return Promise.reject(refused(what, result.reason, this.leaderHint()));
    // A leader dials a new learner at once, before the entry is even durable.
    if (change.address !== undefined) this.addresses.set(change.node, change.address);
    this.logger.info(
      { change: describeChange(change), index: result.index, term: result.term },
      'membership change proposed',
    );
    this.scheduleDrive();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => this.failChange(outcomeUnknown(what, 'not applied in time')),
        10 * this.options.electionTimeoutMs,
      );
      this.pendingChange = { what, index: result.index, term: result.term, resolve, reject, timer };
    });
  }
}

function snapshotSize(storage: RaftStorage): number {
  const reader = storage.openSnapshot();
  reader?.close();
  return reader?.size ?? 0;
}

function describeChange(change: ConfChange): string {
  const verb = ['add-learner', 'promote', 'remove'][change.type];
  return change.address === undefined ? `${verb} ${change.node}` : `${verb} ${change.node}@${change.address}`;
}

/** Election and heartbeat periods in ticks of `tickMs`. */
function timingTicks(
  options: RaftDriverOptions,
): Pick<RaftLimits, 'electionTimeoutTicks' | 'heartbeatIntervalTicks'> {
  const electionTimeoutTicks = Math.max(2, Math.round(options.electionTimeoutMs / options.tickMs));
  const heartbeatIntervalTicks = Math.max(1, Math.round(options.heartbeatMs / options.tickMs));
  if (heartbeatIntervalTicks >= electionTimeoutTicks) {
    throw new RangeError(
      `heartbeatMs (${options.heartbeatMs}) must be well below electionTimeoutMs (${options.electionTimeoutMs})`,
    );
  }
  return { electionTimeoutTicks, heartbeatIntervalTicks };
}

function checkOptions(options: RaftDriverOptions): void {
  if (!NODE_ID.test(options.nodeId)) throw new RangeError(`bad node id ${JSON.stringify(options.nodeId)}`);
  if (options.storage === undefined && options.dataDir === undefined)
    throw new RangeError('give dataDir or storage');
  if (options.transport.nodeId !== options.nodeId) {
    throw new RangeError(`transport of ${options.transport.nodeId} given to driver of ${options.nodeId}`);
  }
  if (!options.join && !options.peers.has(options.nodeId)) {
    throw new RangeError(`peers must include this node (${options.nodeId}) unless joining`);
  }
  for (const [name, value] of [
    ['tickMs', options.tickMs],
    ['electionTimeoutMs', options.electionTimeoutMs],
    ['heartbeatMs', options.heartbeatMs],
    ['snapshotLogBytes', options.snapshotLogBytes],
  ] as const) {
    if (!Number.isInteger(value) || value < 1)
      throw new RangeError(`${name} must be a positive integer, got ${value}`);
  }
}

function withTimeout<T>(promise: Promise<T>, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}
