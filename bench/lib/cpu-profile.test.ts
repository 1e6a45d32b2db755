/** Proves the profile reader splits self time per function and area, and keeps idle apart. */
import { describe, expect, it } from 'vitest';
import { areaOf, type CpuProfile, summarize } from './cpu-profile.js';

const frame = (functionName: string, url = '', lineNumber = 0) => ({ functionName, url, lineNumber });

const profile: CpuProfile = {
  startTime: 1_000,
  nodes: [
    { id: 1, callFrame: frame('(idle)') },
    { id: 2, callFrame: frame('findDuplicate', 'file:///repo/packages/node/dist/queues/queue.js', 359) },
    { id: 3, callFrame: frame('writev') },
    { id: 4, callFrame: frame('consume', 'file:///repo/node_modules/ws/lib/receiver.js', 126) },
  ],
  // Sample i happens timeDeltas[i] µs after sample i-1 and is charged that long.
  samples: [2, 2, 3, 1, 1, 4, 2],
  timeDeltas: [100, 100, 100, 100, 100, 100, 100],
};

describe('CPU profile summary', () => {
  it('charges self time per function and per area, idle apart', () => {
    const summary = summarize(profile);
    expect(summary.windowUs).toBe(700);
    expect(summary.idleUs).toBe(200);
    expect(summary.busyUs).toBe(500);
    expect(summary.functions[0]).toEqual({
      name: 'findDuplicate node/dist/queues/queue.js:360',
      selfUs: 300,
    });
    expect(summary.areas.map((a) => a.name)).toEqual(['flotilla node/queues', 'native writev', 'ws']);
  });

  it('keeps only the samples inside the window', () => {
    // Samples land at 1100, 1200, ..., 1700; keep 1300..1500 (writev, idle, idle).
    const summary = summarize(profile, 1_300, 1_500);
    expect(summary.windowUs).toBe(300);
    expect(summary.busyUs).toBe(100);
    expect(summary.functions).toEqual([{ name: 'writev', selfUs: 100 }]);
  });

  it('names code areas by package, module or runtime', () => {
    expect(areaOf(frame('x', 'file:///r/node_modules/@msgpack/msgpack/dist/x.js'))).toBe('@msgpack/msgpack');
    expect(areaOf(frame('x', 'file:///r/packages/shared/dist/msgpack.js'))).toBe('flotilla shared/msgpack');
    expect(areaOf(frame('x', 'node:internal/streams/readable'))).toBe('node internal/streams');
    expect(areaOf(frame('(garbage collector)'))).toBe('(garbage collector)');
  });
});
