/**
 * The benchmark suite: runs the chosen workloads `runs` times, each run of each workload on a
 * fresh 3-node cluster, and gathers per-run figures, medians, CPU use and the context (machine,
 * date, commit) into one report. `run.ts` is the command line around it; the smoke test calls
 * `runSuite` directly with tiny sizes.
 */
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BenchCluster } from './lib/cluster.js';
import type { CpuReport } from './lib/cpu.js';
import { acquireLock, type HeldLock } from './lib/lock.js';
import { gitCommit, type MachineInfo, machineInfo } from './lib/machine.js';
import { PAYLOAD_BYTES, PayloadFactory } from './lib/payload.js';
import type { FigureSpec, Workload, WorkloadId, WorkloadSizes } from './workloads/types.js';
import { w1ConfirmedPublish } from './workloads/w1-confirmed-publish.js';
import { w2SyncPublish } from './workloads/w2-sync-publish.js';
import { w3Consume } from './workloads/w3-consume.js';
import { w4EndToEnd } from './workloads/w4-end-to-end.js';
import { w5Failover } from './workloads/w5-failover.js';
import { w6Backlog } from './workloads/w6-backlog.js';

export const WORKLOADS: Record<WorkloadId, Workload> = {
  W1: w1ConfirmedPublish,
  W2: w2SyncPublish,
  W3: w3Consume,
  W4: w4EndToEnd,
  W5: w5Failover,
  W6: w6Backlog,
};

const REPO_ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));

export interface SuiteOptions {
  only: readonly WorkloadId[];
  runs: number;
  sizes: WorkloadSizes;
  /** Hold this flock(1) lock file during each workload run; null: no lock. */
  lockFile: string | null;
  /** Write the nodes' CPU profiles under `<dir>/<W>-run<n>/`; null: no profiling. */
  profileDir: string | null;
  /** Extra `flotilla server` arguments for every node (default none: the product's defaults). */
  serverArgs?: readonly string[];
  log: (line: string) => void;
}

export interface RunRecord {
  run: number;
  startedAt: string;
  /** 1-minute load average when the run started: other work on the machine shows here. */
  loadAtStart: number;
  /** Null when the run failed before measuring anything (see `error`); a null figure was not measured. */
  figures: Record<string, number | null> | null;
  cpu: CpuReport | null;
  details: Record<string, unknown>;
  error: string | null;
}

export interface WorkloadReport {
  id: WorkloadId;
  title: string;
  figures: readonly FigureSpec[];
  /** Median over the runs that succeeded; null when none did. */
  median: Record<string, number | null>;
  runs: RunRecord[];
}

export interface SuiteReport {
  suite: 'flotilla-bench';
  date: string;
  commit: string;
  machine: MachineInfo;
  durability: string;
  payloadBytes: number;
  runs: number;
  sizes: WorkloadSizes;
  profileDir: string | null;
  serverArgs: readonly string[];
  workloads: WorkloadReport[];
}

export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function mediansOf(workload: Workload, runs: readonly RunRecord[]): Record<string, number | null> {
  const medians: Record<string, number | null> = {};
  for (const { key } of workload.figures) {
    const values = runs.flatMap((r) => {
      const value = r.figures?.[key];
      return value === undefined || value === null ? [] : [value];
    });
    medians[key] = median(values);
  }
  return medians;
}

/** Tells `profile.ts` which span of the profiles is the timed part, and which node led. */
function writeProfileNote(dir: string, id: WorkloadId, run: number, cpu: CpuReport): void {
  const note = { workload: id, run, leaderId: cpu.leaderId, windowUs: cpu.windowUs };
  writeFileSync(join(dir, 'timed-window.json'), `${JSON.stringify(note, null, 2)}\n`);
}

async function runOnce(
  workload: Workload,
  run: number,
  options: SuiteOptions,
  payloads: PayloadFactory,
): Promise<RunRecord> {
  const lock: HeldLock | null = options.lockFile === null ? null : await acquireLock(options.lockFile);
  const profileDir =
    options.profileDir === null ? null : join(options.profileDir, `${workload.id}-run${run}`);
  const startedAt = new Date().toISOString();
  const loadAtStart = Math.round((loadavg()[0] ?? 0) * 100) / 100;
  let cluster: BenchCluster | null = null;
  try {
    cluster = await BenchCluster.start({ profileDir, serverArgs: options.serverArgs ?? [] });
    const outcome = await workload.run({ cluster, sizes: options.sizes, payloads, log: options.log });
    if (profileDir !== null) writeProfileNote(profileDir, workload.id, run, outcome.cpu);
    const { error, ...measured } = outcome;
    return { run, startedAt, loadAtStart, ...measured, error: error ?? null };
  } catch (error) {
    const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
    return { run, startedAt, loadAtStart, figures: null, cpu: null, details: {}, error: message };
  } finally {
    await cluster?.stop().catch((error: unknown) => options.log(`stopping the cluster failed: ${error}`));
    await lock?.release();
  }
}

export async function runSuite(options: SuiteOptions): Promise<SuiteReport> {
  const date = new Date().toISOString();
  const machine = machineInfo();
  const payloads = new PayloadFactory();
  const records = new Map<WorkloadId, RunRecord[]>(options.only.map((id) => [id, []]));
  // Run-major order (W1..W6, then again), so a noisy minute on the machine hits one run of each.
  for (let run = 1; run <= options.runs; run++) {
    for (const id of options.only) {
      const workload = WORKLOADS[id];
      options.log(`${id} run ${run}/${options.runs}: ${workload.title}`);
      const record = await runOnce(workload, run, options, payloads);
      if (record.figures !== null) options.log(`${id} run ${run}: ${JSON.stringify(record.figures)}`);
      if (record.error !== null) options.log(`${id} run ${run} failed: ${record.error}`);
      records.get(id)!.push(record);
    }
  }
  return {
    suite: 'flotilla-bench',
    date,
    commit: gitCommit(REPO_ROOT),
    machine,
    durability: 'fdatasync on a majority of 3 replicas before every confirm',
    payloadBytes: PAYLOAD_BYTES,
    runs: options.runs,
    sizes: options.sizes,
    profileDir: options.profileDir,
    serverArgs: options.serverArgs ?? [],
    workloads: options.only.map((id) => {
      const workload = WORKLOADS[id];
      const runs = records.get(id)!;
      return {
        id,
        title: workload.title,
        figures: workload.figures,
        median: mediansOf(workload, runs),
        runs,
      };
    }),
  };
}
