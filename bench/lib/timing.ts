/** Small helpers shared by the workloads: measuring a timed part, rounding, rates. */
import type { BenchCluster, ClusterNode } from './cluster.js';
import { type CpuReport, cpuReport, cpuSnapshot } from './cpu.js';
import { readServerCounters, type ServerStats, serverStats } from './server-stats.js';

export interface Measured<T> {
  value: T;
  /** CPU of the client and every node during the part. */
  cpu: CpuReport;
  /** The leader's fsync/commit/batching counters over the part (null if it did not answer). */
  server: ServerStats | null;
}

/** Runs `part` and reports its result with what the client, the nodes and the leader did meanwhile. */
export async function measure<T>(
  cluster: BenchCluster,
  leader: ClusterNode,
  part: () => Promise<T>,
): Promise<Measured<T>> {
  const pids = cluster.pids();
  const countersBefore = await readServerCounters(cluster, leader);
  const before = cpuSnapshot(pids);
  const value = await part();
  const after = cpuSnapshot(pids);
  const countersAfter = await readServerCounters(cluster, leader);
  return {
    value,
    cpu: cpuReport(before, after, leader.id),
    server: serverStats(countersBefore, countersAfter),
  };
}

export function round(value: number, digits = 0): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

export function perSecond(count: number, elapsedMs: number): number {
  return elapsedMs > 0 ? Math.round((count * 1000) / elapsedMs) : 0;
}

export const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
