/**
 * The leader's own view of a timed part, from counters in its `/metrics`: how many fdatasyncs it
 * made and how long they took, how long commits took, and how many client commands each Raft
 * entry carried (batching). Read before and after; the difference describes the part.
 */
import type { BenchCluster, ClusterNode } from './cluster.js';

const COUNTERS = [
  'flotilla_storage_fsync_seconds_sum',
  'flotilla_storage_fsync_seconds_count',
  'flotilla_raft_commit_seconds_sum',
  'flotilla_raft_commit_seconds_count',
  'flotilla_raft_commands_per_entry_sum',
  'flotilla_raft_commands_per_entry_count',
] as const;

export type ServerCounters = Record<string, number | null>;

export interface ServerStats {
  fsyncs: number | null;
  fsyncMeanMs: number | null;
  commits: number | null;
  commitMeanMs: number | null;
  /** Client commands per Raft log entry, on average. */
  commandsPerEntry: number | null;
}

/** The counters now, or null if the node does not answer (e.g. it was killed). */
export async function readServerCounters(
  cluster: BenchCluster,
  node: ClusterNode,
): Promise<ServerCounters | null> {
  return cluster.metrics(node, COUNTERS).catch(() => null);
}

function delta(before: ServerCounters, after: ServerCounters, name: string): number | null {
  const a = before[name];
  const b = after[name];
  return a == null || b == null ? null : b - a;
}

function ratio(numerator: number | null, denominator: number | null, scale = 1): number | null {
  if (numerator === null || denominator === null || denominator === 0) return null;
  return Math.round((numerator / denominator) * scale * 1000) / 1000;
}

export function serverStats(before: ServerCounters | null, after: ServerCounters | null): ServerStats | null {
  if (before === null || after === null) return null;
  const fsyncs = delta(before, after, 'flotilla_storage_fsync_seconds_count');
  const commits = delta(before, after, 'flotilla_raft_commit_seconds_count');
  const entries = delta(before, after, 'flotilla_raft_commands_per_entry_count');
  return {
    fsyncs,
    fsyncMeanMs: ratio(delta(before, after, 'flotilla_storage_fsync_seconds_sum'), fsyncs, 1000),
    commits,
    commitMeanMs: ratio(delta(before, after, 'flotilla_raft_commit_seconds_sum'), commits, 1000),
    commandsPerEntry: ratio(delta(before, after, 'flotilla_raft_commands_per_entry_sum'), entries),
  };
}
