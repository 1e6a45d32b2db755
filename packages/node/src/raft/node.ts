/**
 * The Raft state machine for one node of one group: leader election (randomized timeouts, PreVote,
 * CheckQuorum with leader lease), log replication (batched, pipelined under an in-flight window,
 * fast backtracking), commit by current-term entries only, snapshots (local compaction and chunked
 * InstallSnapshot), single-server membership changes, leadership transfer and ReadIndex.
 *
 * It is pure and deterministic: no timers, I/O, clock or global randomness. Inputs are method
 * calls (`tick`, `step`, `propose`, ...); outputs are collected into the next {@link Ready}. See
 * ready.ts for what the driver must do with it and in which order.
 *
 * Section references (§) are to the Raft paper (Ongaro & Ousterhout, 2014) and, where marked,
 * Ongaro's thesis (2014).
 */

import {
  applyConfChange,
  checkConfChange,
  copyConfState,
  decodeConfChange,
  encodeConfChange,
} from './conf-change.js';
import { type RaftConfig, type RaftLimits, type RaftLogger, resolveLimits } from './config.js';
import { invariantFailed, Refusal } from './errors.js';
import { type LogPosition, RaftLog } from './log.js';
import {
  type AppendMessage,
  type AppendResponse,
  entryBytes,
  type HeartbeatMessage,
  type HeartbeatResponse,
  type Message,
  type SnapshotMessage,
  type SnapshotResponse,
  type VoteRequest,
  type VoteResponse,
  validateMessage,
} from './messages.js';
import { Progress, ReplicationState } from './progress.js';
import { isQuorum, quorumMatchIndex, voteOutcome } from './quorum.js';
import { ReadIndexQueue } from './read-index.js';
import type { ReadState, Ready, Role, SnapshotChunkToPersist, SoftState } from './ready.js';
import {
  decideChunk,
  type IncomingSnapshot,
  isSameTransfer,
  onChunkAck,
  planChunks,
  startOutgoing,
  tickOutgoing,
} from './snapshot-transfer.js';
import {
  type ConfChange,
  ConfChangeType,
  type ConfState,
  type Entry,
  EntryType,
  type GroupId,
  type HardState,
  type NodeId,
  type SnapshotMeta,
} from './types.js';

/** Answer to `propose` / `proposeConfChange`: where the entry went, or why it was refused. */
export type ProposeResult =
  | { ok: true; index: number; term: number }
  | { ok: false; reason: Refusal; leader: NodeId | null };

/** Answer to `transferLeadership` / `readIndex`: accepted (the outcome comes later), or refused. */
export type AcceptResult = { ok: true } | { ok: false; reason: Refusal; leader: NodeId | null };

/** Answer to `step`: a malformed or misaddressed message is dropped with a reason and changes nothing. */
export type StepResult = { ok: true } | { ok: false; reason: string };

export interface PeerStatus {
  id: NodeId;
  match: number;
  next: number;
  state: ReplicationState;
  inflight: number;
  recentActive: boolean;
}

export interface RaftStatus {
  id: NodeId;
  group: GroupId;
  role: Role;
  term: number;
  vote: NodeId | null;
  leader: NodeId | null;
  commit: number;
  applied: number;
  persisted: number;
  firstIndex: number;
  lastIndex: number;
  lastTerm: number;
  snapshotIndex: number;
  conf: ConfState;
  transferee: NodeId | null;
  /** Leader only: replication state of every other member. */
  peers: PeerStatus[];
  /**
   * The highest commit index the current leader has told this node about, or this node's own
   * commit index if higher (on the leader: its commit index). How far this node has to go before it
   * has caught up; 0 until a leader is heard from in this term.
   */
  leaderCommit: number;
}

/** Read-only window on the in-memory log, for the simulator's checkers and for tests. */
export interface LogView {
  firstIndex(): number;
  lastIndex(): number;
  term(index: number): number | undefined;
  entries(lo: number, hi: number): Entry[];
}

type CampaignKind = 'pre' | 'real' | 'transfer';
type WithoutEnvelope<T> = T extends unknown ? Omit<T, 'group' | 'from' | 'term'> : never;
/** A message as handlers write it: the envelope is filled in by `send` (term defaults to ours). */
type Outgoing = WithoutEnvelope<Message> & { term?: number };

/** What a Ready's persistence stands for, resolved when the driver reports it durable. */
interface PersistMark {
  id: number;
  lastEntry: LogPosition | null;
  install: IncomingSnapshot | null;
}

const EMPTY = new Uint8Array(0);

export class RaftNode {
  readonly id: NodeId;
  readonly group: GroupId;
  private readonly limits: RaftLimits;
  private readonly randomInt: (bound: number) => number;
  private readonly logger: RaftLogger | null;
  private readonly preVote: boolean;
  private readonly checkQuorum: boolean;

  private term: number;
  private vote: NodeId | null;
  private role: Role = 'follower';
  private leader: NodeId | null = null;
  private readonly log: RaftLog;

  /** Newest snapshot durable in local storage (null: none yet). */
  private snapshot: SnapshotMeta | null;
  private snapshotSizeBytes: number;
  /** Membership as of the snapshot (or the initial voters); the log's membership entries apply on top. */
  private baseConf: ConfState;
  /** Membership in effect: the newest in the log (thesis §4.1). */
  private conf: ConfState;
  /** Membership before the newest membership entry (equal to `conf` when there is none after the snapshot). */
  private confBeforeLast: ConfState;

  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  /**
   * Ticks left of the short-election window opened by `forgetLeader` (0: closed). While open, every
   * election timeout drawn is short, so a split vote between survivors costs a short round, not a
   * full timeout. Closed by hearing from a leader or becoming one, and after two election timeouts
   * at most, so a cluster whose elections keep failing falls back to ordinary timeouts.
   */
  private leaderGoneTicks = 0;
  /**
   * The highest commit index the leader of this term has sent: an append carries the leader's
   * whole commit index, a heartbeat or snapshot a lower bound. Reset with the role state.
   */
  private leaderCommit = 0;
  private votes = new Map<NodeId, boolean>();
  /** A candidate's own vote: not yet in a Ready, in Ready `n` (counted once it is durable), or counted. */
  private selfVote: 'awaiting-ready' | number | 'counted' = 'counted';

