/**
 * Chunked InstallSnapshot bookkeeping (Raft §7), both ends, as pure data and functions.
 *
 * Sender (leader): decides which byte ranges go out, keeps at most `chunksInflight` chunks
 * unacknowledged, and restarts from the last acknowledged offset when the follower rejects a chunk
 * or nothing is acknowledged for a while (chunks may be lost). The driver fills in the bytes.
 *
 * Receiver (follower): accepts chunks strictly in sequence from one sender in one term, asks for
 * each to be persisted, and installs only once the final chunk is durable.
 */
import type { SnapshotMessage } from './messages.js';
import type { NodeId, SnapshotMeta } from './types.js';

export interface OutgoingSnapshot {
  meta: SnapshotMeta;
  sizeBytes: number;
  /** Bytes [0, sentOffset) have been sent since the transfer (re)started. */
  sentOffset: number;
  /** The follower has acknowledged holding bytes [0, ackedOffset). */
  ackedOffset: number;
  finalSent: boolean;
  /** Ticks since the follower last made progress; at the retry limit sending restarts from ackedOffset. */
  idleTicks: number;
}

export interface ChunkPlan {
  offset: number;
  length: number;
  done: boolean;
}

export function startOutgoing(meta: SnapshotMeta, sizeBytes: number): OutgoingSnapshot {
  return { meta, sizeBytes, sentOffset: 0, ackedOffset: 0, finalSent: false, idleTicks: 0 };
}

/** The next chunks to send, at most `chunksInflight × chunkBytes` beyond what is acknowledged. */
export function planChunks(t: OutgoingSnapshot, chunkBytes: number, chunksInflight: number): ChunkPlan[] {
  const plans: ChunkPlan[] = [];
  const windowBytes = chunkBytes * chunksInflight;
  while (!t.finalSent && t.sentOffset - t.ackedOffset < windowBytes) {
    const length = Math.min(chunkBytes, t.sizeBytes - t.sentOffset);
    const done = t.sentOffset + length === t.sizeBytes;
    plans.push({ offset: t.sentOffset, length, done });
    t.sentOffset += length;
    t.finalSent = done;
  }
  return plans;
}

/** Applies a follower's progress report; returns true when more chunks may now be sent. */
export function onChunkAck(t: OutgoingSnapshot, nextOffset: number, reject: boolean): boolean {
  const offset = Math.min(nextOffset, t.sizeBytes);
  if (reject) {
    t.sentOffset = offset;
    t.ackedOffset = offset;
    t.finalSent = false;
    t.idleTicks = 0;
    return true;
  }
  if (offset <= t.ackedOffset) return false;
  t.ackedOffset = offset;
  t.idleTicks = 0;
  return true;
}

/** Counts a tick; after `retryTicks` without progress, rewinds to the acknowledged offset. */
export function tickOutgoing(t: OutgoingSnapshot, retryTicks: number): boolean {
  t.idleTicks++;
  if (t.idleTicks < retryTicks) return false;
  t.sentOffset = t.ackedOffset;
  t.finalSent = false;
  t.idleTicks = 0;
  return true;
}

export interface IncomingSnapshot {
  from: NodeId;
  term: number;
  meta: SnapshotMeta;
  sizeBytes: number;
  /** Bytes [0, nextOffset) have been accepted (and asked to be persisted). */
  nextOffset: number;
  /** The final chunk was accepted; waiting for it to be durable before installing. */
  installing: boolean;
  /**
   * Decided when the transfer starts: the log does not hold the snapshot's last entry, so the
   * snapshot replaces the whole log. The log does not change while a transfer runs (an append from
   * the leader cancels the transfer first), so the decision still holds at install time.
   */
  resetLog: boolean;
}

/**
 * What a follower does with a chunk:
 * - `stale`: the snapshot is not newer than what is committed here; answer with the commit index.
 * - `ignore`: an install is in progress; say nothing, the sender retries.
 * - `start` / `accept`: take the chunk (start: it opens a new transfer, dropping any partial one).
 * - `duplicate`: already held; re-acknowledge. `gap`: out of sequence; ask to restart at `nextOffset`.
 */
export type ChunkDecision = 'stale' | 'ignore' | 'start' | 'accept' | 'duplicate' | 'gap';

export function decideChunk(
  incoming: IncomingSnapshot | null,
  m: SnapshotMessage,
  committed: number,
): ChunkDecision {
  if (m.meta.index <= committed) return 'stale';
  if (incoming !== null && isSameTransfer(incoming, m)) {
    if (incoming.installing) return 'ignore';
    if (m.offset === incoming.nextOffset) return 'accept';
    return m.offset < incoming.nextOffset ? 'duplicate' : 'gap';
  }
  if (incoming?.installing) return 'ignore';
  return m.offset === 0 ? 'start' : 'gap';
}

/** The chunk belongs to the transfer in progress (same sender, term and snapshot). */
export function isSameTransfer(incoming: IncomingSnapshot, m: SnapshotMessage): boolean {
  return (
    incoming.from === m.from &&
    incoming.term === m.term &&
    incoming.meta.index === m.meta.index &&
    incoming.meta.term === m.meta.term &&
    incoming.sizeBytes === m.sizeBytes
  );
}
