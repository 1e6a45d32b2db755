/**
 * An in-process cluster for driver tests: N nodes, each a `RaftDriver` over real `FileStorage` in
 * its own temporary directory, a `PeerTransport`, and an HTTP server on a free loopback port
 * routing `/cluster` upgrades to it, applying to a `ListMachine`. Nodes can be killed (sockets
 * dropped at once, server closed, as a dead process), stopped gracefully, restarted from their
 * directory on the same port, and new nodes can join. `close()` releases every server, timer and
 * directory.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RaftLimits } from '../../raft/index.js';
import { FileStorage, NodeDisk, type RaftStorage } from '../../storage/index.js';
import type { SnapshotEvent } from '../app-runner.js';
import { type DriverObserver, RaftDriver, type StopOptions } from '../driver.js';
import { PeerTransport, type TransportLimits } from '../transport/index.js';
import { ListMachine } from './list-machine.js';
import { type CapturedLog, captureLogger, listenForPeers, type TestServer, waitFor } from './support.js';

export const TEST_SECRET = 'cluster-test-secret';
const encoder = new TextEncoder();

export interface ClusterOptions {
  /** Initial voters n1..nN. */
  size: number;
  tickMs?: number;
  electionTimeoutMs?: number;
  heartbeatMs?: number;
  snapshotLogBytes?: number;
  raftLimits?: Partial<RaftLimits>;
  transportLimits?: Partial<TransportLimits>;
  observer?: (id: string) => DriverObserver;
  /** Wraps every node's FileStorage (unless the node's start options give their own). */
  wrapStorage?: (storage: RaftStorage, nodeId: string) => RaftStorage;
}

export interface NodeStartOptions {
  join?: boolean;
  secret?: string;
  /** Peers given on the command line (default: the initial voters). */
  peers?: Map<string, string>;
  /** Wraps the node's FileStorage (e.g. to inject I/O errors). */
  wrapStorage?: (storage: RaftStorage, nodeId: string) => RaftStorage;
}

export interface TestNode {
  id: string;
  dir: string;
  address: string;
  port: number;
  server: TestServer;
  transport: PeerTransport;
  driver: RaftDriver;
  app: ListMachine;
  log: CapturedLog;
  snapshots: SnapshotEvent[];
  fatal: Error[];
  alive: boolean;
}

export class TestCluster {
  readonly nodes = new Map<string, TestNode>();
  /** Initial voters and their addresses (`--peers`). */
  readonly peers = new Map<string, string>();
  private readonly root = mkdtempSync(join(tmpdir(), 'flotilla-cluster-'));
  private readonly servers = new Map<string, TestServer>();
  private proposals = 0;

  private constructor(readonly options: ClusterOptions) {}

  static async start(options: ClusterOptions): Promise<TestCluster> {
    const cluster = new TestCluster(options);
    const ids = Array.from({ length: options.size }, (_, i) => `n${i + 1}`);
    for (const id of ids) cluster.peers.set(id, (await cluster.listen(id)).address);
    await Promise.all(ids.map((id) => cluster.startNode(id)));
    return cluster;
  }

  /** Reserves a port (a server) for `id`; nodes started later reuse it. */
  async listen(id: string, port = 0): Promise<TestServer> {
    const server = await listenForPeers((req, socket, head) => {
      const node = this.nodes.get(id);
      if (node?.alive) node.transport.handleUpgrade(req, socket, head);
      else socket.destroy();
    }, port);
    this.servers.set(id, server);
    return server;
  }

  /** Starts (or restarts, from its directory) node `id`. */
  async startNode(id: string, options: NodeStartOptions = {}): Promise<TestNode> {
    const server = this.servers.get(id) ?? (await this.listen(id));
    const log = captureLogger('debug', { node: id });
    const transport = new PeerTransport({
      nodeId: id,
      advertise: server.address,
      clusterSecret: options.secret ?? TEST_SECRET,
      logger: log.logger,
      limits: { reconnectBaseMs: 10, reconnectMaxMs: 200, ...this.options.transportLimits },
    });
    const app = new ListMachine();
    const snapshots: SnapshotEvent[] = [];
    const fatal: Error[] = [];
    const extra = this.options.observer?.(id) ?? {};
    const wrapStorage = options.wrapStorage ?? this.options.wrapStorage;
    const driver = new RaftDriver({
      nodeId: id,
      advertise: server.address,
      peers: options.peers ?? this.peers,
      join: options.join ?? false,
      ...(wrapStorage === undefined
        ? { dataDir: join(this.root, id) }
        : { storage: wrapStorage(new FileStorage({ disk: new NodeDisk(join(this.root, id)) }), id) }),
      transport,
      app,
      tickMs: this.options.tickMs ?? 10,
      electionTimeoutMs: this.options.electionTimeoutMs ?? 300,
      heartbeatMs: this.options.heartbeatMs ?? 30,
      snapshotLogBytes: this.options.snapshotLogBytes ?? 64 * 1024 * 1024,
      raftLimits: this.options.raftLimits,
      logger: log.logger,
      observer: { ...extra, snapshot: (event) => snapshots.push(event) },
      onFatal: (err) => fatal.push(err),
    });
    const node: TestNode = {
      id,
      dir: join(this.root, id),
      address: server.address,
      port: server.port,
      server,
      transport,
      driver,
      app,
      log,
      snapshots,
      fatal,
      alive: true,
    };
    this.nodes.set(id, node);
    await driver.start();
    return node;
  }

