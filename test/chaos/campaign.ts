/**
 * One chaos campaign: start a cluster wired through link proxies, run the workload, inject the
 * seeded fault schedule, heal, measure how soon the cluster serves again, drain every queue, wait
 * for the replicas to agree, record the final state, and hand history and final state to the
 * checker. Everything lands in `test-output/chaos/<seed>/`:
 *
 * - `campaign.log`: the plan, each fault as it ran, progress, the report;
 * - `history.jsonl`: every client-visible event; `final.json`: the final drained state;
 * - `report.txt`: the checker's verdict; `cluster/n*.log`: each node's log (data dirs are removed
 *   after a clean campaign and kept after a failed one).
 */
import { appendFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type FlotillaClient, isFlotillaError } from '@flotilla/client';
import { REPO_ROOT } from '../support/cluster.js';
import { waitFor } from '../support/wait.js';
import { type CheckReport, checkHistory, formatReport, summaryLine } from './checker.js';
import { ChaosCluster } from './cluster.js';
import { type FinalQueue, type FinalState, HistoryWriter, readHistory } from './history.js';
import {
  type FaultKind,
  type FaultRecord,
  formatPlan,
  type PlannedFault,
  planFaults,
  runNemesis,
} from './nemesis.js';
import { Rng } from './rng.js';
import { createQueues, QUEUE_SETUP, Workload } from './workload.js';

export interface CampaignOptions {
  nodes: number;
  /** How long faults are injected, in ms (the plan's faults start within it). */
  durationMs: number;
  seed: number;
  /** Fault kinds to draw from (default all). */
  kinds?: readonly FaultKind[];
  /** Healthy time between faults, [min, max] in ms (default 1–3 s; see PlanOptions). */
  gapMs?: readonly [number, number];
  /** Workload pace multiplier (default 1). */
  rate?: number;
  /** Bound on serving again after the heal and on converging after the drain, in ms (default 20 s). */
  recoveryBoundMs?: number;
  /**
   * The drain after the heal fails when the queues' total depth has not gone down for this long, in
   * ms (default 60 s): a backlog left by a long campaign may take minutes, a stuck queue is caught.
   */
  drainStallMs?: number;
  /** The drain's overall bound, in ms (default 15 minutes). */
  drainTimeoutMs?: number;
  /** Output directory (default `test-output/chaos/<seed>`). */
  outDir?: string;
  /** Extra `flotilla server` arguments. */
  serverArgs?: string[];
  /** Progress lines (also written to campaign.log). */
  log?: (line: string) => void;
}

export interface CampaignResult {
  report: CheckReport;
  /** `chaos: F faults, C confirmed, L lost, D duplicates, V violations`. */
  summary: string;
  plan: PlannedFault[];
  faults: FaultRecord[];
  outDir: string;
  /** Wall time of the whole campaign, in ms. */
  elapsedMs: number;
}

/** Snapshots every 256 KiB of applied log, so kills and restarts exercise snapshot install and compaction. */
const DEFAULT_SERVER_ARGS = ['--snapshot-log-bytes', String(256 * 1024)];
const PROBE_QUEUE = 'chaos.probe';

export function replayCommand(
  options: Pick<CampaignOptions, 'nodes' | 'durationMs' | 'seed' | 'kinds' | 'gapMs'>,
): string {
  const kinds = options.kinds ? ` --kinds ${options.kinds.join(',')}` : '';
  const gap = options.gapMs ? ` --gap-ms ${options.gapMs.join(',')}` : '';
  return `npm run chaos -- --nodes ${options.nodes} --duration ${options.durationMs / 1000} --seed ${options.seed}${kinds}${gap}`;
}

export async function runCampaign(options: CampaignOptions): Promise<CampaignResult> {
  const startedMs = performance.now();
  const outDir = options.outDir ?? join(REPO_ROOT, 'test-output', 'chaos', String(options.seed));
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const history = new HistoryWriter(join(outDir, 'history.jsonl'));
  // Progress lines carry the history's clock, so they line up with its events.
  const log = (line: string) => {
    const stamped = `[${(history.now() / 1000).toFixed(1).padStart(6)} s] ${line}`;
    options.log?.(stamped);
    appendFileSync(join(outDir, 'campaign.log'), `${stamped}\n`);
  };
  const plan = planFaults({
    seed: options.seed,
    durationMs: options.durationMs,
    kinds: options.kinds,
    gapMs: options.gapMs,
  });
  log(`chaos: seed ${options.seed}, ${options.nodes} nodes, ${options.durationMs / 1000} s of faults`);
  log(`replay: ${replayCommand(options)}`);
  log(`plan:\n${formatPlan(plan)}`);

  const final = await runAgainstCluster(options, plan, history, outDir, log).finally(() => history.close());
  writeFileSync(join(outDir, 'final.json'), `${JSON.stringify(final.state, null, 2)}\n`);

  // The checker sees only what was written down.
  const report = checkHistory(
    readHistory(join(outDir, 'history.jsonl')),
    JSON.parse(readFileSync(join(outDir, 'final.json'), 'utf8')) as FinalState,
  );
  const text = formatReport(report);
  const summary = summaryLine(report);
  writeFileSync(join(outDir, 'report.txt'), `${text}\n${summary}\n`);
  log(text);
  if (report.violations.length === 0) removeDataDirs(join(outDir, 'cluster'));
  else log(`node logs and data kept in ${join(outDir, 'cluster')}; replay: ${replayCommand(options)}`);
  return {
    report,
    summary,
    plan,
    faults: final.faults,
    outDir,
    elapsedMs: Math.round(performance.now() - startedMs),
  };
}

