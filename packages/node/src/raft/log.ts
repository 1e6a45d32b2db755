/**
 * The Raft log as the core holds it in memory: every entry after the compaction point, plus the
 * four positions that order everything else:
 *
 *   compactedIndex <= applied <= committed,   applied <= persisted <= lastIndex,
 *   persisted < nextToPersist <= lastIndex + 1
 *
 * - `committed`: known committed (replicated on a quorum); never decreases.
 * - `persisted`: entries up to here are durable in local storage *and* identical to this log.
 * - `nextToPersist`: entries from here on have not yet been handed to storage in a Ready.
 * - `applied`: handed to the application; only durable, committed entries are handed out.
 *
 * Persistence is pipelined: several Readys' writes may be in flight at once. Each completion reports
 * the (index, term) of the last entry it wrote; a report whose term no longer matches the log at
 * that index refers to entries since overwritten, and is ignored (Log Matching makes the check
 * sufficient: equal index and term imply equal prefixes).
 */
import { invariantFailed } from './errors.js';
import { entryBytes } from './messages.js';
import { type Entry, EntryType } from './types.js';

export interface LogPosition {
  index: number;
  term: number;
}

export class RaftLog {
  /** entries[i].index === compactedIndex + 1 + i. */
  private entries: Entry[];
  /** Index and term of the newest entry no longer held in memory (0/0 for none). */
  private compactedIndex: number;
  private compactedTerm: number;
  /** Indexes of membership entries still in memory, ascending. */
  private confIndexes: number[] = [];
  committed: number;
  applied: number;
  persisted: number;
  nextToPersist: number;

  /** `base` is the recovered snapshot point (or 0/0); `entries` follow it and are already durable. */
  constructor(base: LogPosition, entries: Entry[], committed: number, applied: number) {
    this.compactedIndex = base.index;
    this.compactedTerm = base.term;
    this.entries = [];
    if (entries.length > 0) this.append(entries, true);
    const last = this.lastIndex();
    this.persisted = last;
    this.nextToPersist = last + 1;
    this.committed = Math.min(Math.max(committed, base.index), last);
    this.applied = Math.min(Math.max(applied, base.index), this.committed);
  }

  firstIndex(): number {
    return this.compactedIndex + 1;
  }

  lastIndex(): number {
    return this.compactedIndex + this.entries.length;
  }

  lastTerm(): number {
    return this.entries.length === 0 ? this.compactedTerm : this.entries[this.entries.length - 1]!.term;
  }

  /** Term of the entry at `index`, or undefined when it is compacted away or beyond the end. */
  term(index: number): number | undefined {
    if (index === this.compactedIndex) return this.compactedTerm;
    if (index < this.compactedIndex || index > this.lastIndex()) return undefined;
    return this.entries[index - this.compactedIndex - 1]!.term;
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** Raft §5.4.1: is a log ending at (lastIndex, lastTerm) at least as up to date as this one? */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /**
   * Entries in [lo, hi) with at most `maxBytes` of data, but always at least one when the range is
   * not empty. The range must be held in memory.
   */
  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    if (lo < this.firstIndex() || hi > this.lastIndex() + 1 || lo > hi) {
      invariantFailed(
        `slice [${lo}, ${hi}) outside held log [${this.firstIndex()}, ${this.lastIndex() + 1})`,
      );
    }
    const start = lo - this.compactedIndex - 1;
    let end = start;
    let bytes = 0;
    const stop = hi - this.compactedIndex - 1;
    while (end < stop) {
      bytes += entryBytes(this.entries[end]!);
      if (bytes > maxBytes && end > start) break;
      end++;
    }
    return this.entries.slice(start, end);
  }

  /** Data bytes of the entries of term `term` in [lo, hi), which must be held in memory. */
  bytesInTerm(lo: number, hi: number, term: number): number {
    let bytes = 0;
    for (let index = Math.max(lo, this.firstIndex()); index < hi; index++) {
      const entry = this.entries[index - this.compactedIndex - 1]!;
      if (entry.term === term) bytes += entryBytes(entry);
    }
    return bytes;
  }

  /** Membership entries with index > `after`, in log order. */
  confEntriesAfter(after: number): Entry[] {
    const out: Entry[] = [];
    for (const index of this.confIndexes) {
      if (index > after) out.push(this.entries[index - this.compactedIndex - 1]!);
    }
    return out;
  }

  lastConfIndex(): number {
    return this.confIndexes.length === 0 ? 0 : this.confIndexes[this.confIndexes.length - 1]!;
  }

  /**
   * Index of the first entry in `entries` that is not already in the log with the same term (a
   * conflict or a new entry), or 0 when the log already holds all of them.
   */
  findConflict(entries: Entry[]): number {
    for (const entry of entries) {
      if (!this.matchTerm(entry.index, entry.term)) return entry.index;
    }
    return 0;
  }

  /**
   * The last position at or below `index` whose term is <= `term` (fast backtracking: every entry
   * above it has a newer term than `term`, so none of them can match). Term 0 means "not known here".
   */
  findConflictByTerm(index: number, term: number): LogPosition {
    for (let i = Math.min(index, this.lastIndex()); i > 0; i--) {
      const ourTerm = this.term(i);
      if (ourTerm === undefined) return { index: i, term: 0 };
      if (ourTerm <= term) return { index: i, term: ourTerm };
    }
    return { index: 0, term: 0 };
  }

