/**
 * What every workload module provides and receives. A workload runs once against a fresh cluster
 * and returns named figures (numbers the suite takes medians of), the CPU use of its timed part,
 * and free-form details kept in the JSON report.
 */
import type { BenchCluster } from '../lib/cluster.js';
import type { CpuReport } from '../lib/cpu.js';
import type { PayloadFactory } from '../lib/payload.js';

export const WORKLOAD_IDS = ['W1', 'W2', 'W3', 'W4', 'W5', 'W6'] as const;
export type WorkloadId = (typeof WORKLOAD_IDS)[number];

/** One reported number: its key in `figures`, a label for the table, and its unit. */
export interface FigureSpec {
  key: string;
  label: string;
  unit: string;
  /** Decimal places shown in the table. */
  digits: number;
}

/** Sizes of every workload; BENCHMARKS.md's are `FULL_SIZES`, the smoke run's `QUICK_SIZES`. */
export interface WorkloadSizes {
  w1Messages: number;
  w1Window: number;
  w2Messages: number;
  /**
   * Windowed publishes (window `w1Window`, by a client closed before W2 connects) before W2's
   * sync ones: the anchors run W2 on a broker that has just taken W1's traffic.
   */
  w2BurstMessages: number;
  /**
   * Untimed sync publishes before the timed ones (reported apart as "cold"): until V8 has seen
   * the one-at-a-time path a few thousand times it runs unoptimized.
   */
  w2WarmupMessages: number;
  w3Messages: number;
  w3Prefetch: number;
  w4RatePerSec: number;
  w4DurationMs: number;
  /** The same paced traffic, untimed, before W4's timed part (reported apart as "cold"). */
  w4WarmupMs: number;
  w4Prefetch: number;
  w5Window: number;
  /** Publishing before the kill. */
  w5BeforeKillMs: number;
  /** Publishing after the first confirm that follows the kill. */
  w5AfterFailoverMs: number;
  w6Messages: number;
  w6Window: number;
  w6Prefetch: number;
}

export const FULL_SIZES: WorkloadSizes = {
  w1Messages: 50_000,
  w1Window: 1_000,
  w2Messages: 2_000,
  w2BurstMessages: 50_000,
  w2WarmupMessages: 2_000,
  w3Messages: 50_000,
  w3Prefetch: 1_000,
  w4RatePerSec: 1_000,
  w4DurationMs: 10_000,
  w4WarmupMs: 5_000,
  w4Prefetch: 100,
  w5Window: 100,
  w5BeforeKillMs: 3_000,
  w5AfterFailoverMs: 5_000,
  w6Messages: 1_000_000,
  w6Window: 1_000,
  w6Prefetch: 1_000,
};

export const QUICK_SIZES: WorkloadSizes = {
  ...FULL_SIZES,
  w1Messages: 10_000,
  w2Messages: 500,
  w2BurstMessages: 10_000,
  w2WarmupMessages: 500,
  w3Messages: 10_000,
  w4DurationMs: 3_000,
  w4WarmupMs: 2_000,
  w5BeforeKillMs: 1_000,
  w5AfterFailoverMs: 1_000,
  w6Messages: 100_000,
};

export interface RunContext {
  cluster: BenchCluster;
  sizes: WorkloadSizes;
  payloads: PayloadFactory;
  /** Progress lines for the person watching (stderr). */
  log: (line: string) => void;
}

export interface WorkloadOutcome {
  /** Null for a figure the run could not measure (then `error` says why). */
  figures: Record<string, number | null>;
  /** CPU use during the timed part. */
  cpu: CpuReport;
  details: Record<string, unknown>;
  /** Set when part of the run failed but the figures before the failure are still worth keeping. */
  error?: string;
}

export interface Workload {
  id: WorkloadId;
  title: string;
  /** Every key the outcome's `figures` has, in table order. */
  figures: readonly FigureSpec[];
  run(ctx: RunContext): Promise<WorkloadOutcome>;
}

/** The queue every workload uses (one queue per fresh cluster). */
export const BENCH_QUEUE = 'bench';
