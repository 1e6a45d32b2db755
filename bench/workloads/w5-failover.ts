/**
 * W5, failover: a producer publishes with confirms (window 100); after a few seconds the leader's
 * process gets SIGKILL. The figure is the time from the kill to the first publish confirmed on a
 * connection opened after it (the SDK notices the drop, finds the new leader and resends what was
 * unconfirmed with the same idempotency keys). Publishing goes on for a few seconds, then the queue
 * is drained and every id checked: lost = confirmed but never delivered (must be 0), duplicates =
 * delivered more than once.
 */
import type { FlotillaClient } from '@flotilla/client';
import type { ClusterNode } from '../lib/cluster.js';
import { drainQueue } from '../lib/drain.js';
import { idOf, type PayloadFactory } from '../lib/payload.js';
import { describeError } from '../lib/publish.js';
import { delay, measure, round } from '../lib/timing.js';
import { BENCH_QUEUE, type RunContext, type Workload, type WorkloadOutcome } from './types.js';

/** No confirm this long after the kill: the failover failed. */
const GIVE_UP_MS = 30_000;
/** Publishes still unconfirmed this long after publishing stopped are counted as failed. */
const SETTLE_MS = 30_000;
const DRAIN_STALL_MS = 30_000;

/** The producer's view of the failover, times in `performance.now()` milliseconds. */
interface FailoverTimeline {
  killedAtMs: number | null;
  disconnectedAtMs: number | null;
  reconnectedAtMs: number | null;
  reconnectedTo: string | null;
  firstConfirmAfterKillMs: number | null;
  firstConfirmOnNewConnectionMs: number | null;
}

/** A producer keeping `window` publishes unconfirmed until stopped, recording confirms by id. */
class FailoverProducer {
  readonly confirmed = new Set<number>();
  readonly failures = new Map<number, string>();
  readonly timeline: FailoverTimeline = {
    killedAtMs: null,
    disconnectedAtMs: null,
    reconnectedAtMs: null,
    reconnectedTo: null,
    firstConfirmAfterKillMs: null,
    firstConfirmOnNewConnectionMs: null,
  };
  inflight = 0;
  private nextId = 0;
  private stopped = false;
  private onFailover: (() => void) | null = null;
  private onIdle: (() => void) | null = null;

  constructor(
    private readonly client: FlotillaClient,
    private readonly payloads: PayloadFactory,
    private readonly window: number,
  ) {
    client.on('disconnected', () => {
      const t = this.timeline;
      if (t.killedAtMs !== null && t.disconnectedAtMs === null) t.disconnectedAtMs = performance.now();
    });
    client.on('connected', ({ nodeId }) => {
      const t = this.timeline;
      if (t.disconnectedAtMs !== null && t.reconnectedAtMs === null) {
        t.reconnectedAtMs = performance.now();
        t.reconnectedTo = nodeId;
      }
    });
  }

  get attempted(): number {
    return this.nextId;
  }

  start(): void {
    this.pump();
  }

