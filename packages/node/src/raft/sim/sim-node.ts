/**
 * One simulated broker node: a Raft core, its storage (behind the RaftStorage contract), and a
 * toy state machine, tied together by a driver that does what a production driver must do with
 * each Ready: send, persist (pipelined: later Readys are taken while earlier writes are in flight),
 * send the after-persist messages and report `persisted` in order, restore, apply.
 *
 * The state machine is a hash chain over applied entries, so comparing hashes per index compares
 * whole applied prefixes. Its snapshot is that hash plus filler bytes derived from it, so a
 * mis-assembled InstallSnapshot is detected on restore.
 */
import type { SnapshotReader, SnapshotWriter } from '../../storage/types.js';
import type { RaftLimits } from '../config.js';
import type { Message } from '../messages.js';
import { RaftNode } from '../node.js';
import type { Ready } from '../ready.js';
import type { Entry, NodeId, SnapshotMeta } from '../types.js';
import { type Checker, entryKey } from './checker.js';
import type { SimStorage } from './mem-storage.js';
import type { Prng } from './prng.js';

export interface SimNodeEnv {
  rng: Prng;
  checker: Checker;
  initialVoters: NodeId[];
  limits: Partial<RaftLimits>;
  /** Take a local snapshot every this many applied entries. */
  snapshotEveryEntries: number;
  /** Largest filler added to snapshot data (to make transfers span several chunks). */
  snapshotFillerBytesMax: number;
  send(message: Message): void;
  trace(line: string): void;
  /** Counts an interesting event, to show what a run exercised. */
  count(event: string): void;
}

interface InFlightReady {
  rd: Ready;
  remaining: number;
}

type AppTask = { kind: 'restore'; meta: SnapshotMeta } | { kind: 'apply'; entries: Entry[] };

const SNAPSHOT_HEADER_BYTES = 12;
/** One input yields a handful of Readys; thousands in a row mean the core never settles. */
const READYS_PER_DRIVE_MAX = 10_000;

export class SimNode {
  raft!: RaftNode;
  alive = false;
  /** Index and hash of the state machine. */
  smApplied = 0;
  smHash = 0;
  /** Proposals this node accepted as leader and has not yet seen applied: index → key and term. */
  readonly proposals = new Map<number, { key: string; term: number }>();
  /** ReadIndex requests in flight: ctx → index of the newest write acknowledged before the request. */
  readonly pendingReads = new Map<number, number>();
  private storage!: SimStorage;
  private inFlight: InFlightReady[] = [];
  private incomingWriter: SnapshotWriter | null = null;
  private readonly readers = new Map<NodeId, SnapshotReader>();
  private appTasks: AppTask[] = [];
  private restoring = false;
  private localSnapshotInFlight = false;
  private lastSnapshotIndex = 0;
  private lastCommit = 0;
  private lastLeaderTerm = 0;
  /** Bumped by every start, so callbacks of an earlier life are recognised and ignored. */
  private incarnation = 0;

  constructor(
    readonly id: NodeId,
    /** Opens this node's storage on its durable medium (which outlives crashes). */
    private readonly openStorage: () => SimStorage,
    private readonly env: SimNodeEnv,
  ) {}

  start(): void {
    this.storage = this.openStorage();
    const recovered = this.storage.recover();
    const reader = this.storage.openSnapshot();
    this.raft = new RaftNode({
      id: this.id,
      group: 1,
      initialVoters: this.env.initialVoters,
      recovered,
      snapshotSizeBytes: reader?.size ?? 0,
      randomInt: (bound) => this.env.rng.int(bound),
      limits: this.env.limits,
    });
    this.alive = true;
    this.incarnation++;
    this.smApplied = 0;
    this.smHash = 0;
    this.lastSnapshotIndex = recovered.snapshot?.index ?? 0;
    const status = this.raft.status();
    // A hard state may outlive the entries written with it (both were in a write that never
    // completed); a commit index beyond the recovered log means nothing.
    const lastIndex = recovered.entries.at(-1)?.index ?? recovered.snapshot?.index ?? 0;
    const recoveredCommit = Math.max(
      Math.min(recovered.hardState.commit, lastIndex),
      recovered.snapshot?.index ?? 0,
    );
    if (status.commit < recoveredCommit) {
      this.env.checker.fail(
        `commit monotonicity: ${this.id} restarted at commit ${status.commit}, storage recovered commit ${recoveredCommit}`,
      );
    }
    this.lastCommit = status.commit;
    this.lastLeaderTerm = 0;
    this.drive();
  }

  crash(): void {
    this.storage.crash();
    this.alive = false;
    this.inFlight = [];
    this.incomingWriter = null;
    this.readers.clear();
    this.appTasks = [];
    this.restoring = false;
    this.localSnapshotInFlight = false;
    this.proposals.clear();
    this.pendingReads.clear();
  }

  tick(): void {
    this.raft.tick();
    this.drive();
  }

  deliver(message: Message): void {
    const result = this.raft.step(message);
    if (!result.ok) this.env.checker.fail(`${this.id} rejected a well-formed message: ${result.reason}`);
    this.drive();
  }

