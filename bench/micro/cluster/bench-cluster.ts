/**
 * A cluster of real drivers in one process for the cluster benchmarks: each node has its own HTTP
 * server on a loopback port, a `PeerTransport`, `FileStorage` in a temporary directory and a
 * state machine that only counts what it applies. All nodes share this process's one core, so
 * figures are lower bounds for one node per process.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RaftDriver, type RaftDriverOptions } from '../../../packages/node/src/cluster/driver.js';
import { listenForPeers, type TestServer } from '../../../packages/node/src/cluster/testing/support.js';
import { PeerTransport } from '../../../packages/node/src/cluster/transport/index.js';
import type {
  AppliedEntry,
  ReplicatedStateMachine,
  SnapshotSource,
} from '../../../packages/node/src/cluster/types.js';
import { silentLogger } from '../../../packages/node/src/runtime/logger.js';

export class CountingMachine implements ReplicatedStateMachine {
  entries = 0;
  bytes = 0;
  lastIndex = 0;
  /** Called after every apply (the benchmark's hook for latency). */
  onApply: (entry: AppliedEntry) => void = () => {};

  apply(entry: AppliedEntry): void {
    this.entries++;
    this.bytes += entry.data.length;
    this.lastIndex = entry.index;
    this.onApply(entry);
  }

  snapshot(): SnapshotSource {
    const state = new Uint8Array(16);
    new DataView(state.buffer).setFloat64(0, this.entries);
    new DataView(state.buffer).setFloat64(8, this.bytes);
    let sent = false;
    return {
      index: this.lastIndex,
      next: () => {
        if (sent) return null;
        sent = true;
        return state;
      },
    };
  }

  async restore(chunks: AsyncIterable<Uint8Array>, index: number): Promise<void> {
    const parts: Uint8Array[] = [];
    for await (const chunk of chunks) parts.push(chunk);
    const body = Buffer.concat(parts);
    this.entries = body.length >= 16 ? body.readDoubleBE(0) : 0;
    this.bytes = body.length >= 16 ? body.readDoubleBE(8) : 0;
    this.lastIndex = index;
  }
}

export interface BenchNode {
  id: string;
  server: TestServer;
  transport: PeerTransport;
  driver: RaftDriver;
  app: CountingMachine;
  alive: boolean;
}

export type Timing = Pick<RaftDriverOptions, 'tickMs' | 'electionTimeoutMs' | 'heartbeatMs'>;

export interface BenchClusterOptions {
  size: number;
  timing: Timing;
  randomMask?: boolean;
  fastFailover?: boolean;
  snapshotLogBytes?: number;
}

export class BenchCluster {
  readonly nodes = new Map<string, BenchNode>();
  readonly peers = new Map<string, string>();
  private readonly servers = new Map<string, TestServer>();
  private readonly root = mkdtempSync(join(tmpdir(), 'flotilla-bench-'));

  constructor(private readonly options: BenchClusterOptions) {}

  async start(): Promise<void> {
    const ids = Array.from({ length: this.options.size }, (_, i) => `n${i + 1}`);
    for (const id of ids) this.peers.set(id, (await this.listen(id, 0)).address);
    await Promise.all(ids.map((id) => this.startNode(id)));
  }

  private async listen(id: string, port: number): Promise<TestServer> {
    const server = await listenForPeers((req, socket, head) => {
      const node = this.nodes.get(id);
      if (node?.alive) node.transport.handleUpgrade(req, socket, head);
      else socket.destroy();
    }, port);
    this.servers.set(id, server);
    return server;
  }

  async startNode(id: string): Promise<BenchNode> {
    const server = this.servers.get(id) ?? (await this.listen(id, Number(this.peers.get(id)!.split(':')[1])));
    const transport = new PeerTransport({
      nodeId: id,
      advertise: server.address,
      clusterSecret: 'bench-secret',
      randomMask: this.options.randomMask,
      limits: { reconnectBaseMs: 50 },
    });
    const app = new CountingMachine();
    const driver = new RaftDriver({
      nodeId: id,
      advertise: server.address,
      peers: this.peers,
      dataDir: join(this.root, id),
      transport,
      app,
      ...this.options.timing,
      snapshotLogBytes: this.options.snapshotLogBytes ?? 256 * 1024 * 1024,
      logger: silentLogger,
      fastFailover: this.options.fastFailover,
    });
    const node: BenchNode = { id, server, transport, driver, app, alive: true };
    this.nodes.set(id, node);
    await driver.start();
    return node;
  }

  leader(): BenchNode | undefined {
    return [...this.nodes.values()].find((n) => n.alive && n.driver.status().role === 'leader');
  }

  async waitForLeader(timeoutMs = 30_000): Promise<BenchNode> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const leader = this.leader();
      if (leader !== undefined) return leader;
      if (Date.now() > deadline) throw new Error('no leader');
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  }

  /** Kills a node the way a dead process goes: sockets dropped, port closed. */
  async kill(id: string): Promise<void> {
    const node = this.nodes.get(id)!;
    node.alive = false;
    node.driver.kill();
    await this.servers.get(id)!.close();
    this.servers.delete(id);
    await node.driver.closed;
  }

  async close(): Promise<void> {
    for (const node of this.nodes.values()) {
      if (node.alive) node.driver.kill();
      await node.driver.closed;
    }
    for (const server of this.servers.values()) await server.close();
    rmSync(this.root, { recursive: true, force: true });
  }
}
