/**
 * Proves the dashboard's arithmetic (packages/node/dashboard/model.js) without a browser: rates
 * from counters between polls, a history that stays inside its window, dead-letter queue
 * detection, member roles and lag as the serving node sees them, leader-change counting,
 * sparkline geometry and the display formats.
 */
import { describe, expect, it } from 'vitest';
import {
  deadLetterSources,
  formatAge,
  formatRate,
  LeaderTracker,
  memberRows,
  pollIntervalMs,
  QueueHistory,
  ratePerSecond,
  sparklinePoints,
} from '../../packages/node/dashboard/model.js';

const stats = (depth: number, publishedCount: number, ackedCount: number) => ({
  depth,
  publishedCount,
  ackedCount,
});

describe('rates and history', () => {
  it('computes per-second rates from counters between polls', () => {
    expect(ratePerSecond(100, 300, 2000)).toBe(100);
    expect(ratePerSecond(5, 5, 1000)).toBe(0);
  });

  it('gives no rate when the counter went backwards or no time passed', () => {
    expect(ratePerSecond(300, 100, 1000)).toBeNull();
    expect(ratePerSecond(1, 2, 0)).toBeNull();
  });

  it('records rates from the second poll on and ignores polls out of order', () => {
    const h = new QueueHistory(60_000);
    h.add(1000, stats(10, 10, 0));
    h.add(2000, stats(15, 30, 15));
    h.add(1500, stats(99, 99, 99));
    expect(h.samples).toHaveLength(2);
    expect(h.latest()).toMatchObject({ depth: 15, publishRate: 20, ackRate: 15 });
    expect(h.series('publishRate')).toEqual([20]);
    expect(h.series('depth')).toEqual([10, 15]);
  });

  it("prefers the node's own rates, from the first poll on", () => {
    const h = new QueueHistory(60_000);
    h.add(1000, { ...stats(10, 10, 0), publishRate: 12.5, ackRate: 0 });
    expect(h.latest()).toMatchObject({ publishRate: 12.5, ackRate: 0 });
    h.add(2000, { ...stats(10, 1000, 0), publishRate: 3, ackRate: 1 });
    expect(h.series('publishRate')).toEqual([12.5, 3]);
    expect(h.series('ackRate')).toEqual([0, 1]);
  });

  it('keeps only the samples inside its window', () => {
    const h = new QueueHistory(10_000);
    for (let t = 0; t <= 60_000; t += 1000) h.add(t, stats(t / 1000, t, t));
    expect(h.samples[0]!.tMs).toBe(50_000);
    expect(h.samples).toHaveLength(11);
  });
});

describe('cluster view', () => {
  const members = [
    { id: 'n1', address: 'a:1', voter: true, matchIndex: 100, connected: true },
    { id: 'n2', address: 'b:1', voter: true, matchIndex: 90, connected: true },
    { id: 'n3', address: 'c:1', voter: false, matchIndex: 40, connected: false },
  ];

  it('on the leader, shows every member with its lag behind the last index', () => {
    const rows = memberRows({ nodeId: 'n1', role: 'leader', leaderId: 'n1', lastIndex: 100, members });
    expect(rows.map((r) => [r.id, r.role, r.leader, r.reachable, r.lagEntries])).toEqual([
      ['n1', 'leader', true, true, 0],
      ['n2', 'follower', false, true, 10],
      ['n3', 'learner', false, false, 60],
    ]);
  });

  it('on a follower, names the leader but claims no lag it cannot know', () => {
    const followerView = members.map((m) => ({ ...m, matchIndex: null }));
    const rows = memberRows({
      nodeId: 'n2',
      role: 'follower',
      leaderId: 'n1',
      lastIndex: 95,
      members: followerView,
    });
    expect(rows.map((r) => [r.id, r.role, r.self, r.lagEntries])).toEqual([
      ['n1', 'leader', false, null],
      ['n2', 'follower', true, null],
      ['n3', 'learner', false, null],
    ]);
  });

  it('lists the serving node even when it is not (yet) among the members', () => {
    const rows = memberRows({ nodeId: 'n4', role: 'learner', leaderId: 'n1', lastIndex: 0, members });
    expect(rows[0]).toMatchObject({ id: 'n4', self: true, role: 'learner', reachable: true });
    expect(rows).toHaveLength(4);
  });

  it('counts leader changes, an election without a leader included', () => {
    const t = new LeaderTracker();
    expect(t.observe('n1', 1)).toBe(true);
    expect(t.observe('n1', 2)).toBe(false);
    expect(t.observe(null, 3)).toBe(true);
    expect(t.observe('n2', 4)).toBe(true);
    expect(t).toMatchObject({ leaderId: 'n2', sinceMs: 4, changes: 2 });
  });

  it('finds dead-letter queues and the queues feeding them', () => {
    const dlqs = deadLetterSources([
      { name: 'a', options: { deadLetterQueue: 'dlq' } },
      { name: 'b', options: { deadLetterQueue: 'dlq' } },
      { name: 'c', options: { deadLetterQueue: null } },
      { name: 'dlq', options: { deadLetterQueue: null } },
    ]);
    expect([...dlqs]).toEqual([['dlq', ['a', 'b']]]);
  });
});

describe('sparklines and formats', () => {
  it('maps zero to the bottom edge and the top value to the top edge', () => {
    expect(sparklinePoints([0, 5, 10], 100, 20)).toBe('0,20 50,10 100,0');
  });

  it('puts series on a shared scale when given one', () => {
    expect(sparklinePoints([0, 5], 10, 20, 20)).toBe('0,20 10,15');
  });

  it('draws a lone value at the right edge and an all-zero series on the bottom', () => {
    expect(sparklinePoints([3], 120, 28)).toBe('120,0');
    expect(sparklinePoints([0, 0], 120, 28)).toBe('0,28 120,28');
    expect(sparklinePoints([], 120, 28)).toBe('');
  });

  it('formats ages, rates and the poll interval', () => {
    expect([null, 450, 12_300, 125_000, 7_500_000, 200_000_000].map(formatAge)).toEqual([
      '—',
      '450 ms',
      '12 s',
      '2 m 5 s',
      '2 h 5 m',
      '2 d 7 h',
    ]);
    expect([null, 0, 2.345, 1234.4].map(formatRate)).toEqual(['—', '0/s', '2.3/s', '1,234/s']);
    expect(pollIntervalMs('')).toBe(1000);
    expect(pollIntervalMs('?pollMs=50')).toBe(200);
    expect(pollIntervalMs('?pollMs=abc')).toBe(1000);
    expect(pollIntervalMs('?pollMs=500')).toBe(500);
  });
});
