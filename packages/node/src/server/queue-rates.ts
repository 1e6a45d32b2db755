/**
 * Per-queue publish and ack rates (messages per second over a sliding window) for the HTTP API.
 *
 * The rates are derived from the counters the replicated state already carries
 * (`publishedCount`, `ackedCount`), sampled by the node on a timer. They are this node's own
 * reading of its replica, never replicated: the deterministic state machine knows no wall clock,
 * and a rate is an operator's figure, not part of the queue's state. This class is pure (the
 * caller passes the time); the server runs the timer.
 */
import type { QueueStats } from '@flotilla/shared';

/** The counters a rate is computed from: the API's figures of one queue. */
export type QueueCounts = Pick<QueueStats, 'name' | 'publishedCount' | 'ackedCount'>;

export interface QueueRateFigures {
  /** Messages per second published into the queue over the window. */
  publishRate: number;
  /** Messages per second acknowledged over the window. */
  ackRate: number;
}

interface CountSample {
  atMs: number;
  published: number;
  acked: number;
}

/** Rates are rounded to this many decimals: enough for a trickle of one message a minute. */
const RATE_DECIMALS = 3;

const ZERO: QueueRateFigures = { publishRate: 0, ackRate: 0 };

function perSecond(delta: number, elapsedMs: number): number {
  const factor = 10 ** RATE_DECIMALS;
  return Math.round(((delta * 1000) / elapsedMs) * factor) / factor;
}

export class QueueRates {
  /** Samples per queue, oldest first; none older than the window except a lone newest one. */
  private readonly samples = new Map<string, CountSample[]>();

  /** @param windowMs length of the sliding window the rates average over (default 10 s). */
  constructor(readonly windowMs = 10_000) {
    if (!(windowMs > 0)) throw new Error(`QueueRates: windowMs must be positive, got ${windowMs}`);
  }

  /**
   * Records every queue's counters at `nowMs`. Queues absent from `queues` are forgotten (deleted);
   * a counter that went backwards (the queue was deleted and created again between two samples)
   * restarts that queue's window.
   */
  sample(nowMs: number, queues: Iterable<QueueCounts>): void {
    const seen = new Set<string>();
    for (const q of queues) {
      seen.add(q.name);
      const kept = this.samples.get(q.name) ?? [];
      const last = kept.at(-1);
      const restarted =
        last !== undefined && (q.publishedCount < last.published || q.ackedCount < last.acked);
      const list = restarted ? [] : kept;
      list.push({ atMs: nowMs, published: q.publishedCount, acked: q.ackedCount });
      this.trim(list, nowMs);
      this.samples.set(q.name, list);
    }
    for (const name of this.samples.keys()) if (!seen.has(name)) this.samples.delete(name);
  }

  /**
   * Rates of one queue from the oldest sample in the window to its `current` counters at `nowMs`;
   * zero before the first sample, and zero once the window holds no change (an idle queue).
   */
  rates(current: QueueCounts, nowMs: number): QueueRateFigures {
    const list = this.samples.get(current.name);
    const base = list?.[0];
    const last = list?.at(-1);
    if (base === undefined || last === undefined) return ZERO;
    // Counters below the last sample belong to a re-created queue: no rate until the next sample.
    if (current.publishedCount < last.published || current.ackedCount < last.acked) return ZERO;
    const elapsedMs = nowMs - base.atMs;
    if (elapsedMs <= 0) return ZERO;
    const published = current.publishedCount - base.published;
    const acked = current.ackedCount - base.acked;
    return { publishRate: perSecond(published, elapsedMs), ackRate: perSecond(acked, elapsedMs) };
  }

  /** Drops samples older than the window, keeping at least the newest one. */
  private trim(list: CountSample[], nowMs: number): void {
    const oldestMs = nowMs - this.windowMs;
    let drop = 0;
    while (drop < list.length - 1 && list[drop]!.atMs < oldestMs) drop++;
    if (drop > 0) list.splice(0, drop);
  }
}
