/**
 * Deterministic simulation of a whole Raft cluster under faults, driven by one seed.
 *
 * A run has two phases. Faulty: clients propose and read throughout, while the network drops,
 * duplicates, delays (and so reorders) messages and is partitioned (symmetric splits, one-way cuts,
 * leader isolation); nodes crash (losing unsynced writes) and restart; members are added as
 * learners, promoted and removed; leadership is transferred; followers forget their leader (fast
 * failover's input, also while that leader lives, and most survivors of a crashed leader together,
 * so that their short-timeout elections may collide); snapshots are taken and compaction
 * forces InstallSnapshot on lagging nodes. Healed: every fault stops, crashed nodes restart, and a
 * leader must be elected and commit a marker entry on every member within a bounded virtual time.
 * Safety is checked after every event (see checker.ts); liveness only after healing.
 */
import { describeMessage, type Message } from '../messages.js';
import { ConfChangeType, type ConfState, type NodeId } from '../types.js';
import { Checker, entryKey } from './checker.js';
import { EventQueue } from './event-queue.js';
import { createSimStorage, MemDisk, type SimStorage } from './mem-storage.js';
import { Prng } from './prng.js';
import { SimNode, type SimNodeEnv } from './sim-node.js';
import { createWalDisk, openWalStorage } from './wal-storage.js';

export interface SimOptions {
  seed: number;
  /** Events processed in the faulty phase. */
  steps: number;
  /** After healing, a leader must commit a marker on every member within this much virtual time. */
  livenessBoundMs?: number;
  /** Lines of trace kept for a failure report. */
  traceLines?: number;
  /**
   * Storage under each node: the production WAL (`FileStorage`) on the storage layer's in-memory disk
   * (default), or the small in-memory model (faster; for hunting with many seeds).
   */
  storage?: 'mem' | 'wal';
}

export interface SimResult {
  seed: number;
  /** Events processed in both phases. */
  steps: number;
  faults: number;
  violations: string[];
  /** The last events before the end (or the first violation). */
  trace: string[];
  virtualTimeMs: number;
  /** Virtual time from healing until a leader's marker was applied on every member. */
  recoveryMs: number;
  /** How often interesting things happened (elections, installs, membership changes, ...). */
  coverage: Map<string, number>;
}

const TICK_MS = 10;
const ELECTION_TIMEOUT_TICKS = 10;
const DEFAULT_LIVENESS_BOUND_MS = 20_000;

interface NetworkWeather {
  dropRate: number;
  duplicateRate: number;
  delayMs: [number, number];
  longDelayRate: number;
}

export function runSimulation(options: SimOptions): SimResult {
  return new Simulation(options).run();
}

class Simulation {
  private readonly rng: Prng;
  private readonly queue = new EventQueue();
  private readonly checker = new Checker();
  private readonly nodes = new Map<NodeId, SimNode>();
  private readonly blocked = new Set<string>();
  private readonly traceRing: string[] = [];
  private readonly coverage = new Map<string, number>();
  private readonly env: SimNodeEnv;
  private weather: NetworkWeather;
  private steps = 0;
  private faults = 0;
  private healed = false;
  private proposalSeq = 0;
  private readSeq = 0;
  private nextNodeNumber: number;
  private marker: { key: string; index: number; term: number; node: NodeId } | null = null;
  private livenessMet = false;

