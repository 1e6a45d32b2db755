/**
 * The nemesis: a fault schedule drawn from a seed, and the executor that injects it into a live
 * cluster one fault at a time.
 *
 * The plan fixes every fault's kind, start, hold time and random draws, and is printed before the
 * campaign starts; the draws become concrete nodes only when the fault runs (the leader is
 * whoever leads at that moment), and each fault prints what it did. Between faults the nemesis
 * waits for the cluster to elect a leader again (with a deadline), so faults do not pile up on a
 * cluster that never recovered — the time that took is recorded with the fault.
 */
import type { ChaosCluster, LinkFault } from './cluster.js';
import type { HistoryWriter } from './history.js';
import { Rng } from './rng.js';

export const FAULT_KINDS = [
  'kill-leader',
  'kill-random',
  'pause-leader',
  'pause-random',
  'partition-halves',
  'isolate-leader',
  'one-way',
  'bridge',
  'blackhole',
  'slow-links',
  'rolling-restart',
  'membership',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface PlannedFault {
  index: number;
  kind: FaultKind;
  /** Earliest start, in ms after the faults begin (a fault never starts before the previous one ended). */
  atMs: number;
  /** How long the fault is held before it is taken back, in ms (rolling restarts and membership changes run to completion instead). */
  holdMs: number;
  /** Uniform draws in [0, 1) the fault turns into concrete choices when it runs. */
  draws: number[];
}

export interface PlanOptions {
  seed: number;
  /** Faults are planned to start within this many ms. */
  durationMs: number;
  /** Kinds to draw from (default: all). Each round uses every kind once, in a seeded order. */
  kinds?: readonly FaultKind[];
  /**
   * Healthy time between two faults, [min, max] in ms (default 1–3 s). Short CI campaigns use a
   * shorter gap to fit every kind in; each fault still waits for a leader before the gap starts.
   */
  gapMs?: readonly [number, number];
}

/** Hold times per kind, in ms: pauses outlast the election timeout (1 s by default). */
const HOLD_MS: Record<FaultKind, [number, number]> = {
  'kill-leader': [1_000, 4_000],
  'kill-random': [1_000, 4_000],
  'pause-leader': [1_500, 4_000],
  'pause-random': [1_500, 4_000],
  'partition-halves': [2_000, 6_000],
  'isolate-leader': [2_000, 6_000],
  'one-way': [2_000, 6_000],
  bridge: [2_000, 6_000],
  blackhole: [2_000, 6_000],
  'slow-links': [2_000, 5_000],
  'rolling-restart': [0, 0],
  membership: [0, 0],
};

/** What the planner assumes a run-to-completion fault takes, to space the schedule. */
const EXPECTED_EXTRA_MS: Partial<Record<FaultKind, number>> = {
  'rolling-restart': 12_000,
  membership: 8_000,
};

/** Healthy time between two faults, in ms. */
const GAP_MS: [number, number] = [1_000, 3_000];
const DRAWS_PER_FAULT = 6;

/** The fault schedule for a seed: same seed and options, same plan. */
export function planFaults(options: PlanOptions): PlannedFault[] {
  const rng = new Rng(options.seed).fork('nemesis');
  const kinds = options.kinds ?? FAULT_KINDS;
  if (kinds.length === 0) throw new Error('planFaults: no fault kinds');
  const [gapMinMs, gapMaxMs] = options.gapMs ?? GAP_MS;
  if (!(gapMinMs >= 0 && gapMinMs <= gapMaxMs))
    throw new Error(`planFaults: bad gap ${gapMinMs}-${gapMaxMs} ms`);
  const plan: PlannedFault[] = [];
  let cursorMs = rng.int(gapMinMs, gapMaxMs);
  let round: FaultKind[] = [];
  while (plan.length === 0 || cursorMs < options.durationMs) {
    if (round.length === 0) round = rng.shuffle(kinds);
    const kind = round.shift()!;
    const [min, max] = HOLD_MS[kind];
    const holdMs = rng.int(min, max);
    const draws = Array.from({ length: DRAWS_PER_FAULT }, () => rng.next());
    plan.push({ index: plan.length, kind, atMs: cursorMs, holdMs, draws });
    cursorMs += holdMs + (EXPECTED_EXTRA_MS[kind] ?? 0) + rng.int(gapMinMs, gapMaxMs);
  }
  return plan;
}

export function formatPlan(plan: readonly PlannedFault[]): string {
  return plan
    .map((f) => {
      const hold = f.holdMs > 0 ? `, hold ${f.holdMs} ms` : '';
      return `  #${f.index} at ${(f.atMs / 1000).toFixed(1)} s: ${f.kind}${hold}`;
    })
    .join('\n');
}

/** A fault under way: what it did, and how to take it back. */
interface Injected {
  detail: string;
  undo: () => Promise<void>;
}

export interface NemesisOptions {
  history: HistoryWriter;
  log: (line: string) => void;
  /** Deadline for the cluster to have a leader again after each fault, in ms. */
  recoveryTimeoutMs?: number;
}

/** What one executed fault did. */
export interface FaultRecord {
  fault: PlannedFault;
  detail: string;
  /** ms from taking the fault back until the members agreed on a leader; null if not within the deadline. */
  recoveredMs: number | null;
  /** Set when the fault could not be carried out (e.g. a node would not restart); the schedule stops there. */
  error?: string;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Runs the plan against the cluster, one fault at a time; resolves with what each fault did. A
 * fault that cannot be carried out (a node that will not restart, a membership change that never
 * commits) ends the schedule: its record carries the error and the campaign goes on to heal.
 */
export async function runNemesis(
  plan: readonly PlannedFault[],
  chaos: ChaosCluster,
  options: NemesisOptions,
): Promise<FaultRecord[]> {
  const startMs = performance.now();
  const records: FaultRecord[] = [];
  for (const fault of plan) {
    const waitMs = startMs + fault.atMs - performance.now();
    if (waitMs > 0) await sleep(waitMs);
    try {
      records.push(await runFault(fault, chaos, options));
    } catch (error) {
      const message = (error as Error).message ?? String(error);
      options.history.record({
        kind: 'nemesis',
        phase: 'end',
        fault: fault.index,
        name: fault.kind,
        detail: `failed: ${message}`,
      });
      options.log(`nemesis #${fault.index} ${fault.kind} FAILED: ${message}; no further faults`);
      records.push({ fault, detail: 'failed', recoveredMs: null, error: message });
      break;
    }
  }
  return records;
}

async function runFault(
  fault: PlannedFault,
  chaos: ChaosCluster,
  options: NemesisOptions,
): Promise<FaultRecord> {
  const { history, log } = options;
  const picks = new Picks(fault.draws);
  const lasting = fault.holdMs === 0;
  const start = (detail: string) =>
    history.record({ kind: 'nemesis', phase: 'start', fault: fault.index, name: fault.kind, detail });
  // A fault that runs to completion is under way from its first step: record its start first.
  if (lasting) start('under way');
  const injected = await inject(fault, chaos, picks);
  if (!lasting) start(injected.detail);
  log(`nemesis #${fault.index} ${fault.kind}: ${injected.detail}`);
  if (fault.holdMs > 0) await sleep(fault.holdMs);
  await injected.undo();
  const recoveredMs = await timeToLeader(chaos, options.recoveryTimeoutMs ?? 20_000);
  const recovery =
    recoveredMs === null ? 'no leader within the deadline' : `leader again after ${recoveredMs} ms`;
  const outcome = lasting ? `${injected.detail}; ${recovery}` : recovery;
  history.record({ kind: 'nemesis', phase: 'end', fault: fault.index, name: fault.kind, detail: outcome });
  log(`nemesis #${fault.index} ${fault.kind} over: ${recovery}`);
  return { fault, detail: injected.detail, recoveredMs };
}

async function timeToLeader(chaos: ChaosCluster, timeoutMs: number): Promise<number | null> {
  const from = performance.now();
  try {
    await chaos.waitForLeader(timeoutMs);
    return Math.round(performance.now() - from);
  } catch {
    return null;
  }
}

/** Turns a fault's draws into choices, one draw per choice, in order. */
class Picks {
  private next = 0;

  constructor(private readonly draws: readonly number[]) {}

  draw(): number {
    const value = this.draws[this.next++ % this.draws.length]!;
    return value;
  }

  one<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('Picks.one: nothing to pick from');
    return items[Math.floor(this.draw() * items.length)]!;
  }

  /** A seeded shuffle (the draw seeds it, so one draw covers the whole order). */
  shuffle<T>(items: readonly T[]): T[] {
    return new Rng(Math.floor(this.draw() * 0x1_0000_0000)).shuffle(items);
  }

  chance(p: number): boolean {
    return this.draw() < p;
  }

  int(min: number, max: number): number {
    return min + Math.floor(this.draw() * (max - min + 1));
  }
}

async function leaderOrAny(chaos: ChaosCluster, picks: Picks): Promise<string> {
  return (await chaos.leader()) ?? picks.one(upMembers(chaos));
}

function upMembers(chaos: ChaosCluster): string[] {
  return chaos.members().filter((id) => chaos.isUp(id));
}

async function inject(fault: PlannedFault, chaos: ChaosCluster, picks: Picks): Promise<Injected> {
  switch (fault.kind) {
    case 'kill-leader':
      return killNodes(chaos, [await leaderOrAny(chaos, picks)]);
    case 'kill-random': {
      const members = upMembers(chaos);
      // Never more than a minority, so the rest can still elect and serve.
      const most = Math.floor((chaos.members().length - 1) / 2);
      return killNodes(chaos, picks.shuffle(members).slice(0, picks.int(1, most)));
    }
    case 'pause-leader':
      return pauseNode(chaos, await leaderOrAny(chaos, picks));
    case 'pause-random':
      return pauseNode(chaos, picks.one(upMembers(chaos)));
    case 'partition-halves':
      return splitHalves(chaos, picks, { mode: 'cut' });
    case 'blackhole':
      return splitHalves(chaos, picks, { mode: 'drop' });
    case 'isolate-leader': {
      const leader = await leaderOrAny(chaos, picks);
      const fault: LinkFault = picks.chance(0.5) ? { mode: 'cut' } : { mode: 'drop' };
      const rest = chaos.members().filter((id) => id !== leader);
      chaos.partition([[leader], rest], fault);
      return networkFault(chaos, `isolated leader ${leader} from ${rest.join(',')} (${fault.mode})`);
    }
    case 'one-way':
      return oneWay(chaos, picks);
    case 'bridge':
      return bridge(chaos, picks);
    case 'slow-links':
      return slowLinks(chaos, picks);
    case 'rolling-restart':
      return rollingRestart(chaos, picks);
    case 'membership':
      return membershipChange(chaos, picks);
  }
}

async function killNodes(chaos: ChaosCluster, ids: string[]): Promise<Injected> {
  for (const id of ids) await chaos.kill(id);
  return {
    detail: `kill -9 ${ids.join(',')}`,
    undo: async () => {
      for (const id of ids) await chaos.restart(id);
    },
  };
}

async function pauseNode(chaos: ChaosCluster, id: string): Promise<Injected> {
  chaos.pause(id);
  return {
    detail: `SIGSTOP ${id}`,
    undo: async () => {
      if (chaos.node(id).process) chaos.resume(id);
    },
  };
}

function networkFault(chaos: ChaosCluster, detail: string): Injected {
  return {
    detail,
    undo: async () => chaos.healNetwork(),
  };
}

function splitHalves(chaos: ChaosCluster, picks: Picks, fault: LinkFault): Injected {
  const members = picks.shuffle(chaos.members());
  const minority = picks.int(1, Math.floor((members.length - 1) / 2));
  const small = members.slice(0, minority);
  const large = members.slice(minority);
  chaos.partition([small, large], fault);
  return networkFault(chaos, `partition {${small.join(',')}} | {${large.join(',')}} (${fault.mode})`);
}

async function oneWay(chaos: ChaosCluster, picks: Picks): Promise<Injected> {
  const node = picks.chance(0.5) ? await leaderOrAny(chaos, picks) : picks.one(chaos.members());
  const others = chaos.members().filter((id) => id !== node);
  const outbound = picks.chance(0.5);
  for (const other of others) {
    if (outbound) chaos.breakLink(node, other, { mode: 'cut' });
    else chaos.breakLink(other, node, { mode: 'cut' });
  }
  const what = outbound
    ? `${node} cannot send to ${others.join(',')}`
    : `${others.join(',')} cannot send to ${node}`;
  return networkFault(chaos, `one-way: ${what} (the reverse direction works)`);
}

function bridge(chaos: ChaosCluster, picks: Picks): Injected {
  const [middle, ...rest] = picks.shuffle(chaos.members());
  const half = Math.ceil(rest.length / 2);
  const left = rest.slice(0, half);
  const right = rest.slice(half);
  chaos.partition([left, right], { mode: 'cut' });
  return networkFault(
    chaos,
    `bridge: {${left.join(',')}} | {${right.join(',')}}, only ${middle} talks to both`,
  );
}

function slowLinks(chaos: ChaosCluster, picks: Picks): Injected {
  const node = picks.one(chaos.members());
  const delayMs = picks.int(50, 300);
  const jitterMs = picks.int(0, 100);
  for (const other of chaos.members()) {
    if (other === node) continue;
    chaos.breakLink(node, other, { mode: 'delay', delayMs, jitterMs });
    chaos.breakLink(other, node, { mode: 'delay', delayMs, jitterMs });
  }
  return networkFault(chaos, `links of ${node} delayed ${delayMs} ms (+${jitterMs} ms jitter) both ways`);
}

/** SIGTERM each member in turn, restarting it and waiting for a leader before the next. */
async function rollingRestart(chaos: ChaosCluster, picks: Picks): Promise<Injected> {
  const order = picks.shuffle(chaos.members());
  const codes: string[] = [];
  for (const id of order) {
    const code = await chaos.terminate(id);
    codes.push(`${id} exit ${code}`);
    await chaos.restart(id);
    await chaos.waitForLeader(20_000);
  }
  return { detail: `rolling restart with SIGTERM: ${codes.join(', ')}`, undo: async () => {} };
}

/** Add a new node (learner, then voter), then remove another member (possibly the leader). */
async function membershipChange(chaos: ChaosCluster, picks: Picks): Promise<Injected> {
  const added = await chaos.addMember();
  const candidates = chaos.members().filter((id) => id !== added);
  const removed = picks.one(candidates);
  const leader = await chaos.leader();
  await chaos.removeMember(removed);
  const role = removed === leader ? ' (the leader)' : '';
  return {
    detail: `added ${added} as voter, removed ${removed}${role}; members now ${chaos.members().join(',')}`,
    undo: async () => {},
  };
}