  // Leader state.
  private progress = new Map<NodeId, Progress>();
  /** Followers to send AppendEntries to when the next Ready is built; true: even an empty one. */
  private dirtyPeers = new Map<NodeId, boolean>();
  private leadTransferee: NodeId | null = null;
  /** Index of the newest membership entry the leader may not yet build on. */
  private pendingConfIndex = 0;
  private uncommittedBytes = 0;
  private readonly reads = new ReadIndexQueue();

  // Follower state.
  private incoming: IncomingSnapshot | null = null;

  // Output collected for the next Ready.
  private messages: Message[] = [];
  private messagesAfterPersist: Message[] = [];
  private chunksToPersist: SnapshotChunkToPersist[] = [];
  private readStates: ReadState[] = [];
  private pendingRestore: SnapshotMeta | null = null;
  private lastHardState: HardState;
  private lastSoftState: SoftState;
  private readyId = 0;
  private persistedReadyId = 0;
  private marks: PersistMark[] = [];

  constructor(config: RaftConfig) {
    this.id = config.id;
    this.group = config.group;
    this.limits = resolveLimits(config.limits);
    this.randomInt = config.randomInt;
    this.logger = config.logger ?? null;
    this.preVote = config.preVote ?? true;
    this.checkQuorum = config.checkQuorum ?? true;

    const { hardState, snapshot, entries } = config.recovered;
    this.snapshot = snapshot;
    this.snapshotSizeBytes = snapshot === null ? 0 : (config.snapshotSizeBytes ?? 0);
    const base = snapshot === null ? { index: 0, term: 0 } : { index: snapshot.index, term: snapshot.term };
    const applied = config.applied ?? 0;
    this.log = new RaftLog(base, this.dropStaleTail(base, entries), hardState.commit, applied);
    if (snapshot !== null && applied < snapshot.index) this.pendingRestore = snapshot;
    this.term = hardState.term;
    this.vote = hardState.vote;
    if (hardState.term < this.log.lastTerm()) {
      // A crash kept a write's entries but not the hard state queued with them (durability is only
      // promised once a write completes). No vote was ever sent in the newer term (votes wait for
      // their hard state to be durable), so adopting it without a vote is safe; persisted below.
      this.logger?.warn({ term: hardState.term, lastTerm: this.log.lastTerm() }, 'log newer than hard state');
      this.term = this.log.lastTerm();
      this.vote = null;
    }
    this.baseConf =
      snapshot === null ? { voters: [...config.initialVoters], learners: [] } : copyConfState(snapshot.conf);
    this.conf = this.baseConf;
    this.confBeforeLast = this.baseConf;
    this.recomputeConf();
    this.becomeFollower(this.term, null);
    // What storage holds; a difference (a term raised above) goes out in the first Ready.
    this.lastHardState = { ...hardState, commit: this.log.committed };
    this.lastSoftState = this.softState();
  }

  /**
   * Entries after a snapshot with a term below the snapshot's cannot belong to its log: they are
   * leftovers of a log the snapshot replaced (storage keeps entries after a received snapshot). Keep
   * only the part that can extend the snapshot.
   */
  private dropStaleTail(base: LogPosition, entries: Entry[]): Entry[] {
    const stale = entries.findIndex((e) => e.term < base.term);
    if (stale === -1) return entries;
    this.logger?.warn(
      { from: entries[stale]!.index, snapshot: base.index },
      'dropping stale entries after snapshot',
    );
    return entries.slice(0, stale);
  }

  // ---------------------------------------------------------------------------------------------
  // Inputs

  /** Advances logical time by one tick. */
  tick(): void {
    if (this.role === 'leader') this.tickLeader();
    else this.tickElection();
  }

  /** Starts an election now (as if the election timeout had passed), if this node may. */
  campaign(): void {
    if (this.role !== 'leader' && this.isPromotable()) this.startCampaign(this.preVote ? 'pre' : 'real');
  }

  /**
   * The driver has reason to believe the leader is gone (both links to it closed and redialing was
   * refused): stop honouring the leader's lease and campaign after 1 + random(leaderGoneSpreadTicks)
   * ticks instead of a full randomized election timeout; for the next two election timeouts, failed
   * elections (a split vote between survivors that started together) are retried on short timeouts
   * too (see `leaderGoneTicks`). PreVote still applies, so a follower merely cut off from a live
   * leader cannot disrupt the cluster: the others still hear from that leader, keep its lease and
   * refuse. Safety never rests on timeouts or the lease (reads use ReadIndex), only liveness does.
   * A no-op unless this node is a follower that knows a leader.
   */
  forgetLeader(): void {
    if (this.role !== 'follower' || this.leader === null) return;
    this.logger?.info({ leader: this.leader, term: this.term }, 'forgetting the leader');
    this.leader = null;
    this.leaderGoneTicks = 2 * this.limits.electionTimeoutTicks;
    const delayTicks = 1 + this.randomInt(this.limits.leaderGoneSpreadTicks);
    // Only ever brings the election closer; the lease check needs electionElapsed past the timeout.
    this.electionElapsed = Math.max(this.electionElapsed, this.randomizedElectionTimeout - delayTicks);
  }

  /** Handles a message from a peer. Malformed or misaddressed messages are dropped with a reason. */
  step(message: Message): StepResult {
    const invalid = validateMessage(message);
    if (invalid !== null) return { ok: false, reason: invalid };
    if (message.group !== this.group)
      return { ok: false, reason: `group ${message.group} is not ${this.group}` };
    if (message.to !== this.id) return { ok: false, reason: `addressed to ${message.to}` };
    if (message.from === this.id) return { ok: false, reason: 'message from self' };
    const contradiction = this.contradiction(message);
    if (contradiction !== null) {
      this.logger?.warn({ from: message.from, type: message.type }, contradiction);
      return { ok: false, reason: contradiction };
    }
    this.stepValid(message);
    return { ok: true };
  }

