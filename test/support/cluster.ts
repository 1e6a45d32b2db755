/**
 * Real-process clusters for tests: `flotilla server` processes on loopback, each with a free port
 * and its own temporary data directory, logs captured to files. Every process started here is
 * killed when the cluster stops — and, as a safety net, when the test process exits.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePorts } from './ports.js';
import { waitFor } from './wait.js';

export const REPO_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const CLI_MAIN = join(REPO_ROOT, 'packages/cli/dist/main.js');

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export interface ClusterNode {
  id: string;
  port: number;
  /** Client WebSocket URL. */
  url: string;
  /** Base URL of the HTTP API. */
  httpUrl: string;
  dataDir: string;
  logFile: string;
  process: ChildProcess | null;
  /** Started with `--join`: waits to be added to the running cluster instead of bootstrapping. */
  join?: boolean;
  /** True while the process is stopped with SIGSTOP (see `pause`). */
  paused?: boolean;
}

export interface ClusterOptions {
  size?: number;
  /** Extra `flotilla server` arguments for every node. */
  args?: string[];
  env?: Record<string, string>;
  /** Address peers use for a node (e.g. a proxy in front of it); defaults to its own port. */
  peerAddress?: (id: string, port: number) => string;
  /** Keep data directories after stop (for debugging). */
  keepData?: boolean;
  /** Directory for data and logs (created if missing); default: a new temporary directory. */
  root?: string;
  /**
   * The `--peers` value for one node; default `peersArg()` for every node. Lets each node reach
   * each peer at its own address (e.g. one proxy per directed link).
   */
  peersFor?: (node: ClusterNode, cluster: TestCluster) => string;
  /** The `--advertise` address of a node; default `peerAddress`, else its own port. */
  advertiseFor?: (node: ClusterNode) => string;
  /** Runs once ports are known and before any process starts (e.g. to start proxies in front of them). */
  beforeSpawn?: (nodes: readonly ClusterNode[]) => Promise<void>;
}

/** Cluster status as served by `/api/cluster`. */
export interface ApiClusterStatus {
  nodeId: string;
  role: string;
  term: number;
  leaderId: string | null;
  commitIndex: number;
  appliedIndex: number;
  [key: string]: unknown;
}

function describeNode(root: string, id: string, port: number): ClusterNode {
  return {
    id,
    port,
    url: `ws://127.0.0.1:${port}/client`,
    httpUrl: `http://127.0.0.1:${port}`,
    dataDir: join(root, id),
    logFile: join(root, `${id}.log`),
    process: null,
  };
}

export class TestCluster {
  readonly secret = `test-secret-${Math.random().toString(36).slice(2)}`;

  /** Numbers of node ids retired, never to be reused. */
  private readonly retiredIds: number[] = [];

  private constructor(
    readonly root: string,
    readonly nodes: ClusterNode[],
    private readonly options: ClusterOptions,
  ) {}

