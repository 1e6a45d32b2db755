/**
 * The short chaos campaigns CI runs: real `flotilla server` processes (run `npx tsc -b` first),
 * one 3-node and one 5-node cluster, each under half of the fault kinds for about half a minute
 * while the workload runs, then healed, drained and judged by the checker. Any violation fails
 * the test with the checker's report; the history, final state and node logs stay in
 * `test-output/chaos/ci-<nodes>-<seed>/`. Seeds are fixed so a failure replays; set CHAOS_SEED
 * to try another.
 */
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/cluster.js';
import { replayCommand, runCampaign } from './campaign.js';
import { formatReport } from './checker.js';
import type { FaultKind } from './nemesis.js';

const SEED = process.env.CHAOS_SEED === undefined ? undefined : Number(process.env.CHAOS_SEED);

const CAMPAIGNS: { nodes: number; seed: number; kinds: FaultKind[] }[] = [
  { nodes: 3, seed: 101, kinds: ['kill-leader', 'isolate-leader', 'one-way', 'pause-leader', 'membership'] },
  {
    nodes: 5,
    seed: 202,
    kinds: ['kill-random', 'partition-halves', 'bridge', 'blackhole', 'pause-random', 'slow-links'],
  },
];

describe('chaos campaigns on real clusters', () => {
  for (const campaign of CAMPAIGNS) {
    const seed = SEED ?? campaign.seed;
    it(`${campaign.nodes} nodes, seed ${seed}: nothing acknowledged is lost`, async () => {
      const lines: string[] = [];
      const options = { ...campaign, seed, durationMs: 25_000, rate: 0.5 };
      const result = await runCampaign({
        ...options,
        outDir: `${REPO_ROOT}/test-output/chaos/ci-${campaign.nodes}-${seed}`,
        log: (line) => lines.push(line),
      });
      const explain = `${formatReport(result.report)}\nreplay: ${replayCommand(options)}\noutput: ${result.outDir}`;
      expect(result.report.violations, explain).toEqual([]);
      expect(result.report.counts.faults).toBeGreaterThanOrEqual(3);
      expect(result.report.counts.confirmed).toBeGreaterThan(100);
      expect(result.summary).toMatch(
        /^chaos: \d+ faults, \d+ confirmed, 0 lost, \d+ duplicates, 0 violations$/,
      );
    }, 180_000);
  }
});
