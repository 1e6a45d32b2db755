/**
 * A hand-driven cluster of Raft cores for unit and scenario tests: messages wait in a network
 * queue until the test delivers them, time moves only on `tick`, and storage is a plain record
 * that a "crash" keeps only the durable part of. Every delivery is written to a transcript so
 * tests can compare exact message sequences.
 *
 * Persistence is immediate by default (each Ready is durable as soon as it is taken); with
 * `manualPersist` a node's Readys queue up until the test calls `persist(id)`, which models a slow
 * disk and lets tests observe what the core does while writes are in flight.
 */
import type { RecoveredState } from '../storage/types.js';
import { DEFAULT_LIMITS, type RaftLimits } from './config.js';
import { describeMessage, type Message } from './messages.js';
import { RaftNode } from './node.js';
import type { Ready, SnapshotChunkToPersist } from './ready.js';
import type { ConfChange, Entry, HardState, NodeId, SnapshotMeta } from './types.js';

/** What a node has on "disk". */
export interface TestDisk {
  hardState: HardState;
  snapshot: SnapshotMeta | null;
  snapshotData: Uint8Array;
  entries: Entry[];
  /** Snapshot being received by InstallSnapshot (chunks appended in order). */
  partialSnapshot: Uint8Array[];
}

export interface TestNode {
  id: NodeId;
  raft: RaftNode;
  disk: TestDisk;
  /** Entries handed to the application, in order (after any restored snapshot). */
  applied: Entry[];
  /** Index of the snapshot the state machine was last restored from (0: none). */
  restoredFrom: number;
  readStates: { index: number; ctx: number }[];
  /** Readys taken but not yet durable (manualPersist only). */
  unpersisted: Ready[];
  manualPersist: boolean;
  crashed: boolean;
}

export interface TestClusterOptions {
  limits?: Partial<RaftLimits>;
  preVote?: boolean;
  checkQuorum?: boolean;
  /** Seed for the randomized election timeouts. */
  seed?: number;
}

const ELECTION_TYPES: ReadonlySet<string> = new Set(['preVote', 'preVoteResp', 'vote', 'voteResp']);

const emptyDisk = (): TestDisk => ({
  hardState: { term: 0, vote: null, commit: 0 },
  snapshot: null,
  snapshotData: new Uint8Array(0),
  entries: [],
  partialSnapshot: [],
});

export const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
export const text = (data: Uint8Array): string => new TextDecoder().decode(data);

export class TestCluster {
  readonly nodes = new Map<NodeId, TestNode>();
  /** Messages sent and not yet delivered, in send order. */
  network: Message[] = [];
  transcript: string[] = [];
  /** Directed links that drop everything: `${from}->${to}`. */
  private readonly cut = new Set<string>();
  private randomState: number;

  constructor(
    readonly initialVoters: NodeId[],
    private readonly options: TestClusterOptions = {},
  ) {
    this.randomState = options.seed ?? 1;
    for (const id of initialVoters) this.addNode(id);
  }

  /** Starts a node with an empty disk (a new member must be added through a membership change). */
  addNode(id: NodeId): TestNode {
    const node: TestNode = {
      id,
      raft: this.makeRaft(id, emptyDisk()),
      disk: emptyDisk(),
      applied: [],
      restoredFrom: 0,
      readStates: [],
      unpersisted: [],
      manualPersist: false,
      crashed: false,
    };
    this.nodes.set(id, node);
    return node;
  }

  private makeRaft(id: NodeId, disk: TestDisk): RaftNode {
    const recovered: RecoveredState = {
      hardState: { ...disk.hardState },
      snapshot: disk.snapshot,
      entries: [...disk.entries],
    };
    return new RaftNode({
      id,
      group: 1,
      initialVoters: this.initialVoters,
      recovered,
      snapshotSizeBytes: disk.snapshotData.length,
      randomInt: (bound) => this.nextRandom(bound),
      limits: this.options.limits,
      preVote: this.options.preVote,
      checkQuorum: this.options.checkQuorum,
    });
  }

  private nextRandom(bound: number): number {
    // xorshift32: enough for election jitter in hand-driven tests.
    let x = this.randomState;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.randomState = x >>> 0;
    return this.randomState % bound;
  }

