/**
 * A fresh 3-node cluster of real `flotilla server` processes for one workload run, built on the
 * test suite's `TestCluster` (free loopback ports, temporary data directories, logs in files).
 * Adds what benchmarks need: node pids for CPU accounting, `/metrics` readings, killing and
 * restarting every node, and optional `node --cpu-prof` profiles written on a graceful stop.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type FlotillaClient } from '@flotilla/client';
import { type ClusterNode, TestCluster } from '../../test/support/cluster.js';
import { WaitTimeoutError } from '../../test/support/wait.js';

export type { ClusterNode };

export interface BenchClusterOptions {
  /** Write a V8 CPU profile per node into this directory (on stop); null: no profiling. */
  profileDir: string | null;
  /** Extra `flotilla server` arguments for every node (experiments; the suite's figures use none). */
  serverArgs?: readonly string[];
}

/** How long a node has to stop after SIGTERM before it is killed (its profile is then lost). */
const PROFILER_PRELOAD = fileURLToPath(new URL('./profiler-preload.mjs', import.meta.url));
const GRACEFUL_STOP_MS = 20_000;
const FETCH_ATTEMPTS = 3;

export class BenchCluster {
  private constructor(
    private readonly cluster: TestCluster,
    private readonly options: BenchClusterOptions,
  ) {}

  static async start(options: BenchClusterOptions): Promise<BenchCluster> {
    const env: Record<string, string> = {};
    if (options.profileDir !== null) {
      mkdirSync(options.profileDir, { recursive: true });
      // Node 20 refuses --cpu-prof in NODE_OPTIONS but allows --import, so a preload profiles.
      env.NODE_OPTIONS = `--import=${PROFILER_PRELOAD}`;
      env.FLOTILLA_BENCH_PROFILE_DIR = options.profileDir;
    }
    const args = [...(options.serverArgs ?? [])];
    const cluster = await TestCluster.start({ size: 3, args, env });
    return new BenchCluster(cluster, options);
  }

  get nodes(): readonly ClusterNode[] {
    return this.cluster.nodes;
  }

  urls(): string[] {
    return this.cluster.urls();
  }

  node(id: string): ClusterNode {
    return this.cluster.node(id);
  }

  /** Node id → pid of its running process (null when stopped). */
  pids(): Record<string, number | null> {
    const pids: Record<string, number | null> = {};
    for (const node of this.cluster.nodes) pids[node.id] = node.process?.pid ?? null;
    return pids;
  }

  /** Waits until every running node agrees on a running leader. */
  leader(timeoutMs = 15_000): Promise<ClusterNode> {
    return this.cluster.waitForLeader(timeoutMs);
  }

  /** A client as users make one: every node's URL, the SDK finds the leader. */
  connect(name: string): Promise<FlotillaClient> {
    return connect({ servers: this.urls(), name });
  }

  /** GET a JSON document from a node's HTTP API (retried on a dropped keep-alive connection). */
  async getJson<T>(node: ClusterNode, path: string): Promise<T> {
    return JSON.parse(await this.getText(node, path)) as T;
  }

  async getText(node: ClusterNode, path: string): Promise<string> {
    let lastError: unknown;
    for (let attempt = 0; attempt < FETCH_ATTEMPTS; attempt++) {
      try {
        const res = await fetch(`${node.httpUrl}${path}`);
        const text = await res.text();
        if (!res.ok) throw new Error(`GET ${path} on ${node.id}: HTTP ${res.status} ${text.slice(0, 200)}`);
        return text;
      } catch (error) {
        lastError = error;
      }
    }
    throw lastError;
  }

  /** Values of metrics from a node's `/metrics` by name (the first series of each; null if absent). */
  async metrics(node: ClusterNode, names: readonly string[]): Promise<Record<string, number | null>> {
    const lines = (await this.getText(node, '/metrics')).split('\n');
    const values: Record<string, number | null> = {};
    for (const name of names) {
      const line = lines.find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
      values[name] = line === undefined ? null : Number(line.slice(line.lastIndexOf(' ') + 1));
    }
    return values;
  }

  /** Sends SIGKILL to one node at once (does not wait); returns the time of the signal. */
  killNow(id: string): number {
    const child = this.cluster.node(id).process;
    if (!child) throw new Error(`${id} is not running`);
    const killedAtMs = performance.now();
    child.kill('SIGKILL');
    return killedAtMs;
  }

  /** SIGKILL every running node and wait for them to exit. */
  async killAll(): Promise<void> {
    await Promise.all(this.cluster.running().map((n) => this.cluster.signal(n.id, 'SIGKILL')));
  }

  /**
   * Starts every stopped node with its data, all at once. Resolves when each answers /health or
   * has been given the test harness's health deadline (a node replaying a large log may take
   * longer; callers poll for what they need). Rejects if a node's process exits.
   */
  async startStopped(): Promise<void> {
    const stopped = this.cluster.nodes.filter((n) => !n.process);
    await Promise.all(
      stopped.map((n) =>
        this.cluster.startNode(n.id).catch((error: unknown) => {
          if (!(error instanceof WaitTimeoutError) || !n.process) throw error;
        }),
      ),
    );
  }

  /** Ids of nodes whose process is not running (exited or killed). */
  stoppedIds(): string[] {
    return this.cluster.nodes.filter((n) => !n.process).map((n) => n.id);
  }

  /** A node's data directory. */
  dataDir(id: string): string {
    return this.cluster.node(id).dataDir;
  }

  /** The last lines of a node's log, for error messages. */
  tail(id: string): string {
    return this.cluster.tail(this.cluster.node(id));
  }

  /**
   * Stops the cluster and removes its data. When profiling, nodes get SIGTERM so V8 writes their
   * profiles, and `nodes.json` in the profile directory maps each pid to its node and last role.
   */
  async stop(): Promise<void> {
    if (this.options.profileDir !== null) await this.stopForProfiles(this.options.profileDir);
    await this.cluster.stop();
  }

  private async stopForProfiles(dir: string): Promise<void> {
    const running = this.cluster.running();
    const roles = await Promise.all(
      running.map(async (n) => {
        const status = await this.getJson<{ role: string }>(n, '/api/cluster').catch(() => ({ role: '?' }));
        return { nodeId: n.id, pid: n.process?.pid ?? null, role: status.role };
      }),
    );
    writeFileSync(join(dir, 'nodes.json'), `${JSON.stringify(roles, null, 2)}\n`);
    await Promise.all(running.map((n) => this.cluster.signal(n.id, 'SIGTERM', GRACEFUL_STOP_MS)));
  }
}