  /**
   * Well-formed input that contradicts this node's state in a way no correct peer produces. It is
   * refused before anything changes, so a faulty peer cannot trip this node's invariant checks.
   */
  private contradiction(m: Message): string | null {
    const fromLeader = m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot';
    if (fromLeader && m.term === this.term) {
      if (this.role === 'leader') return `${m.from} claims to lead term ${m.term}, which this node leads`;
      if (this.leader !== null && this.leader !== m.from) {
        return `${m.from} claims to lead term ${m.term}, which ${this.leader} leads`;
      }
    }
    if (m.type === 'heartbeat' && m.term >= this.term && m.commit > this.log.lastIndex()) {
      return `heartbeat commit ${m.commit} beyond last index ${this.log.lastIndex()}`;
    }
    const isOurAck = m.type === 'appendResp' && !m.reject && m.term === this.term && this.role === 'leader';
    if (isOurAck && m.index > this.log.lastIndex()) {
      return `acknowledged index ${m.index} beyond last index ${this.log.lastIndex()}`;
    }
    return null;
  }

  /** Appends `data` as a new entry if this node is the leader and accepts proposals. */
  propose(data: Uint8Array): ProposeResult {
    const refused = this.refuseProposal();
    if (refused !== null) return refused;
    if (data.length > this.limits.maxEntryBytes) return this.refuse(Refusal.TooLarge);
    if (this.uncommittedBytes > 0 && this.uncommittedBytes + data.length > this.limits.maxUncommittedBytes) {
      return this.refuse(Refusal.Overloaded);
    }
    this.uncommittedBytes += data.length;
    const index = this.appendAsLeader(EntryType.Normal, data);
    return { ok: true, index, term: this.term };
  }

  /**
   * Proposes a single-server membership change. Refused while another change is uncommitted or no
   * entry of this term is committed yet, when it does not fit the membership, and when promoting a
   * learner that is not caught up. Takes effect on each node as soon as it is appended.
   */
  proposeConfChange(change: ConfChange): ProposeResult {
    const refused = this.refuseProposal();
    if (refused !== null) return refused;
    if (this.pendingConfIndex > this.log.committed) return this.refuse(Refusal.ChangePending);
    if (checkConfChange(this.conf, change) !== null) return this.refuse(Refusal.InvalidChange);
    if (change.type === ConfChangeType.PromoteLearner) {
      const pr = this.progress.get(change.node);
      const lag = this.log.lastIndex() - (pr?.match ?? 0);
      if (lag > this.limits.learnerPromotionLagEntriesMax) return this.refuse(Refusal.LearnerBehind);
    }
    const index = this.appendAsLeader(EntryType.ConfChange, encodeConfChange(change));
    this.pendingConfIndex = index;
    return { ok: true, index, term: this.term };
  }

  /**
   * Hands leadership to voter `to` (thesis §3.10): proposals are refused meanwhile; once `to` has
   * the whole log it gets TimeoutNow and campaigns at once. Aborted after an election timeout.
   */
  transferLeadership(to: NodeId): AcceptResult {
    if (this.role !== 'leader') return this.refuse(Refusal.NotLeader);
    if (to === this.id) return { ok: true };
    if (!this.conf.voters.includes(to)) return this.refuse(Refusal.NotAVoter);
    if (this.leadTransferee === to) return { ok: true };
    this.leadTransferee = to;
    this.electionElapsed = 0;
    this.logger?.info({ to }, 'leadership transfer started');
    const pr = this.progress.get(to)!;
    if (pr.match === this.log.lastIndex()) this.send({ type: 'timeoutNow', to }, false);
    else this.markDirty(to, true); // even an empty append: the answer shows where the transferee is
    return { ok: true };
  }

  /**
   * Linearizable read (§6.4): once confirmed, a {@link ReadState} with the read's index and `ctx`
   * appears in a Ready. Reads still pending when leadership is lost are dropped without an answer;
   * the driver fails them when it sees the role change.
   */
  readIndex(ctx: number): AcceptResult {
    if (this.role !== 'leader' || !this.conf.voters.includes(this.id)) return this.refuse(Refusal.NotLeader);
    if (this.reads.size >= this.limits.maxPendingReads) return this.refuse(Refusal.Overloaded);
    this.reads.add(ctx, this.committedInTerm() ? this.log.committed : null);
    this.releaseReads();
    return { ok: true };
  }

  /** Ready `id` (and every earlier one) is durable. Reports may skip ids; they must not go backwards. */
  persisted(id: number): void {
    if (id > this.readyId || id < this.persistedReadyId) {
      invariantFailed(
        `persisted(${id}) but last ready ${this.readyId}, last persisted ${this.persistedReadyId}`,
      );
    }
    this.persistedReadyId = id;
    while (this.marks.length > 0 && this.marks[0]!.id <= id) {
      const mark = this.marks.shift()!;
      if (mark.lastEntry !== null) this.log.persistedTo(mark.lastEntry);
      if (mark.install !== null) this.installSnapshot(mark.install);
    }
    if (typeof this.selfVote === 'number' && id >= this.selfVote) {
      this.selfVote = 'counted';
      this.votes.set(this.id, true);
      this.tallyVotes();
    }
    if (this.role === 'leader') this.maybeCommit();
  }

  /** The driver could not send a snapshot chunk to `to` (e.g. the snapshot is gone): restart later. */
  reportSnapshotFailed(to: NodeId): void {
    const pr = this.progress.get(to);
    if (this.role !== 'leader' || pr === undefined || pr.state !== ReplicationState.Snapshot) return;
    pr.becomeProbe();
    // Paused until the next heartbeat answer, so a persistent failure is retried once per heartbeat.
    pr.probeSent = true;
  }

  /** The link to `to` is down: stop optimistic pipelining and probe again. */
  reportUnreachable(to: NodeId): void {
    const pr = this.progress.get(to);
    if (this.role === 'leader' && pr?.state === ReplicationState.Replicate) pr.becomeProbe();
  }

  /** Metadata for a snapshot of the state machine as of `index` (which must be applied). */
  snapshotMetaAt(index: number): SnapshotMeta {
    const snapshotIndex = this.snapshot?.index ?? 0;
    if (index > this.log.applied || index < snapshotIndex || index < this.log.firstIndex() - 1) {
      invariantFailed(`snapshot at ${index}: applied ${this.log.applied}, snapshot ${snapshotIndex}`);
    }
    let conf = this.baseConf;
    for (const entry of this.log.confEntriesAfter(snapshotIndex)) {
      if (entry.index > index) break;
      conf = applyConfChange(conf, decodeConfChange(entry.data)!);
    }
    return { index, term: this.log.term(index)!, conf: copyConfState(conf) };
  }

