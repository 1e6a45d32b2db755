/**
 * Smoke test of the benchmark suite: every workload W1–W6 runs once, at tiny sizes, against real
 * 3-node clusters, and the report carries every figure of every workload as a number, the context
 * (machine, date, commit), per-run CPU, and W5 loses nothing across the leader kill. Speed is never
 * asserted here; that is what the suite itself reports.
 */
import { describe, expect, it } from 'vitest';
import { runSuite, type SuiteReport } from './suite.js';
import { FULL_SIZES, WORKLOAD_IDS, type WorkloadSizes } from './workloads/types.js';

const TINY_SIZES: WorkloadSizes = {
  ...FULL_SIZES,
  w1Messages: 2_000,
  w2Messages: 100,
  w2BurstMessages: 1_000,
  w2WarmupMessages: 20,
  w3Messages: 2_000,
  w4RatePerSec: 200,
  w4DurationMs: 1_000,
  w4WarmupMs: 300,
  w5BeforeKillMs: 500,
  w5AfterFailoverMs: 500,
  w6Messages: 2_000,
};

describe('benchmark suite', () => {
  it('runs W1–W6 on real clusters and reports every figure, with nothing lost in W5', async () => {
    const log: string[] = [];
    const report: SuiteReport = await runSuite({
      only: [...WORKLOAD_IDS],
      runs: 1,
      sizes: TINY_SIZES,
      lockFile: null,
      profileDir: null,
      log: (line) => log.push(line),
    });
    // The JSON form is what `--json` writes; check that, not the in-memory objects.
    const json = JSON.parse(JSON.stringify(report)) as SuiteReport;

    expect(json.commit).toMatch(/^[0-9a-f]{7,}(-dirty)?$|^unknown$/);
    expect(Number.isNaN(Date.parse(json.date))).toBe(false);
    expect(json.machine.cores).toBeGreaterThan(0);
    expect(json.machine.node).toBe(process.version);
    expect(json.workloads.map((w) => w.id)).toEqual([...WORKLOAD_IDS]);

    for (const workload of json.workloads) {
      const [run] = workload.runs;
      expect(run?.error, `${workload.id} failed; log:\n${log.join('\n')}`).toBeNull();
      expect(workload.figures.length).toBeGreaterThan(0);
      for (const { key } of workload.figures) {
        expect(Number.isFinite(run?.figures?.[key]), `${workload.id}.${key} in the run`).toBe(true);
        expect(workload.median[key], `${workload.id}.${key} median`).toBe(run?.figures?.[key]);
      }
      expect(run?.cpu?.clientCores).toBeGreaterThanOrEqual(0);
      expect(Object.keys(run?.cpu?.nodeCores ?? {})).toHaveLength(3);
    }

    const figures = (id: string) => json.workloads.find((w) => w.id === id)!.runs[0]!.figures!;
    expect(figures('W1').failed).toBe(0);
    expect(figures('W4').received).toBe(figures('W4').sent);
    const w5 = figures('W5');
    expect(w5.lost).toBe(0);
    expect(w5.failoverS).toBeGreaterThan(0);
    expect(w5.consumed).toBeGreaterThanOrEqual(w5.confirmed!);
    expect(figures('W6').rssBytesPerMsg).toBeDefined();
  }, 180_000);
});
