/**
 * The node's Prometheus metrics (served at `/metrics`). One registry per node, so several nodes
 * can live in one process in tests. Hot paths increment plain counters; per-queue gauges are read
 * from the state machine only when scraped (`collect`), so they cost nothing between scrapes.
 *
 * Each per-queue gauge is the same-named figure of the API's QueueStats (`/api/queues`,
 * `queueStats`), taken from the very same stats, so a graph and the dashboard never disagree on
 * what "depth" or "oldest age" means.
 */
import type { QueueStats } from '@flotilla/shared';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { NodeStatus } from '../cluster/types.js';

export interface MetricsSources {
  status(): NodeStatus;
  /** The API's stats of every queue on this node's replica, read at scrape time. */
  queues(): QueueStats[];
}

/** A per-queue gauge: its name, help text and how it reads the API's figure. */
type QueueGaugeField = [name: string, help: string, read: (q: QueueStats) => number];

const QUEUE_GAUGES: readonly QueueGaugeField[] = [
  ['flotilla_queue_depth', 'Messages stored: ready + in flight + delayed (API depth)', (q) => q.depth],
  ['flotilla_queue_ready', 'Messages waiting for a consumer (API ready)', (q) => q.ready],
  ['flotilla_queue_in_flight', 'Messages leased to consumers (API inFlight)', (q) => q.inFlight],
  [
    'flotilla_queue_delayed',
    'Messages waiting for their delay or retry backoff (API delayed)',
    (q) => q.delayed,
  ],
  ['flotilla_queue_bytes', 'Bytes of the stored messages (API totalBytes)', (q) => q.totalBytes],
  [
    'flotilla_queue_oldest_age_ms',
    'Age of the oldest message waiting for a consumer, 0 when none is (API oldestMessageAgeMs, null there)',
    (q) => q.oldestMessageAgeMs ?? 0,
  ],
];

// Latency buckets in seconds from 50 µs to ~3 s: fsync is ~0.1 ms here, commits ~1 ms, stalls are seconds.
const LATENCY_BUCKETS = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 3,
];

export class NodeMetrics {
  readonly registry = new Registry();
  readonly leaderChanges: Counter;
  readonly published: Counter<'queue'>;
  readonly acked: Counter<'queue'>;
  readonly delivered: Counter<'queue'>;
  readonly fsyncSeconds: Histogram;
  readonly commitSeconds: Histogram;
  readonly proposalsBatched: Histogram;
  readonly sessions: Gauge;
  readonly rejectedFrames: Counter<'code'>;

  constructor(nodeId: string, sources: MetricsSources, withProcessMetrics = true) {
    const r = this.registry;
    r.setDefaultLabels({ node: nodeId });
    if (withProcessMetrics) collectDefaultMetrics({ register: r, prefix: 'flotilla_process_' });
    const gauge = (name: string, help: string, read: (s: NodeStatus) => number) =>
      new Gauge({
        name,
        help,
        registers: [r],
        collect() {
          this.set(read(sources.status()));
        },
      });
    gauge('flotilla_raft_term', 'Current Raft term', (s) => s.term);
    gauge('flotilla_raft_commit_index', 'Highest committed log index', (s) => s.commitIndex);
    gauge('flotilla_raft_applied_index', 'Highest applied log index', (s) => s.appliedIndex);
    gauge('flotilla_raft_last_index', 'Highest durable log index on this node', (s) => s.lastIndex);
    gauge('flotilla_raft_is_leader', '1 when this node is the leader', (s) => (s.role === 'leader' ? 1 : 0));
    gauge('flotilla_raft_members', 'Cluster members known to this node', (s) => s.members.length);
    this.leaderChanges = new Counter({
      name: 'flotilla_raft_leader_changes_total',
      help: 'Leader changes seen by this node',
      registers: [r],
    });
    this.published = this.counter('flotilla_messages_published_total', 'Messages published (confirmed)');
    this.acked = this.counter('flotilla_messages_acked_total', 'Messages acknowledged');
    this.delivered = this.counter('flotilla_messages_delivered_total', 'Messages delivered to consumers');
    this.queueGauges(sources);
    this.fsyncSeconds = new Histogram({
      name: 'flotilla_storage_fsync_seconds',
      help: 'Time of one WAL fdatasync',
      buckets: LATENCY_BUCKETS,
      registers: [r],
    });
    this.commitSeconds = new Histogram({
      name: 'flotilla_raft_commit_seconds',
      help: 'Time from proposal to commit on the leader',
      buckets: LATENCY_BUCKETS,
      registers: [r],
    });
    this.proposalsBatched = new Histogram({
      name: 'flotilla_raft_commands_per_entry',
      help: 'Client commands carried by one log entry',
      buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
      registers: [r],
    });
    this.sessions = new Gauge({
      name: 'flotilla_client_sessions',
      help: 'Open client sessions',
      registers: [r],
    });
    this.rejectedFrames = new Counter({
      name: 'flotilla_client_errors_total',
      help: 'Client requests answered with an error, by code',
      labelNames: ['code'],
      registers: [r],
    });
  }

  private counter(name: string, help: string): Counter<'queue'> {
    return new Counter({ name, help, labelNames: ['queue'], registers: [this.registry] });
  }

  private queueGauges(sources: MetricsSources): void {
    for (const [name, help, read] of QUEUE_GAUGES) {
      new Gauge({
        name,
        help,
        labelNames: ['queue'],
        registers: [this.registry],
        collect() {
          this.reset();
          for (const q of sources.queues()) this.set({ queue: q.name }, read(q));
        },
      });
    }
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
