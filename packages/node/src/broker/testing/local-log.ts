/**
 * An in-process, single-node `ReplicatedLog` for tests of the runtime and the gateway: proposals
 * append to an array and commit on the next turn (`setImmediate`), applied in order through the
 * `ReplicatedStateMachine` interface. Leadership is under the test's control (become follower or
 * leader, change term, hold commits, drop or overwrite uncommitted proposals), so failover paths
 * can be driven without the Raft driver.
 *
 * Like the real driver it skips its own no-op entries when applying: a new term's no-op takes an
 * index, which is how a proposal "passed over" by a new leader looks to the application.
 */
import type {
  AppliedEntry,
  NodeStatus,
  ProposeOutcome,
  ReplicatedLog,
  ReplicatedStateMachine,
  Role,
} from '../../cluster/types.js';
import { DEFAULT_LIMITS as DEFAULT_RAFT_LIMITS } from '../../raft/index.js';

interface LogEntry {
  index: number;
  term: number;
  /** null: a leader's no-op, never handed to the state machine. */
  data: Uint8Array | null;
}

export interface LocalLogOptions {
  nodeId?: string;
  /** Advertised `host:port` of this node (shows up as the leader's address). */
  address?: string;
  /** Largest entry accepted (default 4 MiB, the Raft core's default); bigger ones are refused `too-large`. */
  maxEntryBytes?: number;
  /** Start as leader of this term (default 1); null starts as a follower with no leader known. */
  leaderTerm?: number | null;
  /**
   * Offer `sendProposals`, and commit and apply everything there and then, as the Raft driver may
   * when its drive runs inside the caller's flush (default: no `sendProposals`).
   */
  applyOnSendProposals?: boolean;
}

export class LocalLog implements ReplicatedLog {
  readonly nodeId: string;
  readonly address: string;
  private entries: LogEntry[] = [];
  private commitIndex = 0;
  private appliedIndex = 0;
  private role: Role = 'follower';
  private term = 0;
  private leaderId: string | null = null;
  private leaderAddress: string | null = null;
  private machine: ReplicatedStateMachine | null = null;
  private readonly listeners = new Set<(status: NodeStatus) => void>();
  private commitScheduled = false;
  private commitsHeld = false;
  private readonly barriers: { index: number; resolve: () => void }[] = [];
  readonly maxEntryBytes: number;
  /** Refuse every proposal with this answer (an overloaded log, a transfer to another node...). */
  refuseWith: Extract<ProposeOutcome, { ok: false }> | null = null;
  /** Every proposal's data, in order, for assertions. */
  readonly proposed: Uint8Array[] = [];

  constructor(options: LocalLogOptions = {}) {
    if (options.applyOnSendProposals === true) this.sendProposals = () => this.commitNow();
    this.nodeId = options.nodeId ?? 'n1';
    this.address = options.address ?? '127.0.0.1:7401';
    this.maxEntryBytes = options.maxEntryBytes ?? DEFAULT_RAFT_LIMITS.maxEntryBytes;
    const leaderTerm = options.leaderTerm === undefined ? 1 : options.leaderTerm;
    if (leaderTerm !== null) {
      this.term = leaderTerm;
      this.role = 'leader';
      this.leaderId = this.nodeId;
      this.leaderAddress = this.address;
      this.appendNoop();
    }
  }

  /** Connects the state machine entries are applied to (before anything is proposed). */
  attach(machine: ReplicatedStateMachine): void {
    this.machine = machine;
    this.scheduleCommit();
  }

  isLeader(): boolean {
    return this.role === 'leader';
  }

  get lastIndex(): number {
    return this.entries.length;
  }

  /** Data entries appended (not only proposed by the runtime), for assertions. */
  entriesOfTerm(term: number): number {
    return this.entries.filter((e) => e.term === term && e.data !== null).length;
  }

  // -------------------------------------------------------------------------------------------
  // ReplicatedLog

  sendProposals?: () => void;

  tryPropose(data: Uint8Array): ProposeOutcome {
    if (this.role !== 'leader') {
      const leaderAddress = this.leaderId === null ? null : this.leaderAddress;
      return { ok: false, reason: 'not-leader', leaderId: this.leaderId, leaderAddress };
    }
    if (this.refuseWith !== null) return this.refuseWith;
    if (data.length > this.maxEntryBytes) {
      return { ok: false, reason: 'too-large', leaderId: null, leaderAddress: null };
    }
    const entry = { index: this.entries.length + 1, term: this.term, data };
    this.entries.push(entry);
    this.proposed.push(data);
    this.scheduleCommit();
    return { ok: true, index: entry.index, term: entry.term };
  }