  node(id: string): TestNode {
    const node = this.nodes.get(id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  alive(): TestNode[] {
    return [...this.nodes.values()].filter((n) => n.alive);
  }

  /** Kills `id` abruptly: its links drop and its port stops answering, like a killed process. */
  async kill(id: string): Promise<void> {
    const node = this.node(id);
    node.alive = false;
    node.driver.kill();
    await this.servers.get(id)!.close();
    this.servers.delete(id);
    await node.driver.closed;
  }

  /** Stops `id` gracefully (handing leadership over if it leads), then closes its port. */
  async stop(id: string, options?: StopOptions): Promise<void> {
    const node = this.node(id);
    await node.driver.stop(options);
    node.alive = false;
    await this.servers.get(id)!.close();
    this.servers.delete(id);
  }

  /** Restarts a stopped or killed node from its directory, on its old port. */
  async restart(id: string, options: NodeStartOptions = {}): Promise<TestNode> {
    const old = this.node(id);
    if (old.alive) throw new Error(`${id} is running`);
    await this.listen(id, old.port);
    return this.startNode(id, options);
  }

  /** The live leader of the highest term, if any. */
  leader(): TestNode | undefined {
    let best: TestNode | undefined;
    for (const node of this.alive()) {
      const status = node.driver.status();
      if (status.role === 'leader' && (best === undefined || status.term > best.driver.status().term))
        best = node;
    }
    return best;
  }

  async waitForLeader(timeoutMs = 10_000): Promise<TestNode> {
    await waitFor(() => this.leader() !== undefined, 'a leader', timeoutMs);
    return this.leader()!;
  }

  /**
   * Proposes `text` until a leader commits it, and returns where it landed. Waits for the leader to
   * apply it (so it is committed), retrying on refusal or on loss to a leader change.
   */
  async propose(text: string, timeoutMs = 10_000): Promise<{ index: number; term: number }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (Date.now() > deadline) throw new Error(`could not commit ${text} within ${timeoutMs} ms`);
      const leader = this.leader();
      const at = leader?.driver.propose(encoder.encode(text)) ?? null;
      if (leader === undefined || at === null) {
        await new Promise((resolve) => setTimeout(resolve, 10));
        continue;
      }
      const applied = () => leader.driver.status().appliedIndex >= at.index || !leader.alive;
      await waitFor(applied, `${text} applied on ${leader.id}`, Math.max(1, deadline - Date.now()));
      if (leader.app.items.some((item) => item.index === at.index && item.text === text)) return at;
    }
  }

  /** Proposes `count` entries without waiting for each (load), returning when all are committed. */
  async proposeMany(count: number, prefix = 'p'): Promise<string[]> {
    const texts = Array.from({ length: count }, () => `${prefix}${++this.proposals}`);
    await Promise.all(texts.map((text) => this.propose(text)));
    return texts;
  }

  /** Waits until every live member applied at least `index`. */
  async waitForApplied(index: number, nodes: TestNode[] = this.alive(), timeoutMs = 10_000): Promise<void> {
    for (const node of nodes) {
      await waitFor(
        () => node.driver.status().appliedIndex >= index,
        `${node.id} applies ${index}`,
        timeoutMs,
      );
    }
  }

  async close(): Promise<void> {
    for (const node of this.nodes.values()) {
      if (node.alive) {
        node.alive = false;
        node.driver.kill();
        await node.driver.closed;
      }
    }
    for (const server of this.servers.values()) await server.close();
    this.servers.clear();
    rmSync(this.root, { recursive: true, force: true });
  }
}
