/**
 * Proves the Raft core safe under the deterministic simulator: 200 seeds of crashes, partitions,
 * message loss/duplication/reordering, membership changes, transfers and snapshots, with every
 * safety property checked after every event and liveness after the final heal. Also proves that a
 * run is a pure function of its seed, and that the runs really exercise what they claim to.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_STEPS, main } from './cli.js';
import { runSimulation } from './simulation.js';

const SEEDS = 200;
/** The CLI's default: several elections, crashes and snapshots per seed; the file takes ~10 s. */
const STEPS = DEFAULT_STEPS;

describe('simulation', () => {
  it(`finds no violation over ${SEEDS} seeds and exercises every fault kind`, () => {
    const coverage = new Map<string, number>();
    for (let seed = 1; seed <= SEEDS; seed++) {
      const result = runSimulation({ seed, steps: STEPS });
      if (result.violations.length > 0) {
        const trace = result.trace.slice(-30).join('\n');
        throw new Error(
          `seed ${seed}: ${result.violations.join('; ')}\n${trace}\nreplay: npm run sim -- --seed ${seed} --steps ${STEPS}`,
        );
      }
      for (const [event, n] of result.coverage) coverage.set(event, (coverage.get(event) ?? 0) + n);
    }
    for (const event of [
      'FAULT crash',
      'FAULT bounce',
      'FAULT partition',
      'FAULT cut',
      'FAULT isolate',
      'FAULT add',
      'FAULT promote',
      'FAULT remove',
      'FAULT transfer',
      'leader removes itself',
      'timeoutNow sent',
      'install snapshot (replace log)',
      'install snapshot (keep log)',
      'state machine restored',
      'read served',
      'proposal acknowledged',
      'proposal lost',
    ]) {
      expect(coverage.get(event) ?? 0, event).toBeGreaterThan(0);
    }
  });

  it('replays a seed bit for bit', () => {
    const a = runSimulation({ seed: 7, steps: 1500, traceLines: 200 });
    const b = runSimulation({ seed: 7, steps: 1500, traceLines: 200 });
    expect(b.steps).toBe(a.steps);
    expect(b.virtualTimeMs).toBe(a.virtualTimeMs);
    expect(b.trace).toEqual(a.trace);
    const c = runSimulation({ seed: 8, steps: 1500, traceLines: 200 });
    expect(c.trace).not.toEqual(a.trace);
  });

  it('CLI ends with the summary line on success and rejects unknown flags', () => {
    const lines: string[] = [];
    expect(main(['--seed', '3', '--steps', '500'], (line) => lines.push(line))).toBe(0);
    expect(lines.at(-1)).toMatch(/^sim: 1 seeds, \d+ steps, \d+ faults, 0 violations$/);
    expect(main(['--bogus', '1'], () => {})).toBe(2);
  });
});