  status(): NodeStatus {
    return {
      nodeId: this.nodeId,
      role: this.role,
      term: this.term,
      leaderId: this.leaderId,
      leaderAddress: this.leaderAddress,
      commitIndex: this.commitIndex,
      appliedIndex: this.appliedIndex,
      lastIndex: this.entries.length,
      snapshotIndex: 0,
      members: [
        {
          id: this.nodeId,
          address: this.address,
          voter: true,
          matchIndex: this.role === 'leader' ? this.entries.length : null,
          connected: true,
        },
      ],
    };
  }

  onStatusChange(listener: (status: NodeStatus) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * As Raft's read index: until an entry of the leader's term is committed, the commit index is
   * not known, so the barrier also covers the term's first entry (and everything before it).
   */
  readBarrier(): Promise<void> {
    if (this.role !== 'leader') return Promise.reject(new Error('not the leader'));
    const firstOfTerm = this.entries.find((entry) => entry.term === this.term);
    const index = Math.max(this.commitIndex, firstOfTerm?.index ?? 0);
    if (this.appliedIndex >= index) return Promise.resolve();
    return new Promise((resolve) => this.barriers.push({ index, resolve }));
  }

  async transferLeadership(): Promise<void> {
    throw new Error('a single-node log cannot transfer leadership');
  }

  async addLearner(): Promise<void> {
    throw new Error('not supported by the local log');
  }

  async promoteLearner(): Promise<void> {
    throw new Error('not supported by the local log');
  }

  async removeMember(): Promise<void> {
    throw new Error('not supported by the local log');
  }

  // -------------------------------------------------------------------------------------------
  // Test controls

  /** Keep proposals uncommitted until `releaseCommits`. */
  holdCommits(): void {
    this.commitsHeld = true;
  }

  releaseCommits(): void {
    this.commitsHeld = false;
    this.scheduleCommit();
  }

  /** Entries proposed and not committed yet. */
  get uncommitted(): number {
    return this.entries.length - this.commitIndex;
  }

  /** Become a follower of `leaderId` (null: an election is going on) in `term` (default: same). */
  becomeFollower(leaderId: string | null, leaderAddress: string | null = null, term = this.term): void {
    this.role = 'follower';
    this.term = term;
    this.leaderId = leaderId;
    this.leaderAddress = leaderAddress;
    this.notify();
  }

  /** Become leader of `term` (default: the next one), appending the term's no-op. */
  becomeLeader(term = this.term + 1): void {
    this.role = 'leader';
    this.term = term;
    this.leaderId = this.nodeId;
    this.leaderAddress = this.address;
    this.appendNoop();
    this.notify();
  }

  /**
   * A new leader overwrote our uncommitted suffix: drop it, then append `replacement` entries of
   * `term` (data entries of another node, or a no-op when `null`) and commit them. The lost
   * proposals' indexes now hold entries of another term.
   */
  overwriteUncommitted(term: number, replacement: (Uint8Array | null)[] = [null]): void {
    this.entries.length = this.commitIndex;
    for (const data of replacement) this.entries.push({ index: this.entries.length + 1, term, data });
    if (term > this.term) this.term = term;
    this.scheduleCommit();
  }

  /** Appends an entry made by another leader (as a follower receiving it), committed next turn. */
  appendForeign(data: Uint8Array, term = this.term): void {
    this.entries.push({ index: this.entries.length + 1, term, data });
    this.scheduleCommit();
  }

  // -------------------------------------------------------------------------------------------
  // Committing and applying

  private appendNoop(): void {
    this.entries.push({ index: this.entries.length + 1, term: this.term, data: null });
    this.scheduleCommit();
  }

  private commitNow(): void {
    if (this.commitsHeld || this.machine === null || this.role !== 'leader') return;
    this.commitIndex = this.entries.length;
    this.applyCommitted();
  }

  private scheduleCommit(): void {
    if (this.commitScheduled || this.machine === null) return;
    this.commitScheduled = true;
    setImmediate(() => {
      this.commitScheduled = false;
      if (this.commitsHeld) return;
      this.commitIndex = this.entries.length;
      this.applyCommitted();
    });
  }

  private applyCommitted(): void {
    const machine = this.machine;
    if (machine === null) return;
    while (this.appliedIndex < this.commitIndex) {
      const entry = this.entries[this.appliedIndex] as LogEntry;
      this.appliedIndex = entry.index;
      if (entry.data !== null) {
        const applied: AppliedEntry = { index: entry.index, term: entry.term, data: entry.data };
        machine.apply(applied);
      }
    }
    for (let i = this.barriers.length - 1; i >= 0; i--) {
      const barrier = this.barriers[i]!;
      if (barrier.index <= this.appliedIndex) {
        this.barriers.splice(i, 1);
        barrier.resolve();
      }
    }
  }

  private notify(): void {
    const status = this.status();
    for (const listener of [...this.listeners]) listener(status);
  }
}