  /**
   * The application made a snapshot (from {@link snapshotMetaAt}) durable: entries up to it may
   * leave memory, keeping `compactionKeepEntries` below it for followers that are slightly behind.
   */
  snapshotTaken(meta: SnapshotMeta, sizeBytes: number): void {
    if (meta.index <= (this.snapshot?.index ?? 0)) return;
    const term = this.log.term(meta.index);
    if (meta.index > this.log.applied || (term !== undefined && term !== meta.term)) {
      invariantFailed(
        `snapshot ${meta.index}/${meta.term} does not match log (term ${term}, applied ${this.log.applied})`,
      );
    }
    this.snapshot = meta;
    this.snapshotSizeBytes = sizeBytes;
    this.baseConf = copyConfState(meta.conf);
    this.log.compactTo(Math.max(0, meta.index - this.limits.compactionKeepEntries));
  }

  // ---------------------------------------------------------------------------------------------
  // Output

  /** True when {@link ready} has something for the driver. */
  hasReady(): boolean {
    return (
      this.messages.length > 0 ||
      this.messagesAfterPersist.length > 0 ||
      this.chunksToPersist.length > 0 ||
      this.readStates.length > 0 ||
      this.pendingRestore !== null ||
      this.dirtyPeers.size > 0 ||
      this.reads.roundPending ||
      this.log.nextToPersist <= this.log.lastIndex() ||
      this.log.applicableIndex() > this.log.applied ||
      this.term !== this.lastHardState.term ||
      this.vote !== this.lastHardState.vote ||
      this.log.committed !== this.lastHardState.commit ||
      this.role !== this.lastSoftState.role ||
      this.leader !== this.lastSoftState.leader
    );
  }

  /** Collects everything that must happen now. See ready.ts for the rules. */
  ready(): Ready {
    if (this.role === 'leader') this.flushLeaderSends();
    const id = ++this.readyId;
    const hardState = this.hardState();
    const softState = this.softState();
    const rd: Ready = {
      id,
      softState: sameSoftState(softState, this.lastSoftState) ? null : softState,
      messages: this.messages,
      hardState: sameHardState(hardState, this.lastHardState) ? null : hardState,
      entries: this.log.takeUnpersisted(),
      snapshotChunks: this.chunksToPersist,
      messagesAfterPersist: this.messagesAfterPersist,
      restoreSnapshot: this.pendingRestore,
      committedEntries: [],
      readStates: this.readStates,
    };
    rd.committedEntries = this.log.takeApplicable(this.limits.maxApplyBytesPerReady);
    this.lastHardState = hardState;
    this.lastSoftState = softState;
    this.messages = [];
    this.messagesAfterPersist = [];
    this.chunksToPersist = [];
    this.readStates = [];
    this.pendingRestore = null;
    this.recordMark(rd);
    if (this.selfVote === 'awaiting-ready') this.selfVote = id;
    return rd;
  }

  private recordMark(rd: Ready): void {
    const last = rd.entries[rd.entries.length - 1];
    const install = rd.snapshotChunks.some((c) => c.done) ? this.incoming : null;
    if (last === undefined && install === null) return;
    this.marks.push({
      id: rd.id,
      lastEntry: last === undefined ? null : { index: last.index, term: last.term },
      install,
    });
  }

  status(): RaftStatus {
    const peers: PeerStatus[] = [];
    for (const [id, pr] of this.progress) {
      peers.push({
        id,
        match: pr.match,
        next: pr.next,
        state: pr.state,
        inflight: pr.inflights.count,
        recentActive: pr.recentActive,
      });
    }
    return {
      id: this.id,
      group: this.group,
      role: this.role,
      term: this.term,
      vote: this.vote,
      leader: this.leader,
      commit: this.log.committed,
      applied: this.log.applied,
      persisted: this.log.persisted,
      firstIndex: this.log.firstIndex(),
      lastIndex: this.log.lastIndex(),
      lastTerm: this.log.lastTerm(),
      snapshotIndex: this.snapshot?.index ?? 0,
      conf: copyConfState(this.conf),
      transferee: this.leadTransferee,
      peers,
      leaderCommit: Math.max(this.leaderCommit, this.log.committed),
    };
  }

  /** The highest index known to be committed (cheaper than `status()`, for the driver's hot path). */
  committedIndex(): number {
    return this.log.committed;
  }

  logView(): LogView {
    const log = this.log;
    return {
      firstIndex: () => log.firstIndex(),
      lastIndex: () => log.lastIndex(),
      term: (index) => log.term(index),
      entries: (lo, hi) => (lo >= hi ? [] : log.slice(lo, hi, Number.POSITIVE_INFINITY)),
    };
  }

  private hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  private softState(): SoftState {
    return { role: this.role, term: this.term, leader: this.leader };
  }

  // ---------------------------------------------------------------------------------------------
  // Roles and elections (§5.2, thesis §9.6 PreVote, §6.2 CheckQuorum)

  /** May this node campaign? */
  private isPromotable(): boolean {
    if (this.incoming?.installing === true) return false;
    if (this.conf.voters.includes(this.id)) return true;
    // Thesis §4.2.2: a server missing from its own latest configuration still campaigns while that
    // configuration is uncommitted, as it may be needed to commit it. (A leader that appended its
    // own removal and restarted would otherwise wait forever on a follower that lacks the entry.)
    return this.log.lastConfIndex() > this.log.committed && this.confBeforeLast.voters.includes(this.id);
  }

  private resetRoleState(term: number): void {
    this.leaderCommit = 0;
    if (term !== this.term) {
      if (term < this.term) invariantFailed(`term going back from ${this.term} to ${term}`);
      this.term = term;
      this.vote = null;
      // A partial transfer from the old term's leader will not be finished; an install in flight will.
      if (this.incoming?.installing !== true) this.incoming = null;
    }
    this.leader = null;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.drawElectionTimeout();
    this.votes.clear();
    this.selfVote = 'counted';
    this.progress.clear();
    this.dirtyPeers.clear();
    this.leadTransferee = null;
    this.uncommittedBytes = 0;
    this.reads.clear();
  }