  /**
   * Appends `entries`, first discarding every entry at or after `entries[0].index` (a conflict).
   * Committed entries are never discarded. Returns true when something was discarded.
   */
  append(entries: Entry[], recovering = false): boolean {
    const first = entries[0];
    if (first === undefined) return false;
    const last = this.lastIndex();
    if (first.index > last + 1 || first.index <= this.compactedIndex) {
      invariantFailed(`append at ${first.index} but log holds (${this.compactedIndex}, ${last}]`);
    }
    if (!recovering && first.index <= this.committed) {
      invariantFailed(
        `append at ${first.index} would overwrite committed entries (committed ${this.committed})`,
      );
    }
    const truncated = first.index <= last;
    if (truncated) this.truncateFrom(first.index);
    for (const entry of entries) {
      const expected = this.lastIndex() + 1;
      if (entry.index !== expected || entry.term < this.lastTerm()) {
        invariantFailed(
          `appending ${entry.index}/${entry.term} after ${this.lastIndex()}/${this.lastTerm()}: not contiguous or term decreases`,
        );
      }
      this.entries.push(entry);
      if (entry.type === EntryType.ConfChange) this.confIndexes.push(entry.index);
    }
    return truncated;
  }

  private truncateFrom(index: number): void {
    this.entries.length = index - this.compactedIndex - 1;
    while (this.confIndexes.length > 0 && this.confIndexes[this.confIndexes.length - 1]! >= index) {
      this.confIndexes.pop();
    }
    this.nextToPersist = Math.min(this.nextToPersist, index);
    this.persisted = Math.min(this.persisted, index - 1);
  }

  commitTo(index: number): boolean {
    if (index <= this.committed) return false;
    if (index > this.lastIndex()) {
      invariantFailed(`commit to ${index} beyond last index ${this.lastIndex()}`);
    }
    this.committed = index;
    return true;
  }

  /** Entries not yet handed to storage; marks them handed out. */
  takeUnpersisted(): Entry[] {
    const last = this.lastIndex();
    if (this.nextToPersist > last) return [];
    const out = this.slice(this.nextToPersist, last + 1, Number.POSITIVE_INFINITY);
    this.nextToPersist = last + 1;
    return out;
  }

  /** Storage reports entries up to (index, term) durable; stale reports (overwritten entries) are ignored. */
  persistedTo(position: LogPosition): boolean {
    if (position.index <= this.persisted || !this.matchTerm(position.index, position.term)) return false;
    if (position.index >= this.nextToPersist) {
      invariantFailed(
        `persisted ${position.index} but only entries below ${this.nextToPersist} were handed out`,
      );
    }
    this.persisted = position.index;
    return true;
  }

  /** Highest index that may be handed to the application: committed and durable locally. */
  applicableIndex(): number {
    return Math.min(this.committed, this.persisted);
  }

  /** Committed, durable entries after `applied`, at most `maxBytes` (at least one); marks them applied. */
  takeApplicable(maxBytes: number): Entry[] {
    const hi = this.applicableIndex();
    if (hi <= this.applied) return [];
    const out = this.slice(this.applied + 1, hi + 1, maxBytes);
    this.applied += out.length;
    return out;
  }

  /** Drops entries up to `index` from memory (they are covered by a durable snapshot). */
  compactTo(index: number): void {
    if (index <= this.compactedIndex) return;
    if (index > this.applied || index > this.persisted) {
      invariantFailed(`compact to ${index} beyond applied ${this.applied} or persisted ${this.persisted}`);
    }
    const term = this.term(index)!;
    this.entries = this.entries.slice(index - this.compactedIndex);
    this.compactedIndex = index;
    this.compactedTerm = term;
    this.confIndexes = this.confIndexes.filter((i) => i > index);
  }

  /**
   * Installs a durable snapshot received from the leader. If the log holds the snapshot's last
   * entry, entries after it are kept (they may already count toward a commit); otherwise the whole
   * log is replaced (Raft §7). Returns true when the log was replaced.
   */
  restore(snapshot: LogPosition): boolean {
    if (snapshot.index <= this.committed) {
      invariantFailed(`restoring snapshot ${snapshot.index} at or below commit ${this.committed}`);
    }
    const keep = this.matchTerm(snapshot.index, snapshot.term) && snapshot.index >= this.compactedIndex;
    if (keep) {
      this.persisted = Math.max(this.persisted, snapshot.index);
      this.nextToPersist = Math.max(this.nextToPersist, snapshot.index + 1);
      this.committed = Math.max(this.committed, snapshot.index);
      this.applied = Math.max(this.applied, snapshot.index);
      this.compactTo(snapshot.index);
      return false;
    }
    this.entries = [];
    this.confIndexes = [];
    this.compactedIndex = snapshot.index;
    this.compactedTerm = snapshot.term;
    this.committed = snapshot.index;
    this.applied = snapshot.index;
    this.persisted = snapshot.index;
    this.nextToPersist = snapshot.index + 1;
    return true;
  }
}
