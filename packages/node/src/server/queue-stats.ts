/**
 * The one place the node's operator surface reads queue figures from: the HTTP API
 * (`/api/queues`) and the Prometheus gauges both take this node's replica's stats through
 * `wireStats`, the function the WebSocket `listQueues`/`queueStats` ops answer with, so every
 * surface means the same by each figure. The HTTP API adds the publish/ack rates, which this
 * class samples on a timer (see queue-rates.ts for why they live here and not in the log).
 */
import type { QueueStats } from '@flotilla/shared';
import type { QueueRuntime } from '../broker/index.js';
import { wireStats } from '../gateway/convert.js';
import { QueueRates } from './queue-rates.js';

export interface QueueStatsOptions {
  /** How often the counters are sampled for the rates (default 1 s). */
  sampleMs?: number;
  /** The window the rates average over (default 10 s). */
  windowMs?: number;
  /** Wall clock in ms (default Date.now); tests may pass their own. */
  now?: () => number;
}

const SAMPLE_MS_DEFAULT = 1_000;

export class QueueStatsSource {
  private readonly rates: QueueRates;
  private readonly sampleMs: number;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly runtime: QueueRuntime,
    options: QueueStatsOptions = {},
  ) {
    this.rates = new QueueRates(options.windowMs);
    this.sampleMs = options.sampleMs ?? SAMPLE_MS_DEFAULT;
    this.now = options.now ?? Date.now;
    if (!(this.sampleMs > 0))
      throw new Error(`QueueStatsSource: sampleMs must be positive, got ${this.sampleMs}`);
  }

  /** Every queue's stats from this node's replica, without rates (what the gauges export). */
  counts(): QueueStats[] {
    const sm = this.runtime.state;
    const nowMs = this.now();
    return sm.queueNames().flatMap((name) => wireStats(sm, name, nowMs) ?? []);
  }

  /** Every queue's stats with its publish and ack rates (what `GET /api/queues` answers). */
  withRates(): QueueStats[] {
    return this.counts().map((stats) => this.decorate(stats));
  }

  /** `stats` (this replica's, from `wireStats`) with its queue's rates added. */
  decorate(stats: QueueStats, nowMs = this.now()): QueueStats {
    return { ...stats, ...this.rates.rates(stats, nowMs) };
  }

  /** One queue's stats with its rates, or null when it does not exist. */
  one(name: string): QueueStats | null {
    const nowMs = this.now();
    const stats = wireStats(this.runtime.state, name, nowMs);
    return stats === null ? null : this.decorate(stats, nowMs);
  }

  /** Takes a first sample now, then one every `sampleMs` until `stop`; the timer keeps no process alive. */
  start(): void {
    if (this.timer !== null) return;
    this.sample();
    this.timer = setInterval(() => this.sample(), this.sampleMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  private sample(): void {
    this.rates.sample(this.now(), this.counts());
  }
}
