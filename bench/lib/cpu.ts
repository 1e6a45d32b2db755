/**
 * CPU use during a timed window: the benchmark's own process (the client) through
 * `process.cpuUsage()`, each broker node from `/proc/<pid>/stat` (user + system time of all its
 * threads, so libuv's fsync threads count). Reported as cores busy (CPU seconds per wall second);
 * the machine's core count bounds the sum.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc times; 100 on every Linux we run on, asked once in case. */
const CLOCK_TICKS_PER_SEC = readClockTicks();

function readClockTicks(): number {
  try {
    const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isFinite(ticks) && ticks > 0 ? ticks : 100;
  } catch {
    return 100;
  }
}

/** CPU seconds used so far by a process, or null if it is gone (or /proc is missing). */
export function processCpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th fields.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SEC;
  } catch {
    return null;
  }
}

export interface CpuSnapshot {
  atMs: number;
  /** The monotonic clock in µs (`process.hrtime`), the clock V8 CPU profiles stamp samples with. */
  monotonicUs: number;
  clientSeconds: number;
  nodes: Record<string, number | null>;
}

/** CPU use over a window, in cores busy. */
export interface CpuReport {
  wallSeconds: number;
  /** This process (the benchmark client). */
  clientCores: number;
  /** Per node id; null when the node was not running at both ends of the window. */
  nodeCores: Record<string, number | null>;
  /** The node that led during the window, when known. */
  leaderId: string | null;
  leaderCores: number | null;
  /** Client plus every node. */
  totalCores: number;
  /** The window on the monotonic clock in µs, to cut the same span out of CPU profiles. */
  windowUs: [number, number];
}

/** Takes a snapshot of the client and of each node pid given (node id → pid). */
export function cpuSnapshot(pids: Record<string, number | null>): CpuSnapshot {
  const usage = process.cpuUsage();
  const nodes: Record<string, number | null> = {};
  for (const [id, pid] of Object.entries(pids)) nodes[id] = pid === null ? null : processCpuSeconds(pid);
  const monotonicUs = Number(process.hrtime.bigint() / 1000n);
  return { atMs: performance.now(), monotonicUs, clientSeconds: (usage.user + usage.system) / 1e6, nodes };
}

const round2 = (value: number) => Math.round(value * 100) / 100;

export function cpuReport(start: CpuSnapshot, end: CpuSnapshot, leaderId: string | null): CpuReport {
  const wallSeconds = Math.max(1e-6, (end.atMs - start.atMs) / 1000);
  const nodeCores: Record<string, number | null> = {};
  let total = (end.clientSeconds - start.clientSeconds) / wallSeconds;
  for (const [id, before] of Object.entries(start.nodes)) {
    const after = end.nodes[id];
    if (before === null || after === null || after === undefined) {
      nodeCores[id] = null;
      continue;
    }
    const cores = (after - before) / wallSeconds;
    nodeCores[id] = round2(cores);
    total += cores;
  }
  return {
    wallSeconds: Math.round(wallSeconds * 1000) / 1000,
    clientCores: round2((end.clientSeconds - start.clientSeconds) / wallSeconds),
    nodeCores,
    leaderId,
    leaderCores: leaderId === null ? null : (nodeCores[leaderId] ?? null),
    totalCores: round2(total),
    windowUs: [start.monotonicUs, end.monotonicUs],
  };
}
