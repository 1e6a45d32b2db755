/**
 * Proves the fault plan is a pure function of the seed (so a printed seed replays the same
 * schedule), that every round uses each allowed kind once, and that faults are spaced inside the
 * campaign's duration without overlapping.
 */
import { describe, expect, it } from 'vitest';
import { FAULT_KINDS, formatPlan, planFaults } from './nemesis.js';
import { Rng } from './rng.js';

describe('planFaults', () => {
  it('draws the same plan from the same seed, and another from another seed', () => {
    const a = planFaults({ seed: 42, durationMs: 120_000 });
    expect(planFaults({ seed: 42, durationMs: 120_000 })).toEqual(a);
    expect(planFaults({ seed: 43, durationMs: 120_000 })).not.toEqual(a);
    expect(formatPlan(a)).toBe(formatPlan(planFaults({ seed: 42, durationMs: 120_000 })));
  });

  it('uses every kind once per round', () => {
    const plan = planFaults({ seed: 9, durationMs: 10 * 60_000 });
    expect(plan.length).toBeGreaterThan(FAULT_KINDS.length);
    const firstRound = plan.slice(0, FAULT_KINDS.length).map((f) => f.kind);
    expect([...firstRound].sort()).toEqual([...FAULT_KINDS].sort());
  });

  it('draws only the kinds asked for', () => {
    const plan = planFaults({ seed: 3, durationMs: 60_000, kinds: ['kill-leader', 'bridge'] });
    expect(new Set(plan.map((f) => f.kind))).toEqual(new Set(['kill-leader', 'bridge']));
    expect(() => planFaults({ seed: 3, durationMs: 60_000, kinds: [] })).toThrow(/no fault kinds/);
  });

  it('spaces faults one after another inside the duration, with at least one fault', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const plan = planFaults({ seed, durationMs: 45_000 });
      expect(plan.length).toBeGreaterThan(0);
      plan.forEach((fault, i) => {
        expect(fault.index).toBe(i);
        expect(fault.atMs).toBeLessThan(45_000);
        expect(fault.draws.every((d) => d >= 0 && d < 1)).toBe(true);
        const next = plan[i + 1];
        if (next) expect(next.atMs).toBeGreaterThan(fault.atMs + fault.holdMs);
      });
    }
    expect(planFaults({ seed: 1, durationMs: 1 })).toHaveLength(1);
  });

  it('leaves the healthy gap asked for between faults, and keeps the default plan without one', () => {
    const kinds = ['kill-leader', 'one-way', 'membership'] as const;
    const plan = planFaults({ seed: 9, durationMs: 60_000, kinds, gapMs: [700, 700] });
    expect(plan[0]!.atMs).toBe(700);
    const extraMs = (kind: string) => (kind === 'membership' ? 8_000 : 0);
    for (const [i, fault] of plan.entries()) {
      const next = plan[i + 1];
      if (next) expect(next.atMs).toBe(fault.atMs + fault.holdMs + extraMs(fault.kind) + 700);
    }
    expect(planFaults({ seed: 9, durationMs: 60_000, kinds, gapMs: [1_000, 3_000] })).toEqual(
      planFaults({ seed: 9, durationMs: 60_000, kinds }),
    );
    expect(() => planFaults({ seed: 9, durationMs: 60_000, gapMs: [2_000, 1_000] })).toThrow(/bad gap/);
  });

  it('holds pauses longer than the default election timeout (1 s)', () => {
    const plan = planFaults({ seed: 11, durationMs: 10 * 60_000, kinds: ['pause-leader', 'pause-random'] });
    expect(plan.every((f) => f.holdMs > 1_000)).toBe(true);
  });
});

describe('Rng', () => {
  it('is deterministic and stays in range', () => {
    const a = new Rng(5);
    const b = new Rng(5);
    const draws = Array.from({ length: 1000 }, () => a.int(3, 7));
    expect(draws).toEqual(Array.from({ length: 1000 }, () => b.int(3, 7)));
    expect(new Set(draws)).toEqual(new Set([3, 4, 5, 6, 7]));
    expect(new Rng(5).shuffle([1, 2, 3, 4, 5]).sort()).toEqual([1, 2, 3, 4, 5]);
    expect(() => new Rng(1).int(2, 1)).toThrow(/bad range/);
  });
});
