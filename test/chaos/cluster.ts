/**
 * A real-process cluster wired for chaos: every node dials every peer through a proxy of its own
 * (one `LinkProxy` per directed link i→j, given to node i in its `--peers`), so any link can be
 * cut, dropped or delayed in one direction. Clients talk to the nodes directly.
 *
 * A node added later (`addMember`) is reached by everyone at the address in its membership entry,
 * so all links *into* it share one proxy; links out of it are per link as usual. Breaking any link
 * into such a node therefore breaks all of them (the fault is coarser, never milder).
 *
 * Also here: process faults (kill -9, SIGSTOP/SIGCONT, SIGTERM restarts), membership changes
 * through the HTTP API, and the read-outs the campaign needs (leader, digests, queue stats).
 * Every HTTP call has a deadline: a paused node accepts connections but never answers.
 */
import type { ChildProcess } from 'node:child_process';
import { type ClusterNode, TestCluster } from '../support/cluster.js';
import { waitFor } from '../support/wait.js';
import type { FinalNode } from './history.js';
import { LinkProxy } from './proxy.js';

export interface ChaosClusterOptions {
  size: number;
  /** Directory for data and logs. */
  root: string;
  /** Extra `flotilla server` arguments. */
  args?: string[];
  /** Draws for proxy jitter. */
  random?: () => number;
}

export type LinkFault =
  | { mode: 'cut' }
  | { mode: 'drop' }
  | { mode: 'delay'; delayMs: number; jitterMs: number };

/** What `/api/cluster` answers (the fields the campaign reads). */
export interface NodeView {
  nodeId: string;
  role: string;
  term: number;
  leaderId: string | null;
  commitIndex: number;
  appliedIndex: number;
  members: { id: string; address: string; voter: boolean; matchIndex: number | null; connected: boolean }[];
}

export interface QueueView {
  name: string;
  depth: number;
  inFlight: number;
  delayed: number;
  options: { deadLetterQueue: string | null; maxDeliveries: number };
}

const HTTP_TIMEOUT_MS = 2_000;

