/**
 * The short chaos campaigns CI runs: real `flotilla server` processes (run `npx tsc -b` first),
 * one 3-node and one 5-node cluster, each under half of the fault kinds while the workload runs,
 * then healed, drained and judged by the checker. Together the two use every kind in FAULT_KINDS:
 * the 3-node one restarts every node in turn and partitions; the 5-node one kills and pauses the
 * leader and changes the membership. Healthy gaps between faults are shorter than the default
 * (0.5–1.5 s) so that all twelve fit in about the time eleven took with the default gaps.
 *
 * Any violation fails the test with the checker's report; the history, final state and node logs
 * stay in `test-output/chaos/ci-<nodes>-<seed>/`. Seeds are fixed so a failure replays (and so the
 * plans are known to cover every kind, checked first without starting anything); set CHAOS_SEED to
 * try another.
 */
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/cluster.js';
import { replayCommand, runCampaign } from './campaign.js';
import { formatReport } from './checker.js';
import { FAULT_KINDS, type FaultKind, planFaults } from './nemesis.js';

const SEED = process.env.CHAOS_SEED === undefined ? undefined : Number(process.env.CHAOS_SEED);
const GAP_MS: [number, number] = [500, 1_500];

interface CiCampaign {
  nodes: number;
  seed: number;
  /** Faults start within this long; chosen with the seed so that the plan holds each kind once. */
  durationMs: number;
  kinds: FaultKind[];
}

const CAMPAIGNS: CiCampaign[] = [
  {
    nodes: 3,
    seed: 344,
    durationMs: 28_000,
    kinds: ['rolling-restart', 'partition-halves', 'isolate-leader', 'one-way', 'blackhole', 'slow-links'],
  },
  {
    nodes: 5,
    seed: 344,
    durationMs: 20_000,
    kinds: ['kill-leader', 'membership', 'kill-random', 'pause-leader', 'pause-random', 'bridge'],
  },
];

const planOf = (campaign: CiCampaign, seed = campaign.seed) =>
  planFaults({ seed, durationMs: campaign.durationMs, kinds: campaign.kinds, gapMs: GAP_MS });

describe('chaos campaigns on real clusters', () => {
  it('plans every fault kind across the two campaigns, each kind once', () => {
    const planned = CAMPAIGNS.flatMap((campaign) => planOf(campaign).map((fault) => fault.kind));
    expect([...planned].sort()).toEqual([...FAULT_KINDS].sort());
  });

  for (const campaign of CAMPAIGNS) {
    const seed = SEED ?? campaign.seed;
    it(`${campaign.nodes} nodes, seed ${seed}: nothing acknowledged is lost`, async () => {
      const lines: string[] = [];
      const options = { ...campaign, seed, gapMs: GAP_MS, rate: 0.5 };
      const result = await runCampaign({
        ...options,
        outDir: `${REPO_ROOT}/test-output/chaos/ci-${campaign.nodes}-${seed}`,
        log: (line) => lines.push(line),
      });
      const explain = `${formatReport(result.report)}\nreplay: ${replayCommand(options)}\noutput: ${result.outDir}`;
      expect(result.report.violations, explain).toEqual([]);
      // Every planned fault was carried out, so each kind of this campaign really ran.
      expect(
        result.faults.map((f) => f.fault.kind),
        explain,
      ).toEqual(planOf(campaign, seed).map((f) => f.kind));
      expect(result.faults.filter((f) => f.error !== undefined)).toEqual([]);
      expect(result.report.counts.confirmed).toBeGreaterThan(100);
      expect(result.summary).toMatch(
        /^chaos: \d+ faults, \d+ confirmed, 0 lost, \d+ duplicates, 0 violations$/,
      );
    }, 180_000);
  }
});