  /** Runs Readys until the core has nothing more, then checks commit progress. */
  drive(): void {
    for (let n = 0; this.alive && this.raft.hasReady(); n++) {
      if (n === READYS_PER_DRIVE_MAX) {
        this.env.checker.fail(`${this.id}: still has a Ready after ${n} in a row (livelock)`);
        return;
      }
      this.handleReady(this.raft.ready());
    }
    if (this.alive) this.checkCommit();
  }

  private checkCommit(): void {
    const commit = this.raft.status().commit;
    if (commit < this.lastCommit) {
      this.env.checker.fail(
        `commit monotonicity: ${this.id} commit went from ${this.lastCommit} to ${commit}`,
      );
    } else if (commit > this.lastCommit) {
      this.env.checker.onCommit(this.id, this.lastCommit, commit, this.raft.logView());
    }
    this.lastCommit = commit;
  }

  private handleReady(rd: Ready): void {
    if (rd.softState !== null) this.onSoftState(rd);
    for (const message of rd.messages) this.sendNow(message);
    this.persist(rd);
    // A snapshot covers everything queued before it, so a restore replaces the queue.
    if (rd.restoreSnapshot !== null) this.appTasks = [{ kind: 'restore', meta: rd.restoreSnapshot }];
    if (rd.committedEntries.length > 0) this.appTasks.push({ kind: 'apply', entries: rd.committedEntries });
    for (const state of rd.readStates) {
      const required = this.pendingReads.get(state.ctx);
      if (required === undefined) continue;
      this.pendingReads.delete(state.ctx);
      this.env.count('read served');
      this.env.checker.onReadState(this.id, state.index, required);
    }
    this.runAppTasks();
  }

  private onSoftState(rd: Ready): void {
    const soft = rd.softState!;
    this.env.trace(`${this.id} is ${soft.role} t${soft.term} leader=${soft.leader ?? '-'}`);
    if (soft.role === 'leader' && soft.term !== this.lastLeaderTerm) {
      this.env.count('leader elected');
      this.lastLeaderTerm = soft.term;
      this.env.checker.onLeader(this.id, soft.term, this.raft.logView());
    }
    if (soft.role !== 'leader') this.pendingReads.clear();
  }

  private sendNow(message: Message): void {
    if (message.type !== 'snapshot') {
      this.env.send(message);
      return;
    }
    let reader = this.readers.get(message.to);
    const matches = (r: SnapshotReader | null | undefined) =>
      r != null && r.meta.index === message.meta.index && r.meta.term === message.meta.term;
    if (!matches(reader)) {
      reader = this.storage.openSnapshot() ?? undefined;
      if (!matches(reader)) {
        this.raft.reportSnapshotFailed(message.to);
        return;
      }
      this.readers.set(message.to, reader!);
    }
    const incarnation = this.incarnation;
    reader!.read(message.offset, message.length, (err, chunk) => {
      if (err !== null || chunk === undefined || !this.alive || this.incarnation !== incarnation) return;
      this.env.send({ ...message, data: chunk });
    });
  }

  // --- persistence -----------------------------------------------------------------------------

  private persist(rd: Ready): void {
    const entry: InFlightReady = { rd, remaining: 0 };
    this.inFlight.push(entry);
    const done = () => {
      entry.remaining--;
      this.completeReadys();
      this.drive();
    };
    if (rd.entries.length > 0) {
      const first = rd.entries[0]!;
      this.env.checker.onPersistEntries(this.id, rd.entries, this.raft.logView().term(first.index - 1));
    }
    if (rd.hardState !== null || rd.entries.length > 0) {
      entry.remaining++;
      const batch = {
        ...(rd.hardState ? { hardState: rd.hardState } : {}),
        ...(rd.entries.length > 0 ? { entries: rd.entries } : {}),
      };
      this.storage.write(batch, done);
    }
    for (const chunk of rd.snapshotChunks) {
      if (chunk.offset === 0) {
        this.env.count(chunk.resetLog ? 'install snapshot (replace log)' : 'install snapshot (keep log)');
        this.incomingWriter?.abort();
        this.incomingWriter = this.storage.createSnapshot(chunk.meta, { resetLog: chunk.resetLog });
      }
      if (this.incomingWriter === null) {
        this.env.checker.fail(`${this.id}: snapshot chunk at ${chunk.offset} without a transfer in progress`);
        return;
      }
      this.incomingWriter.write(chunk.data);
      if (chunk.done) {
        entry.remaining++;
        this.incomingWriter.commit(done);
        this.incomingWriter = null;
      }
    }
    this.completeReadys();
  }

  /** Readys become durable in order: send what waited on them and tell the core. */
  private completeReadys(): void {
    while (this.alive && this.inFlight.length > 0 && this.inFlight[0]!.remaining === 0) {
      const { rd } = this.inFlight.shift()!;
      for (const message of rd.messagesAfterPersist) this.env.send(message);
      this.raft.persisted(rd.id);
    }
  }

  // --- state machine ---------------------------------------------------------------------------

  private runAppTasks(): void {
    while (!this.restoring && this.appTasks.length > 0) {
      const task = this.appTasks.shift()!;
      if (task.kind === 'restore') this.startRestore(task.meta);
      else for (const entry of task.entries) this.apply(entry);
    }
    this.maybeSnapshot();
  }