  /**
   * Ticks until a follower or candidate campaigns: random in [T, 2T) (thesis §5.2); in the window
   * after `forgetLeader`, random in [T/4, T/2), long enough for a vote round (an fsync on each side)
   * on a busy machine, short against a full timeout.
   */
  private drawElectionTimeout(): number {
    const t = this.limits.electionTimeoutTicks;
    if (this.leaderGoneTicks === 0) return t + this.randomInt(t);
    const quarter = Math.max(1, Math.floor(t / 4));
    return quarter + this.randomInt(quarter);
  }

  /** A leader is known again: close the short-election window (no effect when it is closed). */
  private leaderKnown(): void {
    if (this.leaderGoneTicks === 0) return;
    this.leaderGoneTicks = 0;
    this.randomizedElectionTimeout = this.drawElectionTimeout();
  }

  private becomeFollower(term: number, leader: NodeId | null): void {
    if (this.role === 'leader') this.logger?.info({ term }, 'stepping down');
    if (leader !== null) this.leaderGoneTicks = 0;
    this.resetRoleState(term);
    this.role = 'follower';
    this.leader = leader;
  }

  private becomeLeader(): void {
    if (this.role !== 'candidate') invariantFailed(`becoming leader from ${this.role}`);
    this.leaderGoneTicks = 0;
    this.resetRoleState(this.term);
    this.role = 'leader';
    this.leader = this.id;
    for (const id of this.members()) this.addProgress(id);
    // No membership change until this term's first entry (the no-op) commits: a change appended
    // before that could be decided by a majority of a configuration a previous leader left behind.
    this.pendingConfIndex = this.appendAsLeader(EntryType.Normal, EMPTY);
    this.logger?.info({ term: this.term, lastIndex: this.log.lastIndex() }, 'became leader');
  }

  private tickElection(): void {
    if (this.leaderGoneTicks > 0) this.leaderGoneTicks--;
    this.electionElapsed++;
    if (this.isPromotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.startCampaign(this.preVote ? 'pre' : 'real');
    }
  }