  /** Resolves at the first confirm on a connection made after the kill, or false after `timeoutMs`. */
  failover(timeoutMs: number): Promise<boolean> {
    if (this.timeline.firstConfirmOnNewConnectionMs !== null) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.onFailover = () => {
        clearTimeout(timer);
        resolve(true);
      };
    });
  }

  /** Stops sending; resolves when nothing is in flight, or after `timeoutMs`. */
  stop(timeoutMs: number): Promise<void> {
    this.stopped = true;
    if (this.inflight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.onIdle = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private pump(): void {
    while (!this.stopped && this.inflight < this.window) this.send(this.nextId++);
  }

  private send(id: number): void {
    this.inflight++;
    this.client.publish(BENCH_QUEUE, this.payloads.body(id)).then(
      () => this.settled(id, null),
      (error: unknown) => this.settled(id, describeError(error)),
    );
  }

  private settled(id: number, error: string | null): void {
    this.inflight--;
    if (error === null) {
      this.confirmed.add(id);
      this.noteConfirm();
    } else {
      this.failures.set(id, error);
    }
    if (this.stopped && this.inflight === 0) this.onIdle?.();
    this.pump();
  }

  private noteConfirm(): void {
    const t = this.timeline;
    if (t.killedAtMs === null) return;
    const now = performance.now();
    t.firstConfirmAfterKillMs ??= now;
    // A confirm handled after the drop was seen can only have come over a new connection.
    if (t.disconnectedAtMs !== null && t.firstConfirmOnNewConnectionMs === null) {
      t.firstConfirmOnNewConnectionMs = now;
      this.onFailover?.();
    }
  }
}

interface DrainCheck {
  consumed: number;
  duplicates: number;
  lost: number;
  consumedNotConfirmed: number;
  lostSample: number[];
}

async function drainAndCheck(ctx: RunContext, confirmed: ReadonlySet<number>): Promise<DrainCheck> {
  const consumer = await ctx.cluster.connect('bench-w5-consumer');
  try {
    const deliveries = new Map<number, number>();
    await drainQueue({
      client: consumer,
      queue: BENCH_QUEUE,
      prefetch: 1_000,
      expected: null,
      onMessage: (message) => {
        const id = idOf(message.bytes);
        deliveries.set(id, (deliveries.get(id) ?? 0) + 1);
      },
      isComplete: async () => (await consumer.queueStats(BENCH_QUEUE)).depth === 0,
      stallMs: DRAIN_STALL_MS,
    });
    const lost = [...confirmed].filter((id) => !deliveries.has(id));
    return {
      consumed: deliveries.size,
      duplicates: [...deliveries.values()].filter((count) => count > 1).length,
      lost: lost.length,
      consumedNotConfirmed: [...deliveries.keys()].filter((id) => !confirmed.has(id)).length,
      lostSample: lost.slice(0, 20),
    };
  } finally {
    await consumer.close({ drain: false });
  }
}

const seconds = (fromMs: number | null, toMs: number | null) =>
  fromMs === null || toMs === null ? -1 : round((toMs - fromMs) / 1000, 3);

async function publishThroughKill(ctx: RunContext, producer: FailoverProducer, leader: ClusterNode) {
  producer.start();
  await delay(ctx.sizes.w5BeforeKillMs);
  const current = await ctx.cluster.leader();
  const confirmedBeforeKill = producer.confirmed.size;
  const inflightAtKill = producer.inflight;
  producer.timeline.killedAtMs = ctx.cluster.killNow(current.id);
  ctx.log(`W5: killed leader ${current.id} (was ${leader.id} at start); ${inflightAtKill} in flight`);
  const failedOver = await producer.failover(GIVE_UP_MS);
  if (failedOver) await delay(ctx.sizes.w5AfterFailoverMs);
  await producer.stop(SETTLE_MS);
  return { killed: current.id, confirmedBeforeKill, inflightAtKill, failedOver };
}

async function run(ctx: RunContext): Promise<WorkloadOutcome> {
  const { cluster, sizes, payloads } = ctx;
  const leader = await cluster.leader();
  const client = await cluster.connect('bench-w5-producer');
  try {
    await client.createQueue(BENCH_QUEUE);
    const producer = new FailoverProducer(client, payloads, sizes.w5Window);
    const { value: kill, cpu } = await measure(cluster, leader, () =>
      publishThroughKill(ctx, producer, leader),
    );
    const check = await drainAndCheck(ctx, producer.confirmed);
    const t = producer.timeline;
    return {
      figures: {
        failoverS: seconds(t.killedAtMs, t.firstConfirmOnNewConnectionMs),
        killToDisconnectS: seconds(t.killedAtMs, t.disconnectedAtMs),
        killToReconnectS: seconds(t.killedAtMs, t.reconnectedAtMs),
        confirmed: producer.confirmed.size,
        consumed: check.consumed,
        lost: check.lost,
        duplicates: check.duplicates,
        publishFailed: producer.failures.size,
        consumedNotConfirmed: check.consumedNotConfirmed,
      },
      cpu,
      details: {
        window: sizes.w5Window,
        killed: kill.killed,
        failedOver: kill.failedOver,
        reconnectedTo: t.reconnectedTo,
        confirmedBeforeKill: kill.confirmedBeforeKill,
        inflightAtKill: kill.inflightAtKill,
        firstConfirmAfterKillS: seconds(t.killedAtMs, t.firstConfirmAfterKillMs),
        attempted: producer.attempted,
        stillInFlightAtEnd: producer.inflight,
        failureSample: [...producer.failures.entries()].slice(0, 10),
        lostSample: check.lostSample,
      },
    };
  } finally {
    await client.close({ drain: false });
  }
}

export const w5Failover: Workload = {
  id: 'W5',
  title: 'failover (window 100, kill -9 the leader)',
  figures: [
    { key: 'failoverS', label: 'kill to next confirmed publish', unit: 's', digits: 3 },
    { key: 'killToDisconnectS', label: 'kill to client sees the drop', unit: 's', digits: 3 },
    { key: 'killToReconnectS', label: 'kill to client reconnected', unit: 's', digits: 3 },
    { key: 'confirmed', label: 'publishes confirmed', unit: '', digits: 0 },
    { key: 'consumed', label: 'distinct messages consumed', unit: '', digits: 0 },
    { key: 'lost', label: 'lost (confirmed, never consumed)', unit: '', digits: 0 },
    { key: 'duplicates', label: 'duplicates (delivered twice)', unit: '', digits: 0 },
    { key: 'publishFailed', label: 'publishes failed', unit: '', digits: 0 },
    { key: 'consumedNotConfirmed', label: 'consumed but never confirmed', unit: '', digits: 0 },
  ],
  run,
};