  private apply(entry: Entry): void {
    if (entry.index !== this.smApplied + 1) {
      this.env.checker.fail(`${this.id} applied ${entry.index} after ${this.smApplied}`);
      return;
    }
    this.smApplied = entry.index;
    this.smHash = chainHash(this.smHash, entry);
    this.env.checker.onApply(this.id, entry, this.smHash);
    const proposal = this.proposals.get(entry.index);
    if (proposal === undefined) return;
    this.proposals.delete(entry.index);
    const key = entryKey(entry);
    if (proposal.term === entry.term && proposal.key === key) {
      this.env.count('proposal acknowledged');
      this.env.checker.onAck(entry.index, key);
    } else {
      this.env.count('proposal lost');
    }
  }

  private startRestore(meta: SnapshotMeta): void {
    const reader = this.storage.openSnapshot();
    if (reader === null || reader.meta.index !== meta.index || reader.meta.term !== meta.term) {
      this.env.checker.fail(
        `${this.id}: snapshot ${meta.index}/${meta.term} to restore is not the stored one`,
      );
      return;
    }
    this.restoring = true;
    const incarnation = this.incarnation;
    reader.read(0, reader.size, (err, data) => {
      if (!this.alive || this.incarnation !== incarnation) return;
      this.restoring = false;
      if (err !== null || data === undefined) {
        this.env.checker.fail(`${this.id}: reading snapshot ${meta.index} failed`);
        return;
      }
      this.restoreFrom(meta, data);
      this.runAppTasks();
    });
  }

  private restoreFrom(meta: SnapshotMeta, data: Uint8Array): void {
    const decoded = decodeSnapshot(data);
    if (decoded === null || decoded.index !== meta.index) {
      this.env.checker.fail(`${this.id}: snapshot ${meta.index} bytes are corrupt (${data.length} bytes)`);
      return;
    }
    this.env.count('state machine restored');
    this.smApplied = decoded.index;
    this.smHash = decoded.hash;
    this.lastSnapshotIndex = Math.max(this.lastSnapshotIndex, decoded.index);
    for (const index of this.proposals.keys()) if (index <= decoded.index) this.proposals.delete(index);
    this.env.checker.onRestore(this.id, decoded.index, decoded.hash);
    this.env.trace(`${this.id} restored snapshot ${meta.index}/${meta.term}`);
  }

  private maybeSnapshot(): void {
    if (this.localSnapshotInFlight || this.restoring || this.appTasks.length > 0) return;
    if (this.smApplied - this.lastSnapshotIndex < this.env.snapshotEveryEntries) return;
    const meta = this.raft.snapshotMetaAt(this.smApplied);
    const data = encodeSnapshot(
      meta.index,
      this.smHash,
      this.env.rng.int(this.env.snapshotFillerBytesMax + 1),
    );
    const writer = this.storage.createSnapshot(meta);
    writer.write(data);
    this.localSnapshotInFlight = true;
    this.lastSnapshotIndex = meta.index;
    const raft = this.raft;
    writer.commit(() => {
      if (!this.alive || this.raft !== raft) return;
      this.localSnapshotInFlight = false;
      raft.snapshotTaken(meta, data.length);
      this.env.count('local snapshot');
      this.env.trace(`${this.id} took snapshot ${meta.index}/${meta.term}`);
      this.drive();
    });
  }
}

/** FNV-1a over the previous hash, the entry's index, term, type and data. */
export function chainHash(previous: number, entry: Entry): number {
  let h = (previous ^ 0x811c9dc5) >>> 0;
  const mix = (byte: number) => {
    h = Math.imul(h ^ (byte & 0xff), 0x01000193) >>> 0;
  };
  for (const word of [entry.index, entry.term, entry.type]) {
    mix(word);
    mix(word >>> 8);
    mix(word >>> 16);
    mix(word >>> 24);
  }
  for (const byte of entry.data) mix(byte);
  return h;
}

function encodeSnapshot(index: number, hash: number, fillerBytes: number): Uint8Array {
  const data = new Uint8Array(SNAPSHOT_HEADER_BYTES + fillerBytes);
  const view = new DataView(data.buffer);
  view.setUint32(0, index);
  view.setUint32(4, hash);
  view.setUint32(8, fillerBytes);
  for (let i = 0; i < fillerBytes; i++) data[SNAPSHOT_HEADER_BYTES + i] = (hash + i * 31) & 0xff;
  return data;
}

function decodeSnapshot(data: Uint8Array): { index: number; hash: number } | null {
  if (data.length < SNAPSHOT_HEADER_BYTES) return null;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const index = view.getUint32(0);
  const hash = view.getUint32(4);
  const fillerBytes = view.getUint32(8);
  if (data.length !== SNAPSHOT_HEADER_BYTES + fillerBytes) return null;
  for (let i = 0; i < fillerBytes; i++) {
    if (data[SNAPSHOT_HEADER_BYTES + i] !== ((hash + i * 31) & 0xff)) return null;
  }
  return { index, hash };
}
