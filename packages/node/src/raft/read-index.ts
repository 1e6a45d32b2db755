/**
 * ReadIndex bookkeeping on the leader (Raft §6.4, thesis §6.4): a read may be served at the commit
 * index the leader had when the read arrived, once the leader has (1) committed an entry of its
 * own term and (2) confirmed with a heartbeat round sent after the read arrived that a quorum still
 * follows it.
 *
 * Rounds are numbered: every read takes the next number, heartbeats carry the newest number, and
 * followers echo it. A read is confirmed when a quorum has echoed a number >= its own.
 */
import type { ReadState } from './ready.js';

interface PendingRead {
  seq: number;
  index: number;
  ctx: number;
}

export class ReadIndexQueue {
  /** Newest round number handed out in this term. */
  lastSeq = 0;
  /** A heartbeat round carrying `lastSeq` must go out. */
  roundPending = false;
  private pending: PendingRead[] = [];
  /** Reads that arrived before an entry of this term committed (their index is not known yet). */
  private awaitingTermCommit: number[] = [];

  get size(): number {
    return this.pending.length + this.awaitingTermCommit.length;
  }

  /** A read at `committed`, or at a later point when no entry of this term is committed yet (null). */
  add(ctx: number, committed: number | null): void {
    if (committed === null) {
      this.awaitingTermCommit.push(ctx);
      return;
    }
    this.lastSeq++;
    this.pending.push({ seq: this.lastSeq, index: committed, ctx });
    this.roundPending = true;
  }

  /** The first entry of this term committed at `committed`: waiting reads get that index. */
  onTermCommit(committed: number): void {
    const waiting = this.awaitingTermCommit;
    this.awaitingTermCommit = [];
    for (const ctx of waiting) this.add(ctx, committed);
  }

  /** Releases every read whose round a quorum has confirmed. */
  release(confirmedSeq: number): ReadState[] {
    let n = 0;
    while (n < this.pending.length && this.pending[n]!.seq <= confirmedSeq) n++;
    if (n === 0) return [];
    const done = this.pending.splice(0, n);
    return done.map((read) => ({ index: read.index, ctx: read.ctx }));
  }

  /** Leadership lost: pending reads are dropped (their callers must fail them and retry elsewhere). */
  clear(): void {
    this.lastSeq = 0;
    this.roundPending = false;
    this.pending = [];
    this.awaitingTermCommit = [];
  }
}