/** The part with live processes: everything in it is cleaned up however it ends. */
async function runAgainstCluster(
  options: CampaignOptions,
  plan: PlannedFault[],
  history: HistoryWriter,
  outDir: string,
  log: (line: string) => void,
): Promise<{ state: FinalState; faults: FaultRecord[] }> {
  const rng = new Rng(options.seed);
  const proxyRng = rng.fork('proxies');
  const boundMs = options.recoveryBoundMs ?? 20_000;
  let chaos: ChaosCluster | undefined;
  let workload: Workload | undefined;
  try {
    chaos = await ChaosCluster.start({
      size: options.nodes,
      root: join(outDir, 'cluster'),
      args: [...DEFAULT_SERVER_ARGS, ...(options.serverArgs ?? [])],
      random: () => proxyRng.next(),
    });
    const first = await chaos.waitForLeader(30_000);
    log(`cluster up: ${chaos.members().join(',')}, leader ${first}`);
    await createQueues(chaos.urls(), log);
    await createProbeQueue(chaos.urls(), log);

    history.record({ kind: 'phase', name: 'workload-start' });
    workload = Workload.start({
      urls: () => chaos!.urls(),
      history,
      rng: rng.fork('workload'),
      log,
      rate: options.rate,
    });
    history.record({ kind: 'phase', name: 'faults-start' });
    const faults = await runNemesis(plan, chaos, { history, log });

    await chaos.healAll();
    history.record({ kind: 'phase', name: 'healed' });
    const healedMs = performance.now();
    log('healed: network whole, every member running');
    const servedAgainMs = await probeService(chaos.urls(), healedMs, 2 * boundMs, log);

    await workload.stopProducers();
    history.record({ kind: 'phase', name: 'drain-start' });
    workload.startDraining();
    const drained = await waitDrained(
      chaos,
      options.drainStallMs ?? 60_000,
      options.drainTimeoutMs ?? 15 * 60_000,
      log,
    );
    log(
      drained ? 'drained every queue' : `queues did not drain before the deadline:\n${workload.describe()}`,
    );
    await workload.stop();
    history.record({ kind: 'phase', name: 'drain-end' });

    const convergedMs = await waitConverged(chaos, 2 * boundMs);
    const state: FinalState = {
      nodes: await chaos.digests(),
      queues: await finalQueues(chaos),
      servedAgainMs,
      convergedMs,
      recoveryBoundMs: boundMs,
      members: chaos.members(),
      crashes: chaos.crashes(),
      faultErrors: faults.flatMap((f) => (f.error ? [`#${f.fault.index} ${f.fault.kind}: ${f.error}`] : [])),
    };
    for (const crash of state.crashes ?? []) log(`CRASH ${crash.id} ${crash.detail}`);
    log(
      `served again ${servedAgainMs ?? 'never'} ms after the heal; replicas agreed ${convergedMs ?? 'never'} ms after the drain`,
    );
    return { state, faults };
  } catch (error) {
    log(`campaign failed: ${(error as Error).stack ?? error}`);
    if (chaos) log(chaos.tails());
    throw error;
  } finally {
    await workload?.stop().catch(() => {});
    await chaos?.stop();
  }
}

async function createProbeQueue(urls: string[], log: (line: string) => void): Promise<void> {
  const client = await connect({ servers: urls, name: 'chaos-probe-setup', connectTimeoutMs: 30_000 });
  try {
    await client.createQueue(PROBE_QUEUE, { visibilityTimeoutMs: 2_000 });
  } catch (error) {
    if (!isFlotillaError(error, 'QUEUE_EXISTS')) throw error;
    log(`${PROBE_QUEUE} already existed (a retried create)`);
  } finally {
    await client.close();
  }
}