  node(id: NodeId): TestNode {
    const node = this.nodes.get(id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  raft(id: NodeId): RaftNode {
    return this.node(id).raft;
  }

  // --- driving ---------------------------------------------------------------------------------

  /** Processes every Ready of every live node until none has one. */
  processReadys(): void {
    let progressed = true;
    while (progressed) {
      progressed = false;
      for (const node of this.nodes.values()) {
        while (!node.crashed && node.raft.hasReady()) {
          this.handleReady(node, node.raft.ready());
          progressed = true;
        }
      }
    }
  }

  private handleReady(node: TestNode, rd: Ready): void {
    this.network.push(...rd.messages.map((m) => this.fillSnapshotChunk(m)));
    if (rd.restoreSnapshot !== null) {
      node.restoredFrom = rd.restoreSnapshot.index;
      node.applied = [];
    }
    node.applied.push(...rd.committedEntries);
    node.readStates.push(...rd.readStates);
    if (node.manualPersist) node.unpersisted.push(rd);
    else this.makeDurable(node, rd);
  }

  /** The driver's job: fill a snapshot chunk with bytes read from the sender's snapshot. */
  private fillSnapshotChunk(m: Message): Message {
    if (m.type !== 'snapshot') return m;
    const data = this.node(m.from).disk.snapshotData.subarray(m.offset, m.offset + m.length);
    return { ...m, data };
  }

  private makeDurable(node: TestNode, rd: Ready): void {
    const disk = node.disk;
    if (rd.hardState !== null) disk.hardState = { ...rd.hardState };
    const first = rd.entries[0];
    if (first !== undefined) {
      disk.entries = disk.entries.filter((e) => e.index < first.index).concat(rd.entries);
    }
    for (const chunk of rd.snapshotChunks) this.persistChunk(disk, chunk);
    this.network.push(...rd.messagesAfterPersist);
    node.raft.persisted(rd.id);
  }

  private persistChunk(disk: TestDisk, chunk: SnapshotChunkToPersist): void {
    if (chunk.offset === 0) disk.partialSnapshot = [];
    disk.partialSnapshot.push(chunk.data);
    if (!chunk.done) return;
    disk.snapshotData = Buffer.concat(disk.partialSnapshot);
    disk.partialSnapshot = [];
    disk.entries = chunk.resetLog ? [] : disk.entries.filter((e) => e.index > chunk.meta.index);
    disk.snapshot = chunk.meta;
  }

  /** Makes `id`'s queued Readys durable (manualPersist mode), oldest first; `count` limits how many. */
  persist(id: NodeId, count = Number.POSITIVE_INFINITY): void {
    const node = this.node(id);
    while (count-- > 0 && node.unpersisted.length > 0) this.makeDurable(node, node.unpersisted.shift()!);
  }

  /** Delivers queued messages matching `filter` (all by default), once each; returns how many. */
  deliver(filter: (m: Message) => boolean = () => true): number {
    const batch = this.network.filter(filter);
    this.network = this.network.filter((m) => !filter(m));
    for (const m of batch) this.deliverOne(m);
    this.processReadys();
    return batch.length;
  }

  private deliverOne(m: Message): void {
    const to = this.nodes.get(m.to);
    if (to === undefined || to.crashed || this.cut.has(`${m.from}->${m.to}`)) {
      this.transcript.push(`dropped ${describeMessage(m)}`);
      return;
    }
    this.transcript.push(describeMessage(m));
    const result = to.raft.step(m);
    if (!result.ok) throw new Error(`step rejected ${describeMessage(m)}: ${result.reason}`);
  }

  /**
   * Delivers messages matching `filter` round after round (answers included) until none is left;
   * the others stay queued. Returns how many were delivered.
   */
  settle(filter: (m: Message) => boolean = () => true, roundsMax = 200): number {
    this.processReadys();
    let delivered = 0;
    for (let round = 0; round < roundsMax; round++) {
      const n = this.deliver(filter);
      if (n === 0) return delivered;
      delivered += n;
    }
    throw new Error(`messages still flowing after ${roundsMax} rounds`);
  }

  /**
   * Makes `id` campaign, delivering only election traffic, until it leads; a first attempt may only
   * teach it the current term. Returns the number of attempts.
   */
  campaignUntilLeader(id: NodeId, attemptsMax = 3): number {
    const electionTraffic = (m: Message) => ELECTION_TYPES.has(m.type);
    for (let attempt = 1; attempt <= attemptsMax; attempt++) {
      this.raft(id).campaign();
      this.settle(electionTraffic);
      if (this.raft(id).status().role === 'leader') return attempt;
    }
    throw new Error(`${id} did not become leader in ${attemptsMax} attempts`);
  }

  /** Discards queued messages matching `filter`. */
  drop(filter: (m: Message) => boolean): void {
    this.network = this.network.filter((m) => !filter(m));
  }

  /** Delivers messages until the network is empty (bounded, in case a test livelocks). */
  stabilize(roundsMax = 200): void {
    this.processReadys();
    for (let round = 0; round < roundsMax && this.network.length > 0; round++) this.deliver();
    if (this.network.length > 0) throw new Error(`network not quiet after ${roundsMax} rounds`);
  }

  tick(id: NodeId, times = 1): void {
    for (let i = 0; i < times; i++) this.raft(id).tick();
    this.processReadys();
  }

  /**
   * A heartbeat round from `leader`, delivered: how followers learn a commit index that no later
   * append has carried (the leader sends no message for a commit alone).
   */
  heartbeat(leader: NodeId): void {
    this.tick(leader, this.options.limits?.heartbeatIntervalTicks ?? DEFAULT_LIMITS.heartbeatIntervalTicks);
    this.stabilize();
  }

  tickAll(times = 1): void {
    for (let i = 0; i < times; i++) {
      for (const node of this.nodes.values()) if (!node.crashed) node.raft.tick();
    }
    this.processReadys();
  }

  /** Makes `id` campaign and runs the election to the end. */
  elect(id: NodeId): void {
    this.raft(id).campaign();
    this.stabilize();
    if (this.raft(id).status().role !== 'leader') throw new Error(`${id} did not become leader`);
  }

  propose(id: NodeId, data: string): ReturnType<RaftNode['propose']> {
    const result = this.raft(id).propose(bytes(data));
    this.processReadys();
    return result;
  }

  proposeConfChange(id: NodeId, change: ConfChange): ReturnType<RaftNode['propose']> {
    const result = this.raft(id).proposeConfChange(change);
    this.processReadys();
    return result;
  }

  // --- faults ----------------------------------------------------------------------------------

  /** Cuts every link between the groups (each group can still talk inside itself). */
  partition(...groups: NodeId[][]): void {
    for (const a of groups) {
      for (const b of groups) {
        if (a === b) continue;
        for (const from of a) for (const to of b) this.cut.add(`${from}->${to}`);
      }
    }
  }

  /** Cuts only the direction from → to. */
  cutLink(from: NodeId, to: NodeId): void {
    this.cut.add(`${from}->${to}`);
  }

  isolate(id: NodeId): void {
    const others = [...this.nodes.keys()].filter((other) => other !== id);
    this.partition([id], others);
  }

  heal(): void {
    this.cut.clear();
  }

  /** Stops `id`, losing everything not yet durable; its undelivered messages stay in flight. */
  crash(id: NodeId): void {
    const node = this.node(id);
    node.crashed = true;
    node.unpersisted = [];
  }

  /** Restarts `id` from its durable state; the state machine starts empty. */
  restart(id: NodeId): void {
    const node = this.node(id);
    node.crashed = false;
    node.applied = [];
    node.restoredFrom = 0;
    node.readStates = [];
    node.disk.partialSnapshot = [];
    node.raft = this.makeRaft(id, node.disk);
    this.processReadys();
  }

  /**
   * Takes a snapshot of `id`'s state machine at its applied index: the data is the applied
   * entries' text, joined. Compacts the core's log.
   */
  snapshot(id: NodeId, padBytes = 0): SnapshotMeta {
    const node = this.node(id);
    const status = node.raft.status();
    const meta = node.raft.snapshotMetaAt(status.applied);
    const content = `${node.restoredFrom}|${node.applied.map((e) => text(e.data)).join(',')}`;
    node.disk.snapshotData = Buffer.concat([bytes(content), new Uint8Array(padBytes)]);
    node.disk.snapshot = meta;
    node.disk.entries = node.disk.entries.filter((e) => e.index > meta.index);
    node.raft.snapshotTaken(meta, node.disk.snapshotData.length);
    return meta;
  }

  // --- observing -------------------------------------------------------------------------------

  /** Text of the normal, non-empty entries `id` has applied. */
  appliedData(id: NodeId): string[] {
    return this.node(id)
      .applied.filter((e) => e.type === 0 && e.data.length > 0)
      .map((e) => text(e.data));
  }

  /** `index/term` of every entry in `id`'s in-memory log. */
  logTerms(id: NodeId): string[] {
    const view = this.raft(id).logView();
    return view.entries(view.firstIndex(), view.lastIndex() + 1).map((e) => `${e.index}/${e.term}`);
  }

  leaders(): NodeId[] {
    return [...this.nodes.values()]
      .filter((n) => !n.crashed && n.raft.status().role === 'leader')
      .map((n) => n.id);
  }

  /** Returns the transcript collected since the last call, and clears it. */
  takeTranscript(): string[] {
    const lines = this.transcript;
    this.transcript = [];
    return lines;
  }
}