/** JSON from a node, or an error after the deadline (a paused node never answers). */
export async function httpJson<T>(
  url: string,
  init: RequestInit = {},
  timeoutMs = HTTP_TIMEOUT_MS,
): Promise<T> {
  const res = await fetch(url, {
    ...init,
    headers: { 'content-type': 'application/json', ...(init.headers ?? {}) },
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${init.method ?? 'GET'} ${url}: HTTP ${res.status} ${text.slice(0, 300)}`);
  return (text ? JSON.parse(text) : null) as T;
}

/**
 * The proxies of a cluster: one per directed link between initial nodes, and for each node added
 * later a shared inbound proxy plus one per link out of it.
 */
class LinkTable {
  private readonly perLink = new Map<string, LinkProxy>();
  private readonly inbound = new Map<string, LinkProxy>();
  private readonly all: LinkProxy[] = [];
  /** Each node's `--peers`, fixed at its first start so restarts use the same configuration. */
  private readonly peersOf = new Map<string, string>();

  constructor(private readonly random: (() => number) | undefined) {}

  private async open(key: string, to: ClusterNode): Promise<LinkProxy> {
    const proxy = await LinkProxy.start({ targetPort: to.port, name: key, random: this.random });
    this.all.push(proxy);
    return proxy;
  }

  async wireInitial(nodes: readonly ClusterNode[]): Promise<void> {
    for (const from of nodes) {
      for (const to of nodes) {
        if (from !== to)
          this.perLink.set(`${from.id}->${to.id}`, await this.open(`${from.id}->${to.id}`, to));
      }
    }
  }

  async wireAdded(added: ClusterNode, members: readonly ClusterNode[]): Promise<void> {
    this.inbound.set(added.id, await this.open(`*->${added.id}`, added));
    for (const to of members)
      this.perLink.set(`${added.id}->${to.id}`, await this.open(`${added.id}->${to.id}`, to));
  }

  /** Where members reach a node added later (the address in its membership entry). */
  inboundAddress(id: string): string {
    const proxy = this.inbound.get(id);
    if (!proxy) throw new Error(`${id} has no inbound proxy`);
    return `127.0.0.1:${proxy.port}`;
  }

  /** `--peers` for `node`: itself at its own port (unless joining), each other node through its link. */
  peersFor(node: ClusterNode, nodes: readonly ClusterNode[]): string {
    const known = this.peersOf.get(node.id);
    if (known !== undefined) return known;
    const parts: string[] = [];
    for (const peer of nodes) {
      if (peer.id === node.id) {
        if (!node.join) parts.push(`${peer.id}=127.0.0.1:${peer.port}`);
        continue;
      }
      const proxy = this.perLink.get(`${node.id}->${peer.id}`);
      if (proxy) parts.push(`${peer.id}=127.0.0.1:${proxy.port}`);
    }
    const peers = parts.join(',');
    this.peersOf.set(node.id, peers);
    return peers;
  }

  get(from: string, to: string): LinkProxy {
    const proxy = this.perLink.get(`${from}->${to}`) ?? this.inbound.get(to);
    if (!proxy) throw new Error(`no link ${from}->${to}`);
    return proxy;
  }

  healAll(): void {
    for (const proxy of this.all) proxy.heal();
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.all.splice(0).map((p) => p.close()));
  }
}

/** A node process that ended without the harness asking it to. */
export interface NodeCrash {
  id: string;
  /** Exit code or signal, and the last lines of its log. */
  detail: string;
}

export class ChaosCluster {
  private readonly crashList: NodeCrash[] = [];
  /** Processes the harness itself is stopping: their exit is no crash. */
  private readonly stopping = new WeakSet<ChildProcess>();

  private constructor(
    readonly cluster: TestCluster,
    private readonly links: LinkTable,
  ) {
    for (const node of cluster.nodes) this.watch(node.id);
  }

  static async start(options: ChaosClusterOptions): Promise<ChaosCluster> {
    const links = new LinkTable(options.random);
    let cluster: TestCluster | undefined;
    try {
      cluster = await TestCluster.start({
        size: options.size,
        root: options.root,
        keepData: true,
        args: options.args,
        beforeSpawn: (nodes) =>
          cluster ? links.wireAdded(nodes[0]!, cluster.nodes) : links.wireInitial(nodes),
        peersFor: (node, c) => links.peersFor(node, c.nodes),
      });
    } catch (error) {
      await links.closeAll();
      throw error;
    }
    return new ChaosCluster(cluster, links);
  }

  // ---------------------------------------------------------------------------------------------
  // Membership and processes

  /** Ids of the nodes the campaign considers members, in id order. */
  members(): string[] {
    return this.cluster.nodes.map((n) => n.id).sort(byNodeNumber);
  }

  node(id: string): ClusterNode {
    return this.cluster.node(id);
  }

  urls(): string[] {
    return this.cluster.urls();
  }

  isUp(id: string): boolean {
    const node = this.node(id);
    return node.process !== null && !node.paused;
  }

  async kill(id: string): Promise<void> {
    this.expectExit(id);
    await this.cluster.signal(id, 'SIGKILL');
  }

  /** SIGTERM and wait for the graceful exit; returns the exit code. */
  async terminate(id: string, timeoutMs = 20_000): Promise<number | null> {
    this.expectExit(id);
    return this.cluster.signal(id, 'SIGTERM', timeoutMs);
  }

  /** Start a stopped node again; a node that dies while starting is recorded as a crash. */
  async restart(id: string): Promise<void> {
    try {
      await this.cluster.startNode(id);
    } catch (error) {
      this.crashList.push({ id, detail: `died while starting: ${this.lastWords(id)}` });
      throw error;
    }
    this.watch(id);
  }

  /** Nodes that exited without being asked to, in order. */
  crashes(): NodeCrash[] {
    return [...this.crashList];
  }

  private expectExit(id: string): void {
    const child = this.node(id).process;
    if (child) this.stopping.add(child);
  }

  private watch(id: string): void {
    const child = this.node(id).process;
    if (!child) return;
    child.once('exit', (code, signal) => {
      if (this.stopping.has(child)) return;
      this.crashList.push({ id, detail: `exited (${signal ?? `code ${code}`}): ${this.lastWords(id)}` });
    });
  }

  /** The end of a node's log, for crash reports. */
  private lastWords(id: string): string {
    const node = this.cluster.nodes.find((n) => n.id === id);
    return node ? this.cluster.tail(node, 3).slice(-1_500) : '(node forgotten)';
  }

  pause(id: string): void {
    this.cluster.pause(id);
  }

  resume(id: string): void {
    this.cluster.resume(id);
  }

  /**
   * Adds a node: starts it with `--join`, adds it as a learner through the HTTP API, waits for it
   * to catch up and promotes it to voter. Returns its id.
   */
  async addMember(timeoutMs = 30_000): Promise<string> {
    const node = await this.cluster.addNode();
    this.watch(node.id);
    const address = this.links.inboundAddress(node.id);
    await this.adminCall('POST', '/api/cluster/members', { id: node.id, address }, timeoutMs);
    await this.adminCall('POST', `/api/cluster/members/${node.id}/promote`, undefined, timeoutMs);
    return node.id;
  }

  /** Removes a member through the HTTP API, then stops its process and forgets it. */
  async removeMember(id: string, timeoutMs = 30_000): Promise<void> {
    await this.adminCall('DELETE', `/api/cluster/members/${id}`, undefined, timeoutMs);
    this.expectExit(id);
    await this.cluster.retire(id);
  }

  /** A cluster change, retried on any running node until it succeeds or the deadline passes. */
  private async adminCall(method: string, path: string, body: unknown, timeoutMs: number): Promise<void> {
    let turn = 0;
    await waitFor(
      async () => {
        const up = this.members().filter((id) => this.isUp(id));
        const target = up[turn++ % Math.max(1, up.length)];
        if (!target) return false;
        const init: RequestInit = { method };
        if (body !== undefined) init.body = JSON.stringify(body);
        await httpJson(`${this.node(target).httpUrl}${path}`, init, 10_000);
        return true;
      },
      { timeoutMs, intervalMs: 250, what: `${method} ${path}` },
    );
  }

  // ---------------------------------------------------------------------------------------------
  // Links

  /** The proxy carrying `from`'s connections to `to`. */
  link(from: string, to: string): LinkProxy {
    return this.links.get(from, to);
  }

  breakLink(from: string, to: string, fault: LinkFault): void {
    const proxy = this.link(from, to);
    if (fault.mode === 'cut') proxy.cut();
    else if (fault.mode === 'drop') proxy.drop();
    else proxy.delay(fault.delayMs, fault.jitterMs);
  }

  /** Break every link between nodes on different sides (both directions). */
  partition(sides: readonly (readonly string[])[], fault: LinkFault): void {
    for (const [a, sideA] of sides.entries()) {
      for (const [b, sideB] of sides.entries()) {
        if (a === b) continue;
        for (const from of sideA) for (const to of sideB) this.breakLink(from, to, fault);
      }
    }
  }

  /** Every link back to passing bytes straight through. */
  healNetwork(): void {
    this.links.healAll();
  }

  /** Heal the network, let paused nodes run and restart dead ones: the cluster as it should be. */
  async healAll(): Promise<void> {
    this.healNetwork();
    for (const id of this.members()) {
      const node = this.node(id);
      if (node.paused && node.process) this.resume(id);
      // A node that cannot start is already recorded as a crash; heal the others regardless.
      if (!node.process) await this.restart(id).catch(() => {});
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Read-outs

  async view(id: string): Promise<NodeView> {
    return httpJson<NodeView>(`${this.node(id).httpUrl}/api/cluster`);
  }

  /** The leader most up nodes agree on right now, or null. */
  async leader(): Promise<string | null> {
    const views = await Promise.allSettled(
      this.members()
        .filter((id) => this.isUp(id))
        .map((id) => this.view(id)),
    );
    const leaders = views.flatMap((v) =>
      v.status === 'fulfilled' && v.value.role === 'leader' ? [v.value] : [],
    );
    leaders.sort((a, b) => b.term - a.term);
    return leaders[0]?.nodeId ?? null;
  }

  /** Wait until the running members agree on one leader; returns it. */
  async waitForLeader(timeoutMs = 20_000): Promise<string> {
    return waitFor(
      async () => {
        const up = this.members().filter((id) => this.isUp(id));
        const views = await Promise.all(up.map((id) => this.view(id)));
        const leaders = new Set(views.map((v) => v.leaderId));
        const [leader] = leaders;
        if (leaders.size !== 1 || !leader) return false;
        return views.find((v) => v.nodeId === leader)?.role === 'leader' ? leader : false;
      },
      { timeoutMs, intervalMs: 100, what: 'the running members to agree on a leader' },
    );
  }

  async digest(id: string): Promise<FinalNode> {
    const { appliedIndex, digest } = await httpJson<{ appliedIndex: number; digest: string }>(
      `${this.node(id).httpUrl}/api/digest`,
    );
    return { id, appliedIndex, digest };
  }

  /** Every member's applied index and digest (members that do not answer are left out). */
  async digests(): Promise<FinalNode[]> {
    const results = await Promise.allSettled(this.members().map((id) => this.digest(id)));
    return results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  }

  /** Queue stats from the first member that answers. */
  async queues(): Promise<QueueView[]> {
    for (const id of this.members().filter((m) => this.isUp(m))) {
      try {
        return await httpJson<QueueView[]>(`${this.node(id).httpUrl}/api/queues`);
      } catch {
        // Try the next member.
      }
    }
    throw new Error('no member answered /api/queues');
  }

  /** The last lines of every node's log, for failure messages. */
  tails(lines = 20): string {
    return this.cluster.nodes.map((n) => `--- ${n.id} ---\n${this.cluster.tail(n, lines)}`).join('\n');
  }

  /** Kill every process and close every proxy. Safe to call more than once. */
  async stop(): Promise<void> {
    for (const node of this.cluster.nodes) {
      this.expectExit(node.id);
      if (node.paused && node.process) node.process.kill('SIGCONT');
    }
    await this.cluster.stop();
    await this.links.closeAll();
  }
}

export function byNodeNumber(a: string, b: string): number {
  return Number(a.slice(1)) - Number(b.slice(1));
}