/**
 * ms from `sinceMs` until a fresh client could publish, receive and ack a message; null if that
 * did not happen within `timeoutMs`.
 */
async function probeService(
  urls: string[],
  sinceMs: number,
  timeoutMs: number,
  log: (line: string) => void,
): Promise<number | null> {
  let client: FlotillaClient | undefined;
  const deadline = sinceMs + timeoutMs;
  try {
    while (performance.now() < deadline) {
      try {
        client ??= await connect({
          servers: urls,
          name: 'chaos-probe',
          connectTimeoutMs: 5_000,
          requestTimeoutMs: 5_000,
        });
        const { seq } = await client.publish(PROBE_QUEUE, `probe ${Date.now()}`);
        const [msg] = await client.receive(PROBE_QUEUE, { max: 1, waitMs: 2_000 });
        if (msg) {
          await msg.ack();
          if (msg.seq === seq) return Math.round(performance.now() - sinceMs);
        }
      } catch (error) {
        log(`probe: ${isFlotillaError(error) ? error.code : (error as Error).message}`);
      }
    }
    return null;
  } finally {
    await client?.close().catch(() => {});
  }
}

/**
 * Waits until every workload queue is empty. Gives up when the total depth has not gone down for
 * `stallMs` (a stuck queue) or after `timeoutMs` in all; logs the depth every 10 s meanwhile.
 */
async function waitDrained(
  chaos: ChaosCluster,
  stallMs: number,
  timeoutMs: number,
  log: (line: string) => void,
): Promise<boolean> {
  const names = new Set(QUEUE_SETUP.map((q) => q.name));
  const startedMs = performance.now();
  let lowest = Number.POSITIVE_INFINITY;
  let lowestAtMs = startedMs;
  let loggedAtMs = startedMs;
  while (true) {
    const queues = await chaos.queues().then(
      (all) => all.filter((q) => names.has(q.name)),
      () => null, // no leader to answer right now: try again
    );
    const nowMs = performance.now();
    if (queues !== null) {
      const depth = queues.reduce((sum, q) => sum + q.depth, 0);
      if (queues.length === names.size && depth === 0) return true;
      if (depth < lowest) {
        lowest = depth;
        lowestAtMs = nowMs;
      }
      if (nowMs - loggedAtMs >= 10_000) {
        loggedAtMs = nowMs;
        log(`draining: ${queues.map((q) => `${q.name} ${q.depth}`).join(', ')}`);
      }
    }
    if (nowMs - lowestAtMs > stallMs) {
      log(`drain stopped: no progress for ${stallMs} ms (lowest total depth ${lowest})`);
      return false;
    }
    if (nowMs - startedMs > timeoutMs) {
      log(`drain stopped: not empty after ${timeoutMs} ms`);
      return false;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** ms until every member reports the same applied index and digest; null if not within the deadline. */
async function waitConverged(chaos: ChaosCluster, timeoutMs: number): Promise<number | null> {
  const from = performance.now();
  try {
    await waitFor(
      async () => {
        const nodes = await chaos.digests();
        if (nodes.length !== chaos.members().length) return false;
        return new Set(nodes.map((n) => `${n.appliedIndex}/${n.digest}`)).size === 1;
      },
      { timeoutMs, intervalMs: 200, what: 'the replicas to agree' },
    );
    return Math.round(performance.now() - from);
  } catch {
    return null;
  }
}

async function finalQueues(chaos: ChaosCluster): Promise<FinalQueue[]> {
  const names = new Set(QUEUE_SETUP.map((q) => q.name));
  const queues = await chaos.queues().catch(() => null);
  if (queues === null) {
    // No member answered: the checker still needs the dead-letter wiring; the depth is unknown.
    return QUEUE_SETUP.map(({ name, options }) => ({
      name,
      depth: -1,
      inFlight: 0,
      delayed: 0,
      deadLetterQueue: (options.deadLetterQueue as string | undefined) ?? null,
      maxDeliveries: (options.maxDeliveries as number | undefined) ?? 0,
    }));
  }
  return queues
    .filter((q) => names.has(q.name))
    .map((q) => ({
      name: q.name,
      depth: q.depth,
      inFlight: q.inFlight,
      delayed: q.delayed,
      deadLetterQueue: q.options.deadLetterQueue ?? null,
      maxDeliveries: q.options.maxDeliveries ?? 0,
    }));
}

/** Data directories go after a clean campaign; the node logs stay. */
function removeDataDirs(clusterDir: string): void {
  let entries: string[];
  try {
    entries = readdirSync(clusterDir);
  } catch {
    return;
  }
  for (const entry of entries) {
    if (!entry.endsWith('.log')) rmSync(join(clusterDir, entry), { recursive: true, force: true });
  }
}
