/**
 * Helpers shared by the integration tests: reading a node's HTTP API, waiting for replicas to
 * converge, a publisher that keeps a window of publishes in flight and records what was confirmed,
 * and small list helpers. Everything waits with deadlines.
 */
import type { FlotillaClient, QueueStats } from '@flotilla/client';
import type { ClusterNode, TestCluster } from '../support/cluster.js';
import { waitFor } from '../support/wait.js';

/** GET a JSON route of a node's HTTP API; throws with the status and body on failure. */
export async function getJson<T>(node: ClusterNode, path: string, token?: string): Promise<T> {
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  const res = await fetch(`${node.httpUrl}${path}`, { headers });
  if (!res.ok) throw new Error(`GET ${path} on ${node.id}: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

/** Queue stats as seen by one node's replica. */
export function statsOn(node: ClusterNode, queue: string): Promise<QueueStats> {
  return getJson<QueueStats>(node, `/api/queues/${encodeURIComponent(queue)}`);
}

/** A stored message as the HTTP peek route shows it. */
export interface PeekedJson {
  seq: number;
  state: string;
  deliveryCount: number;
  bodyText: string | null;
  deadLetter: { queue: string; seq: number; deliveryCount: number; reason: string; timeMs: number } | null;
}

export function peekOn(node: ClusterNode, queue: string, max = 100): Promise<PeekedJson[]> {
  return getJson<PeekedJson[]>(
    node,
    `/api/queues/${encodeURIComponent(queue)}/messages?fromSeq=0&max=${max}`,
  );
}

export interface DigestJson {
  appliedIndex: number;
  digest: string;
}

/**
 * Wait until every running node has applied the same index and holds the same state digest;
 * returns that digest. Reads all nodes at once so an idle cluster is compared at one moment.
 */
export async function waitForConvergence(cluster: TestCluster, timeoutMs = 15_000): Promise<DigestJson> {
  return waitFor(
    async () => {
      const digests = await Promise.all(cluster.running().map((n) => getJson<DigestJson>(n, '/api/digest')));
      const first = digests[0];
      if (!first) return false;
      const same = digests.every((d) => d.appliedIndex === first.appliedIndex && d.digest === first.digest);
      if (!same) throw new Error(`replicas differ: ${JSON.stringify(digests)}`);
      return first;
    },
    { timeoutMs, intervalMs: 50, what: 'every running node to reach the same applied index and digest' },
  );
}

/** One publish the cluster confirmed. */
export interface Confirmed {
  body: string;
  seq: number;
  /** Client clock when the confirm arrived. */
  atMs: number;
}

/**
 * Keeps `window` publishes of distinct string bodies (`<prefix>-<n>`) in flight until stopped.
 * Records confirms and failures; every failure is kept (the SDK should retry failovers itself).
 */
export class PublishLoop {
  readonly confirmed: Confirmed[] = [];
  readonly failures: { body: string; error: unknown }[] = [];
  private next = 0;
  private stopping = false;
  private readonly workers: Promise<void>[];

  constructor(
    private readonly client: FlotillaClient,
    private readonly queue: string,
    readonly prefix: string,
    window = 20,
  ) {
    this.workers = Array.from({ length: window }, () => this.work());
  }

  /** Bodies handed to `publish` so far. */
  get attempted(): number {
    return this.next;
  }

  private async work(): Promise<void> {
    while (!this.stopping) {
      const body = `${this.prefix}-${this.next++}`;
      try {
        const receipt = await this.client.publish(this.queue, body);
        this.confirmed.push({ body, seq: receipt.seq, atMs: Date.now() });
      } catch (error) {
        this.failures.push({ body, error });
      }
    }
  }

  /** Wait until at least `count` publishes are confirmed; fails at once if a publish failed. */
  async waitConfirmed(count: number, timeoutMs = 20_000): Promise<void> {
    const outcome = await waitFor(
      () => (this.failures.length > 0 ? 'failed' : this.confirmed.length >= count && 'confirmed'),
      { timeoutMs, what: `${count} confirmed publishes` },
    );
    if (outcome === 'failed') {
      const first = this.failures[0]!;
      throw new Error(`publish of ${first.body} failed: ${String(first.error)}`);
    }
  }

  /** Stop publishing and wait for every publish in flight to settle. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.workers);
  }
}

/** A queue name unique within the test run. */
let queueNo = 0;
export function uniqueQueue(prefix: string): string {
  queueNo += 1;
  return `${prefix}-${queueNo}`;
}

/** The values that occur more than once in `items`. */
export function duplicatesOf<T>(items: readonly T[]): T[] {
  const seen = new Set<T>();
  const dups = new Set<T>();
  for (const item of items) {
    if (seen.has(item)) dups.add(item);
    seen.add(item);
  }
  return [...dups];
}
