/**
 * Safety properties checked while the simulation runs (Raft paper Figure 3), fed by the simulated
 * drivers as things happen:
 *
 * - election safety: at most one leader per term;
 * - vote safety: a node grants at most one vote per term, across restarts (observed on the wire);
 * - log matching: an (index, term) pair always names the same data and the same predecessor term,
 *   on every node (checked on every batch a node persists and on full sweeps of in-memory logs);
 * - leader completeness: a new leader holds every entry known committed;
 * - commit stability: an index, once committed anywhere, is never committed with another term;
 * - state machine safety: every node applies the same entry at each index (a hash chain per index
 *   is compared with the first one seen), including state restored from snapshots;
 * - commit monotonicity: a running node's commit index never decreases; after a restart it is at
 *   least the commit index of the last hard state that was durable when the node crashed;
 * - linearizable reads: a ReadIndex result is at least the index of every write acknowledged
 *   before the read was requested;
 * - at the end: every acknowledged proposal is applied, at its index, on every live member.
 *
 * A violation is recorded as a message; the simulation stops at the first one.
 */
import type { LogView } from '../node.js';
import type { Entry, NodeId } from '../types.js';

interface EntryFact {
  dataKey: string;
  prevTerm: number;
}

export class Checker {
  readonly violations: string[] = [];
  private readonly leaderOfTerm = new Map<number, NodeId>();
  private readonly voteOf = new Map<string, NodeId>();
  private readonly entryFacts = new Map<string, EntryFact>();
  /** index → term of entries known committed. */
  private readonly committedTerm = new Map<number, number>();
  maxCommitted = 0;
  /** index → state-machine hash after applying it, and the entry key applied there. */
  private readonly canonicalHash = new Map<number, number>();
  readonly canonicalKey = new Map<number, string>();
  /** Highest index of any proposal acknowledged to its client so far. */
  maxAckedIndex = 0;
  private readonly acked: { index: number; key: string }[] = [];

  fail(message: string): void {
    this.violations.push(message);
  }

  get ok(): boolean {
    return this.violations.length === 0;
  }

  onLeader(id: NodeId, term: number, log: LogView): void {
    const existing = this.leaderOfTerm.get(term);
    if (existing !== undefined && existing !== id) {
      this.fail(`election safety: ${existing} and ${id} both leaders in term ${term}`);
      return;
    }
    this.leaderOfTerm.set(term, id);
    this.checkLeaderCompleteness(id, term, log);
  }

  private checkLeaderCompleteness(id: NodeId, term: number, log: LogView): void {
    if (log.lastIndex() < this.maxCommitted) {
      this.fail(
        `leader completeness: ${id} leads term ${term} with last index ${log.lastIndex()} < committed ${this.maxCommitted}`,
      );
      return;
    }
    for (let index = log.firstIndex(); index <= this.maxCommitted; index++) {
      const expected = this.committedTerm.get(index);
      if (expected !== undefined && log.term(index) !== expected) {
        this.fail(
          `leader completeness: ${id} leads term ${term} but has ${index}/${log.term(index)}, committed ${index}/${expected}`,
        );
        return;
      }
    }
  }

  onVoteGranted(voter: NodeId, term: number, candidate: NodeId): void {
    const key = `${term}/${voter}`;
    const previous = this.voteOf.get(key);
    if (previous !== undefined && previous !== candidate) {
      this.fail(`vote safety: ${voter} voted for ${previous} and ${candidate} in term ${term}`);
    }
    this.voteOf.set(key, candidate);
  }

  /** Entries `id` is about to persist; `prevTerm` is the term of the entry before the first. */
  onPersistEntries(id: NodeId, entries: Entry[], prevTerm: number | undefined): void {
    let prev = prevTerm;
    for (const entry of entries) {
      if (prev !== undefined) this.checkEntryFact(id, entry, prev);
      prev = entry.term;
    }
  }

  private checkEntryFact(id: NodeId, entry: Entry, prevTerm: number): void {
    const key = `${entry.index}/${entry.term}`;
    const dataKey = entryKey(entry);
    const fact = this.entryFacts.get(key);
    if (fact === undefined) {
      this.entryFacts.set(key, { dataKey, prevTerm });
    } else if (fact.dataKey !== dataKey || fact.prevTerm !== prevTerm) {
      this.fail(
        `log matching: ${id} has ${key} = ${dataKey} after term ${prevTerm}; elsewhere ${fact.dataKey} after term ${fact.prevTerm}`,
      );
    }
  }

  /** Full sweep of one node's in-memory log. */
  checkLog(id: NodeId, log: LogView): void {
    const first = log.firstIndex();
    const entries = log.entries(first, log.lastIndex() + 1);
    this.onPersistEntries(id, entries, log.term(first - 1));
  }

  /** `id` moved its commit index from `from` to `to`; terms of the newly committed entries from its log. */
  onCommit(id: NodeId, from: number, to: number, log: LogView): void {
    for (let index = Math.max(from + 1, log.firstIndex()); index <= to; index++) {
      const term = log.term(index);
      if (term === undefined) continue;
      const known = this.committedTerm.get(index);
      if (known === undefined) this.committedTerm.set(index, term);
      else if (known !== term) {
        this.fail(
          `commit stability: ${id} committed ${index}/${term}, but ${index}/${known} was committed before`,
        );
        return;
      }
    }
    this.maxCommitted = Math.max(this.maxCommitted, to);
  }

  onApply(id: NodeId, entry: Entry, hashAfter: number): void {
    this.checkCanonical(id, entry.index, hashAfter, `apply of ${entry.index}/${entry.term}`);
    if (!this.canonicalKey.has(entry.index)) this.canonicalKey.set(entry.index, entryKey(entry));
  }

  onRestore(id: NodeId, index: number, hash: number): void {
    this.checkCanonical(id, index, hash, `restore of snapshot ${index}`);
  }

  private checkCanonical(id: NodeId, index: number, hash: number, what: string): void {
    const known = this.canonicalHash.get(index);
    if (known === undefined) this.canonicalHash.set(index, hash);
    else if (known !== hash) {
      this.fail(
        `state machine safety: ${id} ${what} gives state ${hash}, others reached ${known} at ${index}`,
      );
    }
  }

  /** A proposal was acknowledged to its client: applied by its leader at the index and term it got. */
  onAck(index: number, key: string): void {
    this.maxAckedIndex = Math.max(this.maxAckedIndex, index);
    this.acked.push({ index, key });
  }

  /** End of run: every acknowledged proposal sits at its index in the canonical sequence, and each
   * live member's state machine has reached it. */
  checkAcknowledged(members: { id: NodeId; applied: number }[]): void {
    for (const { index, key } of this.acked) {
      if (this.canonicalKey.get(index) !== key) {
        this.fail(
          `durability: acknowledged ${key} at ${index}, but ${this.canonicalKey.get(index)} was applied there`,
        );
        return;
      }
      const behind = members.find((m) => m.applied < index);
      if (behind !== undefined) {
        this.fail(
          `durability: acknowledged ${key} at ${index} not applied on ${behind.id} (applied ${behind.applied})`,
        );
        return;
      }
    }
  }

  onReadState(id: NodeId, readIndex: number, requiredIndex: number): void {
    if (readIndex < requiredIndex) {
      this.fail(
        `linearizable read: ${id} answered read at ${readIndex}, a write at ${requiredIndex} was acknowledged before`,
      );
    }
  }
}

const latin1 = new TextDecoder('latin1');

/** Compact identity of an entry's content for comparisons. */
export function entryKey(entry: Entry): string {
  return `${entry.type}:${latin1.decode(entry.data)}`;
}