  constructor(private readonly options: SimOptions) {
    this.rng = new Prng(options.seed);
    const voterCount = this.rng.pick([1, 3, 3, 5]);
    const initialVoters = Array.from({ length: voterCount }, (_, i) => `n${i + 1}`);
    this.nextNodeNumber = voterCount + 1;
    this.weather = this.randomWeather();
    this.env = {
      rng: this.rng,
      checker: this.checker,
      initialVoters,
      limits: {
        electionTimeoutTicks: ELECTION_TIMEOUT_TICKS,
        heartbeatIntervalTicks: 1,
        // Small limits so that batching, windows and chunking all come into play with tiny entries.
        maxAppendBytes: this.rng.pick([1, 16, 64]),
        maxInflightAppends: this.rng.pick([1, 2, 8]),
        maxInflightBytes: 0,
        maxUncommittedBytes: 2_000,
        compactionKeepEntries: this.rng.pick([0, 5, 50]),
        snapshotChunkBytes: this.rng.pick([16, 64, 1024]),
        snapshotChunksInflight: this.rng.pick([1, 3]),
        learnerPromotionLagEntriesMax: 20,
      },
      snapshotEveryEntries: this.rng.between(8, 60),
      snapshotFillerBytesMax: 300,
      send: (message) => this.send(message),
      trace: (line) => this.trace(line),
      count: (event) => this.count(event),
    };
    for (const id of initialVoters) this.startNewNode(id);
  }

  run(): SimResult {
    this.scheduleClients();
    this.scheduleFaults();
    const boundMs = this.options.livenessBoundMs ?? DEFAULT_LIVENESS_BOUND_MS;
    let healedAtMs = 0;
    let recoveryMs = 0;
    while (this.checker.ok) {
      if (!this.healed && this.steps >= this.options.steps) {
        this.guarded(() => {
          this.heal();
          return true;
        });
        healedAtMs = this.queue.now;
      }
      if (this.healed && this.livenessMet) {
        recoveryMs = this.queue.now - healedAtMs;
        break;
      }
      if (this.healed && this.queue.now - healedAtMs > boundMs) break;
      if (!this.runEvent()) break;
    }
    if (this.checker.ok) this.finalChecks(boundMs);
    return {
      seed: this.options.seed,
      steps: this.steps,
      faults: this.faults,
      violations: this.checker.violations,
      trace: this.traceRing,
      virtualTimeMs: this.queue.now,
      recoveryMs,
      coverage: this.coverage,
    };
  }

  private runEvent(): boolean {
    return this.guarded(() => {
      const ran = this.queue.runNext();
      if (ran) this.steps++;
      if (this.steps % 1000 === 0) this.sweepLogs();
      return ran;
    });
  }

  /** Runs `action`; an exception (a broken invariant included) is a violation that ends the run. */
  private guarded(action: () => boolean): boolean {
    try {
      return action();
    } catch (error) {
      const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      this.checker.fail(`exception: ${message}`);
      return false;
    }
  }

  private finalChecks(boundMs: number): void {
    if (!this.livenessMet) {
      const roles = [...this.nodes.values()].map((n) => `${n.id}:${n.alive ? n.raft.status().role : 'down'}`);
      this.checker.fail(
        `liveness: no marker committed on every member within ${boundMs} ms of healing (${roles.join(' ')})`,
      );
      return;
    }
    this.sweepLogs();
    const members = this.members(this.currentLeader()!);
    this.checker.checkAcknowledged(members.map((id) => ({ id, applied: this.nodes.get(id)!.smApplied })));
  }

  private sweepLogs(): void {
    for (const node of this.nodes.values())
      if (node.alive) this.checker.checkLog(node.id, node.raft.logView());
  }

  // --- nodes -----------------------------------------------------------------------------------

  private startNewNode(id: NodeId): SimNode {
    // Disks differ: a slow one widens the window between a write and its sync, where crashes bite.
    const syncDelayMs = this.rng.pick<[number, number]>([
      [1, 3],
      [1, 10],
      [5, 40],
    ]);
    const node = new SimNode(id, this.openStorageFor(syncDelayMs), this.env);
    this.nodes.set(id, node);
    node.start();
    const phaseMs = this.rng.int(TICK_MS);
    const tick = () => {
      if (node.alive) node.tick();
      this.queue.schedule(TICK_MS, tick);
    };
    this.queue.schedule(phaseMs, tick);
    return node;
  }

