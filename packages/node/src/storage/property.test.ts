/**
 * Property tests: random sequences of appends (with conflict truncations), hard state changes,
 * local snapshots, installed snapshots (log reset), compactions, clean restarts and crashes give
 * exactly the log a simple in-memory model gives.
 *
 * After a clean restart the recovered state must equal the model. After a crash (MemDisk, with
 * and without torn writes) it must equal the model as of *some* point between the last
 * acknowledged operation and the last issued one: nothing acknowledged is lost, nothing is
 * invented, and the log is one the operations could have produced. The test then carries on from
 * the recovered state. The NodeDisk run does the same against real files (clean restarts only).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import type { HardState, NodeId } from '../raft/types.js';
import { FileStorage } from './file-storage.js';
import { NodeDisk } from './node-disk.js';
import { describeLog, entryIsIntact, MemWorld, makeEntries, snapshotBody, snapshotMeta } from './test-kit.js';
import type { RecoveredState } from './types.js';

/** Soak with e.g. `STORAGE_PROPERTY_RUNS=20000 npx vitest run packages/node/src/storage/property.test.ts`. */
const MEM_RUNS = Number(process.env.STORAGE_PROPERTY_RUNS ?? 200);

type Command =
  | { kind: 'append'; back: number; count: number }
  | { kind: 'hardState'; bumpTerm: boolean; vote: NodeId | null; commitFraction: number }
  | { kind: 'settle' }
  | { kind: 'snapshot'; fraction: number; size: number; crashAfterSteps: number | null }
  | { kind: 'install'; ahead: number; size: number; crashAfterSteps: number | null }
  | { kind: 'compact' }
  | { kind: 'restart' }
  | { kind: 'crash'; afterSteps: number };

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 12,
    arbitrary: fc.record({
      kind: fc.constant('append'),
      back: fc.nat(4),
      count: fc.integer({ min: 1, max: 6 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('hardState'),
      bumpTerm: fc.boolean(),
      vote: fc.constantFrom<NodeId | null>(null, 'n1', 'n2'),
      commitFraction: fc.double({ min: 0, max: 1, noNaN: true }),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('settle') }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('snapshot'),
      fraction: fc.double({ min: 0, max: 1, noNaN: true }),
      size: fc.nat(70_000),
      crashAfterSteps: fc.option(fc.nat(12), { freq: 3 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('install'),
      ahead: fc.nat(5),
      size: fc.nat(3000),
      crashAfterSteps: fc.option(fc.nat(12), { freq: 3 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('compact') }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('restart') }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('crash'), afterSteps: fc.nat(8) }) },
);

// ---- the model ----

interface SnapshotModel {
  index: number;
  term: number;
  size: number;
}

/** The state storage should hold after some prefix of the operations. */
interface Model {
  /** Index before `terms[0]`. */
  base: number;
  /** Term of each entry from `base + 1`. */
  terms: number[];
  snapshot: SnapshotModel | null;
  hardState: HardState;
}

function cloneModel(m: Model): Model {
  return { base: m.base, terms: [...m.terms], snapshot: m.snapshot, hardState: { ...m.hardState } };
}

function lastIndexOf(m: Model): number {
  return m.base + m.terms.length;
}

/** What recovery should return for a log and a snapshot (entries after it, or none if they disagree). */
function recoveredView(terms: number[], base: number, snapshot: SnapshotModel | null): string[] {
  const snapIndex = snapshot?.index ?? 0;
  const last = base + terms.length;
  if (terms.length === 0 || last < snapIndex) return [];
  if (base < snapIndex && terms[snapIndex - base - 1] !== snapshot?.term) return [];
  const out: string[] = [];
  for (let i = Math.max(base, snapIndex) + 1; i <= last; i++) out.push(`${i}:${terms[i - base - 1]}`);
  return out;
}

// ---- the harness ----

interface World {
  open(): { storage: FileStorage; recovered: RecoveredState };
  settle(): Promise<void>;
  /** Runs up to `steps` pending disk events (MemDisk only). */
  step?(steps: number): void;
  crash?(): void;
}

/** How often each recovery repair happened over all runs: proves the generators reach them. */
const repairCounts = new Map<string, number>();

function countRepairs(storage: FileStorage): void {
  for (const repair of storage.repairs) {
    const kind = repair.split(' ').slice(0, 2).join(' ');
    repairCounts.set(kind, (repairCounts.get(kind) ?? 0) + 1);
  }
}

class Harness {
  private storage: FileStorage;
  /** states[0] is acknowledged; states[i] follows the i-th operation still pending. */
  private states: Model[];
  private pendingLabels: string[] = [];
  private completed: string[] = [];
  private errors: Error[] = [];
  private topTerm = 0;
  private opSeq = 0;
  readonly log: string[] = [];

  constructor(
    private readonly world: World,
    recovered: { storage: FileStorage; recovered: RecoveredState },
  ) {
    this.storage = recovered.storage;
    this.states = [{ base: 0, terms: [], snapshot: null, hardState: { term: 0, vote: null, commit: 0 } }];
    this.checkExact(recovered.recovered);
  }

  private get latest(): Model {
    return this.states[this.states.length - 1]!;
  }

  private issue(next: Model): (err: Error | null) => void {
    const label = `op${++this.opSeq}`;
    this.states.push(next);
    this.pendingLabels.push(label);
    return (err) => {
      if (err) this.errors.push(err);
      this.completed.push(label);
      const expected = this.pendingLabels.shift();
      if (expected !== label) throw new Error(`callback ${label} ran before ${expected}`);
      this.states.shift();
    };
  }

  async run(command: Command): Promise<void> {
    this.log.push(JSON.stringify(command));
    switch (command.kind) {
      case 'append':
        return this.append(command.back, command.count);
      case 'hardState':
        return this.hardState(command.bumpTerm, command.vote, command.commitFraction);
      case 'settle':
        return this.settle();
      case 'snapshot':
        return this.snapshot(command.fraction, command.size, command.crashAfterSteps);
      case 'install':
        return this.install(command.ahead, command.size, command.crashAfterSteps);
      case 'compact':
        await this.settle();
        this.storage.compact(this.latest.snapshot?.index ?? 0);
        return this.settle();
      case 'restart':
        return this.restart();
      case 'crash':
        return this.crash(command.afterSteps);
    }
  }

  private append(back: number, count: number): void {
    const model = cloneModel(this.latest);
    const last = lastIndexOf(model);
    const floor = Math.max(model.snapshot?.index ?? 0, model.hardState.commit, model.base);
    const cut = Math.min(back, last - floor);
    const first = last + 1 - cut;
    // A conflict comes from a newer leader: a higher term than anything in the log.
    const term = cut > 0 || model.terms.length === 0 ? ++this.topTerm : Math.max(this.topTerm, 1);
    this.topTerm = Math.max(this.topTerm, term);
    model.terms.length = first - model.base - 1;
    for (let i = 0; i < count; i++) model.terms.push(term);
    this.storage.write({ entries: makeEntries(first, count, term) }, this.issue(model));
  }

  private hardState(bumpTerm: boolean, vote: NodeId | null, commitFraction: number): void {
    const model = cloneModel(this.latest);
    const hs = model.hardState;
    const term = bumpTerm || hs.term === 0 ? Math.max(hs.term, this.topTerm) + 1 : hs.term;
    this.topTerm = Math.max(this.topTerm, term);
    const newVote = term !== hs.term ? vote : (hs.vote ?? vote);
    // Commit never goes back and never past the log; conflicts only happen above it.
    const last = lastIndexOf(model);
    const commit = Math.max(hs.commit, Math.floor(hs.commit + (last - hs.commit) * commitFraction));
    model.hardState = { term, vote: newVote, commit: Math.min(commit, Math.max(hs.commit, last)) };
    this.storage.write({ hardState: model.hardState }, this.issue(model));
  }

  private async snapshot(fraction: number, size: number, crashAfterSteps: number | null): Promise<void> {
    await this.settle();
    const model = cloneModel(this.latest);
    const from = Math.max(model.snapshot?.index ?? 0, model.base);
    const last = lastIndexOf(model);
    if (last <= from) return;
    const index = from + 1 + Math.floor((last - from - 1) * fraction);
    const term = model.terms[index - model.base - 1]!;
    model.snapshot = { index, term, size };
    await this.commitSnapshot(model, false, crashAfterSteps);
  }

  private async install(ahead: number, size: number, crashAfterSteps: number | null): Promise<void> {
    await this.settle();
    const model = cloneModel(this.latest);
    const index = Math.max(lastIndexOf(model), model.snapshot?.index ?? 0, 1) + ahead;
    const term = ++this.topTerm;
    model.snapshot = { index, term, size };
    model.base = index;
    model.terms = [];
    await this.commitSnapshot(model, true, crashAfterSteps);
  }

  private async commitSnapshot(
    model: Model,
    resetLog: boolean,
    crashAfterSteps: number | null,
  ): Promise<void> {
    const snap = model.snapshot!;
    const writer = this.storage.createSnapshot(snapshotMeta(snap.index, snap.term), { resetLog });
    const body = snapshotBody(snap.index, snap.term, snap.size);
    for (let at = 0; at < body.length; at += 16_384) writer.write(body.subarray(at, at + 16_384));
    writer.commit(this.issue(model));
    if (crashAfterSteps !== null && this.world.crash) return this.crash(crashAfterSteps);
    await this.settle();
  }

  private async settle(): Promise<void> {
    await this.world.settle();
    expect(this.errors).toEqual([]);
    expect(this.pendingLabels).toEqual([]);
  }

  private async restart(): Promise<void> {
    let closed: Error | null | undefined;
    this.storage.close((err) => {
      closed = err;
    });
    await this.settle();
    expect(closed).toBeNull();
    const reopened = this.world.open();
    this.storage = reopened.storage;
    this.checkExact(reopened.recovered);
    await this.checkSnapshotBytes(this.latest.snapshot);
  }

  private async crash(afterSteps: number): Promise<void> {
    if (!this.world.crash || !this.world.step) return this.restart();
    this.world.step(afterSteps);
    this.world.crash();
    const reopened = this.world.open();
    this.storage = reopened.storage;
    countRepairs(reopened.storage);
    const match = this.matchAfterCrash(reopened.recovered);
    this.states = [match];
    this.pendingLabels = [];
    this.topTerm = Math.max(this.topTerm, match.hardState.term, ...match.terms);
    await this.checkSnapshotBytes(match.snapshot);
  }

  private checkExact(recovered: RecoveredState): void {
    const model = this.latest;
    expect(recovered.hardState).toEqual(model.hardState);
    expect(recovered.snapshot).toEqual(
      model.snapshot ? snapshotMeta(model.snapshot.index, model.snapshot.term) : null,
    );
    expect(describeLog(recovered.entries)).toEqual(recoveredView(model.terms, model.base, model.snapshot));
    expect(recovered.entries.every(entryIsIntact)).toBe(true);
  }

  /** The model state the crash left, checked against every state the pending operations allow. */
  private matchAfterCrash(recovered: RecoveredState): Model {
    expect(recovered.entries.every(entryIsIntact)).toBe(true);
    const got = describeLog(recovered.entries);
    const snapshots = [...new Set(this.states.map((s) => s.snapshot))];
    const snapshot = snapshots.find((s) =>
      recovered.snapshot === null
        ? s === null
        : s?.index === recovered.snapshot.index && s.term === recovered.snapshot.term,
    );
    expect(
      snapshot,
      `snapshot ${JSON.stringify(recovered.snapshot)} is none of ${JSON.stringify(snapshots)}`,
    ).toBeDefined();
    const logMatch = this.states.some(
      (s) => JSON.stringify(recoveredView(s.terms, s.base, snapshot ?? null)) === JSON.stringify(got),
    );
    expect(logMatch, `log ${got.join(' ')} is no allowed state after: ${this.log.join(' ')}`).toBe(true);
    const hs = recovered.hardState;
    const hsMatch = this.states.some((s) => s.hardState.term === hs.term && s.hardState.vote === hs.vote);
    expect(hsMatch, `hard state ${JSON.stringify(hs)}`).toBe(true);
    expect(hs.commit).toBeLessThanOrEqual(Math.max(...this.states.map((s) => s.hardState.commit)));
    const snapIndex = snapshot?.index ?? 0;
    const base = recovered.entries.length > 0 ? recovered.entries[0]!.index - 1 : snapIndex;
    expect(base).toBe(snapIndex);
    return {
      base,
      terms: recovered.entries.map((e) => e.term),
      snapshot: snapshot ?? null,
      hardState: { ...hs },
    };
  }

  private async checkSnapshotBytes(snapshot: SnapshotModel | null): Promise<void> {
    const reader = this.storage.openSnapshot();
    if (!snapshot) {
      expect(reader).toBeNull();
      return;
    }
    expect(reader?.size).toBe(snapshot.size);
    const result = new Promise<{ err: Error | null; chunk?: Uint8Array }>((resolve) => {
      reader!.read(0, snapshot.size, (err, chunk) => resolve({ err, chunk }));
    });
    await this.world.settle();
    const { err, chunk } = await result;
    reader!.close();
    expect(err).toBeNull();
    expect(
      Buffer.from(chunk!).equals(Buffer.from(snapshotBody(snapshot.index, snapshot.term, snapshot.size))),
    ).toBe(true);
  }

  async finish(): Promise<void> {
    await this.restart();
  }
}

function memWorld(seed: number, tornWrites: boolean, segmentSizeBytes: number, maxGroupBytes: number): World {
  const world = new MemWorld(seed, { tornWrites });
  return {
    open: () => world.open({ segmentSizeBytes, maxGroupBytes }),
    settle: async () => world.settle(),
    step: (steps) => {
      world.clock.runSteps(steps);
    },
    crash: () => {
      world.disk.crash();
      // Completions of the dead storage are dropped by the disk; anything else left is stale too.
      world.settle();
    },
  };
}

async function runCommands(world: World, commands: Command[]): Promise<void> {
  const harness = new Harness(world, world.open());
  try {
    for (const command of commands) await harness.run(command);
    await harness.finish();
  } catch (err) {
    throw new Error(`${(err as Error).message}\ncommands: ${harness.log.join('\n')}`, { cause: err });
  }
}

describe('storage matches a model log (property)', () => {
  it('on MemDisk, with crashes and torn writes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(commandArb, { minLength: 1, maxLength: 80, size: 'medium' }),
        fc.integer({ min: 1, max: 2 ** 31 - 1 }),
        fc.constantFrom(true, true, false),
        fc.constantFrom(600, 4096, 1 << 20),
        fc.constantFrom(256, 1 << 20),
        async (commands, seed, torn, segmentSizeBytes, maxGroupBytes) => {
          await runCommands(memWorld(seed, torn, segmentSizeBytes, maxGroupBytes), commands);
        },
      ),
      { numRuns: MEM_RUNS },
    );
    expect(Object.fromEntries(repairCounts)).toMatchObject({
      'cut torn': expect.any(Number),
      'removed newest': expect.any(Number),
      'removed unfinished': expect.any(Number),
    });
  });

  const dirs: string[] = [];
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('on NodeDisk in a temp directory, with clean restarts', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(commandArb, { minLength: 1, maxLength: 25 }),
        fc.constantFrom(600, 1 << 20),
        async (commands, segmentSizeBytes) => {
          const dir = mkdtempSync(join(tmpdir(), 'flotilla-storage-prop-'));
          dirs.push(dir);
          const disk = new NodeDisk(dir);
          let pending = 0;
          const world: World = {
            open: () => {
              const storage = new FileStorage({ disk, segmentSizeBytes });
              return { storage, recovered: storage.recover() };
            },
            settle: () => waitForQuiet(() => pending),
          };
          pending = 0;
          try {
            await runCommands(
              trackPending(world, (delta) => (pending += delta)),
              commands,
            );
          } finally {
            rmSync(dir, { recursive: true, force: true });
          }
        },
      ),
      { numRuns: 25 },
    );
  });
});

