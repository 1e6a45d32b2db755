/**
 * The leader's view of one follower's log (etcd's Progress): how far it is known to match, what
 * to send next, and in which of three modes replication runs:
 *
 * - probe: the leader does not know where the logs diverge; one AppendEntries at a time, each
 *   answer moves `next` (backwards on rejection, using the follower's hint).
 * - replicate: logs match up to `match`; AppendEntries are pipelined optimistically (`next` runs
 *   ahead of `match`) within the in-flight window.
 * - snapshot: the entries the follower needs are compacted away; a chunked InstallSnapshot is in
 *   progress and no AppendEntries are sent until it completes or fails.
 */
import { Inflights } from './inflights.js';
import type { OutgoingSnapshot } from './snapshot-transfer.js';

export const ReplicationState = {
  Probe: 'probe',
  Replicate: 'replicate',
  Snapshot: 'snapshot',
} as const;
export type ReplicationState = (typeof ReplicationState)[keyof typeof ReplicationState];

export class Progress {
  /** Highest index known to be in the follower's log and identical to the leader's. */
  match = 0;
  /** Next index to send. Always match < next. */
  next: number;
  state: ReplicationState = ReplicationState.Probe;
  /** Probe state: an AppendEntries is out and its answer (or a heartbeat answer) is awaited. */
  probeSent = false;
  /** Heard from the follower since the last CheckQuorum round. */
  recentActive = false;
  /** Highest ReadIndex round the follower has confirmed in this term. */
  readSeqAcked = 0;
  readonly inflights: Inflights;
  /** Snapshot state: the transfer in progress. */
  snapshot: OutgoingSnapshot | null = null;

  constructor(next: number, inflightCountMax: number, inflightBytesMax: number) {
    this.next = next;
    this.inflights = new Inflights(inflightCountMax, inflightBytesMax);
  }

  becomeProbe(): void {
    this.state = ReplicationState.Probe;
    this.probeSent = false;
    this.inflights.reset();
    this.snapshot = null;
    this.next = this.match + 1;
  }

  becomeReplicate(): void {
    this.state = ReplicationState.Replicate;
    this.probeSent = false;
    this.inflights.reset();
    this.snapshot = null;
    this.next = this.match + 1;
  }

  becomeSnapshot(transfer: OutgoingSnapshot): void {
    this.state = ReplicationState.Snapshot;
    this.probeSent = false;
    this.inflights.reset();
    this.snapshot = transfer;
  }

  /** A success answer for `index`. Returns true when it told us something new. */
  maybeUpdate(index: number): boolean {
    if (index <= this.match) return false;
    this.match = index;
    this.next = Math.max(this.next, index + 1);
    this.probeSent = false;
    return true;
  }

  /**
   * A rejection of the append whose prevIndex was `rejected`; `hintIndex` is the highest index that
   * may still match. Returns false when the rejection is stale (an answer to an older message).
   */
  maybeDecreaseTo(rejected: number, hintIndex: number): boolean {
    if (this.state === ReplicationState.Replicate) {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, hintIndex + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  /** Records an AppendEntries with `count` entries ending at `lastIndex` just sent. */
  sentEntries(count: number, lastIndex: number, bytes: number): void {
    if (this.state === ReplicationState.Replicate) {
      if (count > 0) {
        this.inflights.add(lastIndex, bytes);
        this.next = lastIndex + 1;
      }
    } else {
      this.probeSent = true;
    }
  }

  /** True when no AppendEntries may be sent now. */
  isPaused(): boolean {
    switch (this.state) {
      case ReplicationState.Probe:
        return this.probeSent;
      case ReplicationState.Replicate:
        return this.inflights.full();
      case ReplicationState.Snapshot:
        return true;
    }
  }
}