  private tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.limits.electionTimeoutTicks) {
      this.electionElapsed = 0;
      if (this.checkQuorum && !this.quorumActive()) {
        this.logger?.warn({ term: this.term }, 'no quorum heard within an election timeout');
        this.becomeFollower(this.term, null);
        return;
      }
      if (this.leadTransferee !== null) {
        this.logger?.warn({ to: this.leadTransferee }, 'leadership transfer timed out');
        this.leadTransferee = null;
      }
    }
    for (const [id, pr] of this.progress) {
      if (pr.snapshot !== null && tickOutgoing(pr.snapshot, this.limits.electionTimeoutTicks))
        this.markDirty(id, false);
    }
    if (this.heartbeatElapsed >= this.limits.heartbeatIntervalTicks) {
      this.heartbeatElapsed = 0;
      this.broadcastHeartbeat();
    }
  }

  /** CheckQuorum: true when a quorum (counting this leader) was heard from since the last check. */
  private quorumActive(): boolean {
    const active = isQuorum(
      this.conf.voters,
      (id) => id === this.id || this.progress.get(id)?.recentActive === true,
    );
    for (const pr of this.progress.values()) pr.recentActive = false;
    return active;
  }

  private startCampaign(kind: CampaignKind): void {
    if (kind === 'pre') {
      this.resetRoleState(this.term);
      this.role = 'pre-candidate';
    } else {
      this.resetRoleState(this.term + 1);
      this.role = 'candidate';
      this.vote = this.id;
    }
    this.logger?.debug({ kind, term: this.term }, 'campaigning');
    if (kind === 'pre') {
      this.votes.set(this.id, true);
      if (this.tallyVotes()) return;
    } else {
      // The vote for itself counts once the new term and vote are durable (see ready/persisted):
      // a leader must never send in a term it could forget, even a single voter with learners.
      this.selfVote = 'awaiting-ready';
    }
    const type: VoteRequest['type'] = kind === 'pre' ? 'preVote' : 'vote';
    const term = kind === 'pre' ? this.term + 1 : this.term;
    for (const to of this.conf.voters) {
      if (to === this.id) continue;
      const request = { type, to, term, lastIndex: this.log.lastIndex(), lastTerm: this.log.lastTerm() };
      // A real vote request goes out only once this node's own vote for itself is durable.
      this.send({ ...request, transfer: kind === 'transfer' }, kind !== 'pre');
    }
  }

  /** Counts votes; acts on a decided election. Returns true when the election is decided. */
  private tallyVotes(): boolean {
    const outcome = voteOutcome(this.conf.voters, this.votes);
    if (outcome === 'pending') return false;
    if (outcome === 'lost' || !this.isPromotable()) {
      this.becomeFollower(this.term, null);
    } else if (this.role === 'pre-candidate') {
      this.startCampaign('real');
    } else {
      this.becomeLeader();
    }
    return true;
  }

  private handleVoteRequest(m: VoteRequest): void {
    const isPre = m.type === 'preVote';
    const canVote =
      this.vote === m.from || (this.vote === null && this.leader === null) || (isPre && m.term > this.term);
    const type: VoteResponse['type'] = isPre ? 'preVoteResp' : 'voteResp';
    if (canVote && this.log.isUpToDate(m.lastIndex, m.lastTerm)) {
      if (!isPre) {
        this.vote = m.from;
        this.electionElapsed = 0;
      }
      // A pre-vote grant is answered in the term asked about; it changes no durable state.
      this.send({ type, to: m.from, reject: false, term: m.term }, !isPre);
    } else {
      this.send({ type, to: m.from, reject: true }, true);
    }
  }

  private handleVoteResponse(m: VoteResponse): void {
    const expected = m.type === 'preVoteResp' ? 'pre-candidate' : 'candidate';
    if (this.role !== expected) return;
    this.votes.set(m.from, !m.reject);
    this.tallyVotes();
  }

  // ---------------------------------------------------------------------------------------------
  // Message dispatch

  private stepValid(m: Message): void {
    if (m.term > this.term) {
      if (!this.acceptHigherTerm(m)) return;
    } else if (m.term < this.term) {
      this.answerLowerTerm(m);
      return;
    }
    switch (m.type) {
      case 'vote':
      case 'preVote':
        this.handleVoteRequest(m);
        return;
      case 'voteResp':
      case 'preVoteResp':
        this.handleVoteResponse(m);
        return;
      case 'append':
        this.handleAppend(m);
        return;
      case 'heartbeat':
        this.handleHeartbeat(m);
        return;
      case 'snapshot':
        this.handleSnapshotChunk(m);
        return;
      case 'appendResp':
        this.handleAppendResponse(m);
        return;
      case 'heartbeatResp':
        this.handleHeartbeatResponse(m);
        return;
      case 'snapshotResp':
        this.handleSnapshotResponse(m);
        return;
      case 'timeoutNow':
        this.handleTimeoutNow();
        return;
    }
  }

  /** A message from a newer term. Returns false when it must be ignored. */
  private acceptHigherTerm(m: Message): boolean {
    if (m.type === 'vote' || m.type === 'preVote') {
      // Leader lease: while a live leader is heard from, (pre)votes cannot disrupt it (thesis §4.2.3).
      const inLease =
        this.checkQuorum && this.leader !== null && this.electionElapsed < this.limits.electionTimeoutTicks;
      if (inLease && !m.transfer) return false;
    }
    if (m.type === 'preVote') return true;
    if (m.type === 'preVoteResp' && !m.reject) return true;
    const fromLeader = m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot';
    this.becomeFollower(m.term, fromLeader ? m.from : null);
    return true;
  }

  /** A message from an older term: tell a stale leader or pre-candidate our term, ignore the rest. */
  private answerLowerTerm(m: Message): void {
    if (m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot') {
      // Without this, a node that raised its term while partitioned (and cannot win) would never
      // learn of the current leader, and the leader never of its term (CheckQuorum stops votes).
      this.send({ type: 'appendResp', to: m.from, reject: true, index: 0, hintIndex: 0, hintTerm: 0 }, true);
    } else if (m.type === 'preVote') {
      this.send({ type: 'preVoteResp', to: m.from, reject: true }, true);
    }
  }

  /** A leader's message in our term: follow that leader. Two leaders in one term is impossible. */
  private followLeader(from: NodeId): void {
    if (this.role === 'leader') invariantFailed(`two leaders in term ${this.term}: ${this.id} and ${from}`);
    if (this.role !== 'follower') this.becomeFollower(this.term, from);
    this.leaderKnown();
    if (this.leader === null) this.leader = from;
    if (this.leader !== from) invariantFailed(`term ${this.term} has leaders ${this.leader} and ${from}`);
    this.electionElapsed = 0;
  }

  private handleTimeoutNow(): void {
    if (this.role === 'leader' || !this.isPromotable()) return;
    this.logger?.info({ term: this.term }, 'campaigning on leadership transfer');
    this.startCampaign('transfer');
  }

  // ---------------------------------------------------------------------------------------------
  // Follower: replication (§5.3), heartbeats, InstallSnapshot (§7)

  private handleAppend(m: AppendMessage): void {
    this.followLeader(m.from);
    this.leaderCommit = Math.max(this.leaderCommit, m.commit);
    if (this.incoming?.installing) return;
    // The leader went back to sending entries: the partial snapshot will not be finished. (While a
    // transfer runs the log must not change, so that its resetLog decision stays right.)
    this.incoming = null;
    if (m.prevIndex < this.log.committed) {
      this.replyAppend(m.from, this.log.committed);
      return;
    }
    if (!this.log.matchTerm(m.prevIndex, m.prevTerm)) {
      const hint = this.log.findConflictByTerm(Math.min(m.prevIndex, this.log.lastIndex()), m.prevTerm);
      this.send(
        {
          type: 'appendResp',
          to: m.from,
          reject: true,
          index: m.prevIndex,
          hintIndex: hint.index,
          hintTerm: hint.term,
        },
        true,
      );
      return;
    }
    const lastNew = m.prevIndex + m.entries.length;
    const conflict = this.log.findConflict(m.entries);
    if (conflict > 0) {
      if (conflict <= this.log.committed) {
        invariantFailed(`entry ${conflict} from ${m.from} conflicts with committed ${this.log.committed}`);
      }
      const fresh = m.entries.slice(conflict - m.prevIndex - 1);
      const truncated = this.log.append(fresh);
      if (truncated || fresh.some((e) => e.type === EntryType.ConfChange)) this.recomputeConf();
    }
    this.log.commitTo(Math.min(m.commit, lastNew));
    this.replyAppend(m.from, lastNew);
  }

  private replyAppend(to: NodeId, index: number): void {
    this.send({ type: 'appendResp', to, reject: false, index, hintIndex: 0, hintTerm: 0 }, true);
  }

  private handleHeartbeat(m: HeartbeatMessage): void {
    this.followLeader(m.from);
    if (!this.incoming?.installing) this.log.commitTo(m.commit);
    this.leaderCommit = Math.max(this.leaderCommit, m.commit);
    this.send({ type: 'heartbeatResp', to: m.from, readSeq: m.readSeq }, true);
  }

  private handleSnapshotChunk(m: SnapshotMessage): void {
    this.followLeader(m.from);
    this.leaderCommit = Math.max(this.leaderCommit, m.meta.index);
    const decision = decideChunk(this.incoming, m, this.log.committed);
    const reply = (nextOffset: number, reject: boolean) =>
      this.send(
        {
          type: 'snapshotResp',
          to: m.from,
          snapshotIndex: m.meta.index,
          snapshotTerm: m.meta.term,
          nextOffset,
          reject,
        },
        true,
      );
    switch (decision) {
      case 'stale':
        this.replyAppend(m.from, this.log.committed);
        return;
      case 'ignore':
        return;
      case 'duplicate':
        reply(this.incoming!.nextOffset, false);
        return;
      case 'gap':
        reply(
          this.incoming !== null && isSameTransfer(this.incoming, m) ? this.incoming.nextOffset : 0,
          true,
        );
        return;
      case 'start':
        this.incoming = {
          from: m.from,
          term: m.term,
          meta: m.meta,
          sizeBytes: m.sizeBytes,
          nextOffset: 0,
          installing: false,
          resetLog: !this.log.matchTerm(m.meta.index, m.meta.term),
        };
        break;
      case 'accept':
        break;
    }
    const incoming = this.incoming!;
    this.chunksToPersist.push({
      meta: m.meta,
      sizeBytes: m.sizeBytes,
      offset: m.offset,
      data: m.data,
      done: m.done,
      resetLog: incoming.resetLog,
    });
    incoming.nextOffset += m.length;
    // The final chunk is acknowledged by installing it (see installSnapshot), not here.
    if (m.done) incoming.installing = true;
    else reply(incoming.nextOffset, false);
  }

  /** The final chunk of `incoming` is durable: reset the log to the snapshot and restore from it. */
  private installSnapshot(incoming: IncomingSnapshot): void {
    if (this.incoming !== incoming) invariantFailed('installed snapshot is not the one being received');
    this.incoming = null;
    const { meta } = incoming;
    const replaced = this.log.restore({ index: meta.index, term: meta.term });
    if (replaced !== incoming.resetLog) {
      invariantFailed(
        `snapshot ${meta.index}/${meta.term}: log replaced ${replaced}, announced ${incoming.resetLog}`,
      );
    }
    this.snapshot = meta;
    this.snapshotSizeBytes = incoming.sizeBytes;
    this.baseConf = copyConfState(meta.conf);
    this.recomputeConf();
    this.pendingRestore = meta;
    this.logger?.info({ index: meta.index, term: meta.term, replaced }, 'installed snapshot');
    this.send(
      { type: 'appendResp', to: incoming.from, reject: false, index: meta.index, hintIndex: 0, hintTerm: 0 },
      false,
    );
  }

  // ---------------------------------------------------------------------------------------------
  // Leader: replication, commit (§5.3, §5.4.2), heartbeats, snapshots

  private members(): NodeId[] {
    return [...this.conf.voters, ...this.conf.learners].filter((id) => id !== this.id);
  }

  private addProgress(id: NodeId): void {
    const pr = new Progress(
      this.log.lastIndex() + 1,
      this.limits.maxInflightAppends,
      this.limits.maxInflightBytes,
    );
    this.progress.set(id, pr);
    this.markDirty(id, true);
  }

  private markDirty(id: NodeId, sendEvenIfEmpty: boolean): void {
    this.dirtyPeers.set(id, sendEvenIfEmpty || this.dirtyPeers.get(id) === true);
  }

  private markAllDirty(): void {
    for (const id of this.progress.keys()) this.markDirty(id, false);
  }

  private refuseProposal(): { ok: false; reason: Refusal; leader: NodeId | null } | null {
    if (this.role !== 'leader' || !this.isMember(this.id)) return this.refuse(Refusal.NotLeader);
    if (this.leadTransferee !== null) return this.refuse(Refusal.Transferring);
    return null;
  }

  private refuse(reason: Refusal): { ok: false; reason: Refusal; leader: NodeId | null } {
    return { ok: false, reason, leader: this.role === 'leader' ? this.id : this.leader };
  }

  private isMember(id: NodeId): boolean {
    return this.conf.voters.includes(id) || this.conf.learners.includes(id);
  }

  private committedInTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }

  private appendAsLeader(type: EntryType, data: Uint8Array): number {
    const index = this.log.lastIndex() + 1;
    this.log.append([{ index, term: this.term, type, data }]);
    if (type === EntryType.ConfChange) this.recomputeConf();
    this.markAllDirty();
    // A single-voter cluster commits as soon as the entry is durable; see persisted().
    return index;
  }

  /** Sends what dirty followers need, and a heartbeat round if reads wait for one. */
  private flushLeaderSends(): void {
    for (const [id, sendEvenIfEmpty] of this.dirtyPeers) this.sendAppends(id, sendEvenIfEmpty);
    this.dirtyPeers.clear();
    if (this.reads.roundPending) this.broadcastHeartbeat();
  }

  /**
   * Sends AppendEntries to `id` until it is caught up or its window is full. A commit index alone
   * is never worth a message: followers learn it with the next append or heartbeat (within one
   * heartbeat interval). Sending it at once would cost, per commit, a message to every follower and
   * an answer from each, ahead of the client's confirm in the leader's turn; only followers' apply
   * lags, and nothing waits on that (clients are served by the leader).
   */
  private sendAppends(id: NodeId, sendEvenIfEmpty: boolean): void {
    const pr = this.progress.get(id);
    if (pr === undefined) return;
    let force = sendEvenIfEmpty;
    while (true) {
      if (pr.state === ReplicationState.Snapshot) {
        this.sendSnapshotChunks(id, pr);
        return;
      }
      if (pr.isPaused()) return;
      const prevIndex = pr.next - 1;
      const prevTerm = this.log.term(prevIndex);
      if (prevTerm === undefined) {
        this.startSnapshotTransfer(pr);
        continue;
      }
      const last = this.log.lastIndex();
      const entries = pr.next <= last ? this.log.slice(pr.next, last + 1, this.limits.maxAppendBytes) : [];
      if (entries.length === 0 && !force) return;
      this.send({ type: 'append', to: id, prevIndex, prevTerm, entries, commit: this.log.committed }, false);
      pr.sentEntries(
        entries.length,
        prevIndex + entries.length,
        entries.reduce((n, e) => n + entryBytes(e), 0),
      );
      force = false;
      if (entries.length === 0) return;
    }
  }

  private startSnapshotTransfer(pr: Progress): void {
    if (this.snapshot === null)
      invariantFailed(`entries below ${this.log.firstIndex()} compacted without a snapshot`);
    pr.becomeSnapshot(startOutgoing(this.snapshot, this.snapshotSizeBytes));
  }

  private sendSnapshotChunks(id: NodeId, pr: Progress): void {
    const transfer = pr.snapshot!;
    for (const chunk of planChunks(
      transfer,
      this.limits.snapshotChunkBytes,
      this.limits.snapshotChunksInflight,
    )) {
      const { meta, sizeBytes } = transfer;
      this.send({ type: 'snapshot', to: id, meta, sizeBytes, ...chunk, data: EMPTY }, false);
    }
  }

  private broadcastHeartbeat(): void {
    this.reads.roundPending = false;
    for (const [id, pr] of this.progress) {
      const commit = Math.min(pr.match, this.log.committed);
      this.send({ type: 'heartbeat', to: id, commit, readSeq: this.reads.lastSeq }, false);
    }
  }

  private handleAppendResponse(m: AppendResponse): void {
    const pr = this.progress.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    if (m.reject) {
      const hint = m.hintTerm > 0 ? this.log.findConflictByTerm(m.hintIndex, m.hintTerm).index : m.hintIndex;
      if (pr.maybeDecreaseTo(m.index, hint)) {
        if (pr.state === ReplicationState.Replicate) pr.becomeProbe();
        this.markDirty(m.from, true);
      }
      return;
    }
    if (!pr.maybeUpdate(m.index)) {
      if (pr.state === ReplicationState.Replicate) pr.inflights.freeUpTo(m.index);
      return;
    }
    if (pr.state === ReplicationState.Replicate) pr.inflights.freeUpTo(m.index);
    else if (pr.state === ReplicationState.Probe || pr.match >= pr.snapshot!.meta.index) pr.becomeReplicate();
    this.maybeCommit();
    if (this.role !== 'leader') return;
    this.markDirty(m.from, false);
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) {
      this.send({ type: 'timeoutNow', to: m.from }, false);
    }
  }

  private handleHeartbeatResponse(m: HeartbeatResponse): void {
    const pr = this.progress.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    pr.probeSent = false;
    // Acknowledgements may have been lost: let one message through so the follower can tell us.
    if (pr.state === ReplicationState.Replicate && pr.inflights.full()) pr.inflights.freeOldest();
    if (pr.match < this.log.lastIndex() || pr.state === ReplicationState.Probe) this.markDirty(m.from, true);
    if (m.readSeq > pr.readSeqAcked) {
      pr.readSeqAcked = m.readSeq;
      this.releaseReads();
    }
  }

  private handleSnapshotResponse(m: SnapshotResponse): void {
    const pr = this.progress.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    const transfer = pr.snapshot;
    if (transfer === null || transfer.meta.index !== m.snapshotIndex || transfer.meta.term !== m.snapshotTerm)
      return;
    if (onChunkAck(transfer, m.nextOffset, m.reject)) this.markDirty(m.from, false);
  }

  /** Commits the newest index a quorum holds, if it is from this term (§5.4.2, Figure 8). */
  private maybeCommit(): void {
    const matchOf = (id: NodeId) =>
      id === this.id ? this.log.persisted : (this.progress.get(id)?.match ?? 0);
    const index = quorumMatchIndex(this.conf.voters, matchOf);
    if (index <= this.log.committed || this.log.term(index) !== this.term) return;
    const previous = this.log.committed;
    this.log.commitTo(index);
    this.onLeaderCommit(previous);
  }

  private onLeaderCommit(previous: number): void {
    const committedBytes = this.log.bytesInTerm(previous + 1, this.log.committed + 1, this.term);
    this.uncommittedBytes = Math.max(0, this.uncommittedBytes - committedBytes);
    this.reads.onTermCommit(this.log.committed);
    this.releaseReads();
    if (!this.isMember(this.id) && this.log.committed >= this.log.lastConfIndex()) {
      // Thesis §4.2.2: a leader removed from the membership steps down once the change commits.
      this.logger?.info({ index: this.log.committed }, 'removed from membership: stepping down');
      this.becomeFollower(this.term, null);
      return;
    }
    this.markAllDirty();
  }

  private releaseReads(): void {
    const seqOf = (id: NodeId) =>
      id === this.id ? this.reads.lastSeq : (this.progress.get(id)?.readSeqAcked ?? 0);
    const confirmed = quorumMatchIndex(this.conf.voters, seqOf);
    for (const state of this.reads.release(confirmed)) this.readStates.push(state);
  }

  // ---------------------------------------------------------------------------------------------
  // Membership (thesis §4.1: in effect once appended)

  private recomputeConf(): void {
    let conf = this.baseConf;
    let beforeLast = this.baseConf;
    for (const entry of this.log.confEntriesAfter(this.snapshot?.index ?? 0)) {
      beforeLast = conf;
      conf = applyConfChange(conf, decodeConfChange(entry.data)!);
    }
    this.confBeforeLast = beforeLast;
    const previous = this.conf;
    this.conf = conf;
    if (this.role === 'leader') this.syncProgressWithConf();
    if (this.role !== 'leader' && previous !== conf && !this.isPromotable() && this.role !== 'follower') {
      this.becomeFollower(this.term, null);
    }
  }

  private syncProgressWithConf(): void {
    const members = new Set(this.members());
    for (const id of this.progress.keys()) if (!members.has(id)) this.progress.delete(id);
    for (const id of members) if (!this.progress.has(id)) this.addProgress(id);
    if (this.leadTransferee !== null && !this.conf.voters.includes(this.leadTransferee))
      this.leadTransferee = null;
  }

  // ---------------------------------------------------------------------------------------------

  /** Queues a message; `afterPersist` ones wait until this Ready is durable. */
  private send(partial: Outgoing, afterPersist: boolean): void {
    const message = { group: this.group, from: this.id, term: this.term, ...partial } as Message;
    if (!afterPersist) this.messages.push(message);
    else if (message.type === 'appendResp' && !message.reject) this.sendAcceptance(message);
    else this.messagesAfterPersist.push(message);
  }

  /**
   * Queues an acceptance, replacing one the same Ready already holds for the same leader and term:
   * acceptances are cumulative (the leader frees its in-flight appends up to the index), so when
   * several appends become durable together one answer, for the highest index, does for all.
   */
  private sendAcceptance(message: Extract<Message, { type: 'appendResp' }>): void {
    const queued = this.messagesAfterPersist;
    for (let i = queued.length - 1; i >= 0; i--) {
      const earlier = queued[i]!;
      if (earlier.type !== 'appendResp' || earlier.reject || earlier.to !== message.to) continue;
      if (earlier.term !== message.term) break;
      queued.splice(i, 1);
      message.index = Math.max(message.index, earlier.index);
      break;
    }
    queued.push(message);
  }
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

function sameSoftState(a: SoftState, b: SoftState): boolean {
  return a.role === b.role && a.term === b.term && a.leader === b.leader;
}