/** Counts storage callbacks still outstanding, so `settle` can wait for them on a real disk. */
function trackPending(world: World, add: (delta: number) => void): World {
  const wrap = (storage: FileStorage): FileStorage => {
    const write = storage.write.bind(storage);
    storage.write = (batch, done) => {
      add(1);
      write(batch, (err) => {
        add(-1);
        done(err);
      });
    };
    const createSnapshot = storage.createSnapshot.bind(storage);
    storage.createSnapshot = (meta, options) => {
      const writer = createSnapshot(meta, options);
      const commit = writer.commit.bind(writer);
      writer.commit = (done) => {
        add(1);
        commit((err) => {
          add(-1);
          done(err);
        });
      };
      return writer;
    };
    const close = storage.close.bind(storage);
    storage.close = (done) => {
      add(1);
      close((err) => {
        add(-1);
        done(err);
      });
    };
    return storage;
  };
  return {
    ...world,
    open: () => {
      const opened = world.open();
      return { storage: wrap(opened.storage), recovered: opened.recovered };
    },
  };
}

/** Waits (with a deadline) until every storage callback the test is waiting for has run. */
async function waitForQuiet(pending: () => number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (pending() > 0) {
    if (Date.now() > deadline) throw new Error(`storage callbacks still pending after ${timeoutMs} ms`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}