  static async start(options: ClusterOptions = {}): Promise<TestCluster> {
    const size = options.size ?? 3;
    const root = options.root ?? mkdtempSync(join(tmpdir(), 'flotilla-cluster-'));
    mkdirSync(root, { recursive: true });
    const ports = await freePorts(size);
    const nodes = ports.map((port, i) => describeNode(root, `n${i + 1}`, port));
    const cluster = new TestCluster(root, nodes, options);
    try {
      await options.beforeSpawn?.(nodes);
      for (const node of nodes) cluster.spawnNode(node);
      await Promise.all(nodes.map((n) => cluster.waitHealthy(n)));
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  node(id: string): ClusterNode {
    const node = this.nodes.find((n) => n.id === id);
    if (!node) throw new Error(`no node ${id}`);
    return node;
  }

  urls(): string[] {
    return this.nodes.map((n) => n.url);
  }

  peersArg(): string {
    const addr = this.options.peerAddress ?? ((_id: string, port: number) => `127.0.0.1:${port}`);
    return this.nodes.map((n) => `${n.id}=${addr(n.id, n.port)}`).join(',');
  }

  /**
   * Start one more node, `n<k>` with k above every id used so far, with `--join`: it waits to be
   * added as a member (`POST /api/cluster/members`). `beforeSpawn` runs for it first.
   */
  async addNode(): Promise<ClusterNode> {
    const used = this.nodes.map((n) => Number(n.id.slice(1))).concat(this.retiredIds);
    const id = `n${Math.max(0, ...used) + 1}`;
    const [port] = await freePorts(1);
    const node: ClusterNode = { ...describeNode(this.root, id, port!), join: true };
    await this.options.beforeSpawn?.([node]);
    this.nodes.push(node);
    this.spawnNode(node);
    await this.waitHealthy(node);
    return node;
  }

  /** Kill a node if it runs and forget it (after it was removed from the membership); its files stay. */
  async retire(id: string): Promise<void> {
    const node = this.node(id);
    if (node.process) await this.signal(id, 'SIGKILL');
    this.nodes.splice(this.nodes.indexOf(node), 1);
    this.retiredIds.push(Number(id.slice(1)));
  }

  /** Freeze a node's process (SIGSTOP): it keeps its sockets but answers nothing until `resume`. */
  pause(id: string): void {
    const node = this.node(id);
    if (!node.process) throw new Error(`${id} is not running`);
    node.process.kill('SIGSTOP');
    node.paused = true;
  }

  /** Let a paused node run again (SIGCONT). */
  resume(id: string): void {
    const node = this.node(id);
    if (!node.process) throw new Error(`${id} is not running`);
    node.process.kill('SIGCONT');
    node.paused = false;
  }

  /** Start (or restart) a node's process with its existing data directory. */
  async startNode(id: string): Promise<void> {
    const node = this.node(id);
    if (node.process) throw new Error(`${id} is already running`);
    this.spawnNode(node);
    await this.waitHealthy(node);
  }

  private spawnNode(node: ClusterNode): void {
    mkdirSync(node.dataDir, { recursive: true });
    const advertise =
      this.options.advertiseFor?.(node) ??
      this.options.peerAddress?.(node.id, node.port) ??
      `127.0.0.1:${node.port}`;
    const args = [
      CLI_MAIN,
      'server',
      '--node-id',
      node.id,
      '--data-dir',
      node.dataDir,
      '--listen',
      `127.0.0.1:${node.port}`,
      '--advertise',
      advertise,
      '--peers',
      this.options.peersFor?.(node, this) ?? this.peersArg(),
      '--cluster-secret',
      this.secret,
      ...(node.join ? ['--join'] : []),
      ...(this.options.args ?? []),
    ];
    const log = openSync(node.logFile, 'a');
    const child = spawn(process.execPath, args, {
      env: { ...process.env, ...this.options.env },
      stdio: ['ignore', log, log],
    });
    closeSync(log);
    live.add(child);
    child.once('exit', () => {
      live.delete(child);
      if (node.process === child) {
        node.process = null;
        node.paused = false;
      }
    });
    node.process = child;
  }

  /**
   * Waits until the node answers /health as itself: another test's node on the same port must not
   * pass for it. Fails at once if the process exited (e.g. its port was taken after all).
   */
  private async waitHealthy(node: ClusterNode): Promise<void> {
    let exited: Error | null = null;
    await waitFor(
      async () => {
        if (!node.process) {
          exited = new Error(`${node.id} exited:\n${this.tail(node)}`);
          return true;
        }
        const res = await fetch(`${node.httpUrl}/health`);
        if (!res.ok) return false;
        const body = (await res.json()) as { nodeId?: unknown };
        if (body.nodeId !== node.id) throw new Error(`${node.httpUrl} answers as ${String(body.nodeId)}`);
        return true;
      },
      { timeoutMs: 15_000, what: `${node.id} to answer /health` },
    );
    if (exited !== null) throw exited;
  }

  /** The last lines of a node's log, for failure messages. */
  tail(node: ClusterNode, lines = 30): string {
    try {
      return readFileSync(node.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  async status(id: string): Promise<ApiClusterStatus> {
    const res = await fetch(`${this.node(id).httpUrl}/api/cluster`);
    if (!res.ok) throw new Error(`/api/cluster on ${id}: HTTP ${res.status}`);
    return (await res.json()) as ApiClusterStatus;
  }

  running(): ClusterNode[] {
    return this.nodes.filter((n) => n.process);
  }

  /** Wait until every running node names the same leader, itself running. */
  async waitForLeader(timeoutMs = 15_000): Promise<ClusterNode> {
    const id = await waitFor(
      async () => {
        const statuses = await Promise.all(this.running().map((n) => this.status(n.id)));
        const leaders = new Set(statuses.map((s) => s.leaderId));
        const [leader] = leaders;
        if (leaders.size !== 1 || !leader) return false;
        const leaderStatus = statuses.find((s) => s.nodeId === leader);
        return leaderStatus?.role === 'leader' ? leader : false;
      },
      { timeoutMs, what: 'all running nodes to agree on a leader' },
    );
    return this.node(id);
  }

  /** Send a signal and wait for the process to exit; returns its exit code (null when killed). */
  async signal(id: string, signal: NodeJS.Signals = 'SIGKILL', timeoutMs = 15_000): Promise<number | null> {
    const child = this.node(id).process;
    if (!child) throw new Error(`${id} is not running`);
    const exited = once(child, 'exit') as Promise<[number | null, string | null]>;
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const [code] = await exited;
    clearTimeout(timer);
    return code;
  }

  /** Kill every process and remove the data unless asked to keep it. */
  async stop(): Promise<void> {
    await Promise.all(
      this.nodes
        .filter((n) => n.process)
        .map(async (n) => {
          const child = n.process!;
          const exited = once(child, 'exit');
          child.kill('SIGKILL');
          await exited;
        }),
    );
    if (!this.options.keepData) rmSync(this.root, { recursive: true, force: true });
  }
}