  /** A new node's durable medium, and how a process opens storage on it. */
  private openStorageFor(syncDelayMs: [number, number]): () => SimStorage {
    const schedule = (delayMs: number, run: () => void) => this.queue.schedule(delayMs, run);
    if ((this.options.storage ?? 'wal') === 'wal') {
      const disk = createWalDisk(schedule, this.rng, syncDelayMs[1]);
      return () => openWalStorage(disk);
    }
    const disk = new MemDisk();
    return () => createSimStorage(disk, { rng: this.rng, schedule, syncDelayMs });
  }

  private aliveNodes(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.alive);
  }

  /** The live leader with the highest term, if any. */
  private currentLeader(): SimNode | null {
    let best: SimNode | null = null;
    for (const node of this.aliveNodes()) {
      const status = node.raft.status();
      if (status.role === 'leader' && (best === null || status.term > best.raft.status().term)) best = node;
    }
    return best;
  }

  private members(leader: SimNode): NodeId[] {
    const conf: ConfState = leader.raft.status().conf;
    return [...conf.voters, ...conf.learners];
  }

  // --- network ---------------------------------------------------------------------------------

  private randomWeather(): NetworkWeather {
    return {
      dropRate: this.rng.pick([0, 0.01, 0.05, 0.15]),
      duplicateRate: this.rng.pick([0, 0.01, 0.05]),
      delayMs: [1, this.rng.pick([3, 8, 20])],
      longDelayRate: this.rng.pick([0, 0.01, 0.03]),
    };
  }

  private isBlocked(from: NodeId, to: NodeId): boolean {
    return this.blocked.has(`${from}>${to}`);
  }

  private send(message: Message): void {
    if (message.type === 'timeoutNow') this.count('timeoutNow sent');
    if (message.type === 'voteResp' && !message.reject) {
      this.checker.onVoteGranted(message.from, message.term, message.to);
      // Crashing right after a vote is where lost votes would show (a second vote in the term).
      if (!this.healed && this.rng.chance(0.25)) this.bounceSoon(message.from);
    }
    if (this.isBlocked(message.from, message.to) || this.rng.chance(this.weather.dropRate)) return;
    this.scheduleDelivery(message);
    if (this.rng.chance(this.weather.duplicateRate)) this.scheduleDelivery(message);
  }

  private scheduleDelivery(message: Message): void {
    const [lo, hi] = this.weather.delayMs;
    const delayMs = this.rng.chance(this.weather.longDelayRate)
      ? this.rng.between(50, 400)
      : this.rng.between(lo, hi);
    this.queue.schedule(delayMs, () => {
      const to = this.nodes.get(message.to);
      if (to === undefined || !to.alive || this.isBlocked(message.from, message.to)) return;
      this.traceMessage(message);
      to.deliver(message);
    });
  }

  // --- clients ---------------------------------------------------------------------------------

  private scheduleClients(): void {
    const client = () => {
      this.clientAction();
      this.queue.schedule(this.rng.between(2, this.healed ? 20 : 15), client);
    };
    this.queue.schedule(this.rng.between(1, 10), client);
  }

  /** Proposes to (usually) the leader, sometimes to a random node, and sometimes reads. */
  private clientAction(): void {
    if (this.healed) {
      this.checkMarker();
      return;
    }
    const alive = this.aliveNodes();
    if (alive.length === 0) return;
    // Clients talk to whichever node they believe leads, stale leaders included.
    const leaders = alive.filter((n) => n.raft.status().role === 'leader');
    const target =
      leaders.length > 0 && this.rng.chance(0.85) ? this.rng.pick(leaders) : this.rng.pick(alive);
    if (this.rng.chance(0.3)) {
      this.read(target);
      return;
    }
    const count = this.rng.between(1, 3);
    for (let i = 0; i < count; i++) this.propose(target, `p${++this.proposalSeq}`);
    target.drive();
  }

  private propose(node: SimNode, text: string): { index: number; term: number } | null {
    const data = new TextEncoder().encode(text);
    const result = node.raft.propose(data);
    if (!result.ok) return null;
    node.proposals.set(result.index, {
      key: entryKey({ index: 0, term: 0, type: 0, data }),
      term: result.term,
    });
    return result;
  }

  private read(node: SimNode): void {
    const ctx = ++this.readSeq;
    if (node.raft.readIndex(ctx).ok) node.pendingReads.set(ctx, this.checker.maxAckedIndex);
    node.drive();
  }

  // --- faults ----------------------------------------------------------------------------------

  private scheduleFaults(): void {
    const fault = () => {
      if (this.healed) return;
      this.injectFault();
      this.queue.schedule(this.rng.between(10, 150), fault);
    };
    this.queue.schedule(this.rng.between(20, 150), fault);
  }

  private injectFault(): void {
    const actions: [number, () => boolean][] = [
      [3, () => this.crashNode()],
      [2, () => this.crashLeader()],
      [3, () => this.bounceNode()],
      [3, () => this.restartNode()],
      [2, () => this.partitionRandomly()],
      [1, () => this.cutOneWay()],
      [2, () => this.isolateLeader()],
      [3, () => this.healNetwork()],
      [1, () => this.changeWeather()],
      [2, () => this.addLearner()],
      [3, () => this.promoteLearner()],
      [2, () => this.removeMember()],
      [2, () => this.transferLeadership()],
      [2, () => this.forgetLeader()],
    ];
    const total = actions.reduce((sum, [weight]) => sum + weight, 0);
    let roll = this.rng.int(total);
    for (const [weight, action] of actions) {
      roll -= weight;
      if (roll < 0) {
        if (action()) this.faults++;
        return;
      }
    }
  }

  private crashNode(): boolean {
    const alive = this.aliveNodes();
    if (alive.length === 0) return false;
    const node = this.rng.pick(alive);
    node.crash();
    this.trace(`FAULT crash ${node.id}`);
    return true;
  }

  private crashLeader(): boolean {
    const leader = this.currentLeader();
    if (leader === null) return false;
    leader.crash();
    this.trace(`FAULT crash leader ${leader.id}`);
    this.queue.schedule(this.rng.between(1, 30), () => this.survivorsForget(leader.id));
    return true;
  }

  /**
   * As the driver does once both links to a dead leader are closed and redialing is refused, most
   * survivors that followed it forget it at about the same moment and campaign on short timeouts:
   * the case where two of them may start together and split the vote.
   */
  private survivorsForget(deadLeader: NodeId): void {
    if (this.healed) return;
    const followers = this.aliveNodes().filter(
      (node) => node.raft.status().leader === deadLeader && this.rng.chance(0.8),
    );
    if (followers.length === 0) return;
    for (const node of followers) {
      node.raft.forgetLeader();
      node.drive();
    }
    this.trace(`survivors forget leader ${deadLeader}: ${followers.map((n) => n.id).join(',')}`);
    this.count('survivors forget a crashed leader');
  }

  /** Crashes a node and restarts it a moment later (a process restart rather than an outage). */
  private bounceNode(): boolean {
    const alive = this.aliveNodes();
    if (alive.length === 0) return false;
    const node = this.rng.pick(alive);
    node.crash();
    this.trace(`FAULT bounce ${node.id}`);
    this.queue.schedule(this.rng.between(1, 50), () => {
      if (node.alive || this.healed) return;
      this.trace(`restart ${node.id}`);
      node.start();
    });
    return true;
  }

  /** Crashes `id` within a few ms (inside its disk's sync window) and restarts it shortly after. */
  private bounceSoon(id: NodeId): void {
    const node = this.nodes.get(id)!;
    this.queue.schedule(this.rng.between(0, 3), () => {
      if (!node.alive || this.healed) return;
      this.faults++;
      node.crash();
      this.trace(`FAULT crash ${id} right after it voted`);
      this.queue.schedule(this.rng.between(5, 40), () => {
        if (node.alive || this.healed) return;
        this.trace(`restart ${id}`);
        node.start();
      });
    });
  }

  private restartNode(): boolean {
    const dead = [...this.nodes.values()].filter((n) => !n.alive);
    if (dead.length === 0) return false;
    const node = this.rng.pick(dead);
    this.trace(`FAULT restart ${node.id}`);
    node.start();
    return true;
  }

  private partitionRandomly(): boolean {
    const ids = [...this.nodes.keys()];
    const side = new Set(ids.filter(() => this.rng.chance(0.5)));
    for (const a of ids)
      for (const b of ids) if (a !== b && side.has(a) !== side.has(b)) this.blocked.add(`${a}>${b}`);
    this.trace(`FAULT partition {${[...side].join(',')}} | {${ids.filter((id) => !side.has(id)).join(',')}}`);
    return true;
  }

  private cutOneWay(): boolean {
    const ids = [...this.nodes.keys()];
    if (ids.length < 2) return false;
    const from = this.rng.pick(ids);
    const to = this.rng.pick(ids.filter((id) => id !== from));
    this.blocked.add(`${from}>${to}`);
    this.trace(`FAULT cut ${from}->${to}`);
    return true;
  }

  private isolateLeader(): boolean {
    const leader = this.currentLeader();
    if (leader === null) return false;
    for (const id of this.nodes.keys()) {
      if (id === leader.id) continue;
      this.blocked.add(`${leader.id}>${id}`);
      this.blocked.add(`${id}>${leader.id}`);
    }
    this.trace(`FAULT isolate leader ${leader.id}`);
    return true;
  }

  private healNetwork(): boolean {
    this.blocked.clear();
    this.trace('FAULT heal network');
    return true;
  }

  private changeWeather(): boolean {
    this.weather = this.randomWeather();
    this.trace(`FAULT weather drop=${this.weather.dropRate} dup=${this.weather.duplicateRate}`);
    return true;
  }

  /**
   * Some nodes give up on their leader, as the driver does when the leader's link drops and cannot
   * be re-established. Here the leader may well be alive: the input must stay safe regardless.
   */
  private forgetLeader(): boolean {
    const chosen = this.aliveNodes().filter(() => this.rng.chance(0.5));
    if (chosen.length === 0) return false;
    for (const node of chosen) {
      node.raft.forgetLeader();
      node.drive();
    }
    this.trace(`FAULT forget leader on ${chosen.map((n) => n.id).join(',')}`);
    return true;
  }

  private addLearner(): boolean {
    const leader = this.currentLeader();
    if (leader === null || this.nodes.size >= 8) return false;
    const id = `n${this.nextNodeNumber}`;
    const result = leader.raft.proposeConfChange({ type: ConfChangeType.AddLearner, node: id });
    if (!result.ok) return false;
    this.nextNodeNumber++;
    this.trace(`FAULT add learner ${id} at ${result.index}`);
    this.startNewNode(id);
    leader.drive();
    this.promoteWhenCaughtUp(id, 20);
    return true;
  }

  /** Retries promoting `id` for a while: a learner is promoted only once it has caught up. */
  private promoteWhenCaughtUp(id: NodeId, attempts: number): void {
    this.queue.schedule(this.rng.between(30, 100), () => {
      if (this.healed || attempts === 0) return;
      const leader = this.currentLeader();
      const isLearner = leader?.raft.status().conf.learners.includes(id) === true;
      if (leader !== null && isLearner && this.promote(leader, id)) return;
      this.promoteWhenCaughtUp(id, attempts - 1);
    });
  }

  private promoteLearner(): boolean {
    const leader = this.currentLeader();
    const learners = leader?.raft.status().conf.learners ?? [];
    if (leader === null || learners.length === 0) return false;
    return this.promote(leader, this.rng.pick(learners));
  }

  private promote(leader: SimNode, id: NodeId): boolean {
    const result = leader.raft.proposeConfChange({ type: ConfChangeType.PromoteLearner, node: id });
    if (!result.ok) {
      this.trace(`promote ${id} refused: ${result.reason}`);
      return false;
    }
    this.trace(`FAULT promote ${id} at ${result.index}`);
    leader.drive();
    return true;
  }

  private removeMember(): boolean {
    const leader = this.currentLeader();
    if (leader === null) return false;
    const { voters, learners } = leader.raft.status().conf;
    const candidates = voters.length >= 2 ? [...voters, ...learners] : learners;
    if (candidates.length === 0) return false;
    const id = this.rng.pick(candidates);
    const result = leader.raft.proposeConfChange({ type: ConfChangeType.RemoveNode, node: id });
    if (!result.ok) return false;
    if (id === leader.id) this.count('leader removes itself');
    this.trace(`FAULT remove ${id} at ${result.index}`);
    leader.drive();
    return true;
  }

  private transferLeadership(): boolean {
    const leader = this.currentLeader();
    if (leader === null) return false;
    const others = leader.raft.status().conf.voters.filter((id) => id !== leader.id);
    if (others.length === 0) return false;
    const to = this.rng.pick(others);
    if (!leader.raft.transferLeadership(to).ok) return false;
    this.trace(`FAULT transfer leadership ${leader.id} -> ${to}`);
    leader.drive();
    return true;
  }

  // --- healing and liveness --------------------------------------------------------------------

  private heal(): void {
    this.healed = true;
    this.blocked.clear();
    this.weather = { dropRate: 0, duplicateRate: 0, delayMs: [1, 5], longDelayRate: 0 };
    for (const node of this.nodes.values()) if (!node.alive) node.start();
    this.trace('HEAL: network healed, every node running, faults stopped');
  }

  /**
   * Proposes the marker when none is live, and notes when it is applied on every member along with
   * everything the leader has committed (clients stop proposing once the cluster is healed).
   */
  private checkMarker(): void {
    const leader = this.currentLeader();
    if (leader === null) return;
    const marker = this.marker;
    const members = this.members(leader);
    if (marker !== null && this.checker.canonicalKey.has(marker.index)) {
      const applied = this.checker.canonicalKey.get(marker.index) === marker.key;
      const target = Math.max(marker.index, leader.raft.status().commit);
      if (applied && members.every((id) => this.nodes.get(id)!.smApplied >= target)) {
        this.livenessMet = true;
        this.trace(`LIVE: marker ${marker.key} at ${marker.index} applied on ${members.join(',')}`);
        return;
      }
      if (!applied) this.marker = null;
    }
    if (this.marker === null || leader.raft.status().term !== this.marker.term) {
      const key = `marker${this.proposalSeq++}`;
      const result = this.propose(leader, key);
      if (result !== null)
        this.marker = { key: `0:${key}`, index: result.index, term: result.term, node: leader.id };
      leader.drive();
    }
  }

  // --- trace -----------------------------------------------------------------------------------

  private count(event: string): void {
    this.coverage.set(event, (this.coverage.get(event) ?? 0) + 1);
  }

  private trace(line: string): void {
    if (line.startsWith('FAULT ')) this.count(line.split(' ').slice(0, 2).join(' '));
    this.traceRing.push(`${String(this.queue.now).padStart(7)}ms ${line}`);
    const max = this.options.traceLines ?? 60;
    if (this.traceRing.length > max * 2) this.traceRing.splice(0, this.traceRing.length - max);
  }

  private traceMessage(message: Message): void {
    // Heartbeats are the bulk of traffic and rarely explain a failure; keep the trace readable.
    if (message.type === 'heartbeat' || message.type === 'heartbeatResp') return;
    this.trace(describeMessage(message));
  }
}
