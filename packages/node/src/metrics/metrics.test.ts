/**
 * Proves the registry exports each per-queue gauge as the same-named figure of the API's
 * QueueStats it is given (null oldest age as 0), drops the series of a queue that is gone, and
 * labels every sample with the node id.
 */
import { DEFAULT_QUEUE_OPTIONS, type QueueStats } from '@flotilla/shared';
import { describe, expect, it } from 'vitest';
import type { NodeStatus } from '../cluster/types.js';
import { NodeMetrics } from './metrics.js';

const status: NodeStatus = {
  nodeId: 'n1',
  role: 'leader',
  term: 2,
  leaderId: 'n1',
  leaderAddress: '127.0.0.1:1',
  commitIndex: 7,
  appliedIndex: 7,
  lastIndex: 7,
  snapshotIndex: 0,
  members: [],
};

const queue = (name: string, overrides: Partial<QueueStats> = {}): QueueStats => ({
  name,
  depth: 9,
  ready: 4,
  inFlight: 3,
  delayed: 2,
  totalBytes: 900,
  publishedCount: 20,
  deliveredCount: 12,
  ackedCount: 11,
  deadLetteredCount: 0,
  oldestMessageAgeMs: 1500,
  options: DEFAULT_QUEUE_OPTIONS,
  ...overrides,
});

function sample(text: string, name: string, queueName: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(`queue="${queueName}"`));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('NodeMetrics queue gauges', () => {
  it('export the API figures under their names and forget deleted queues', async () => {
    let queues = [
      queue('jobs'),
      queue('idle', { depth: 0, ready: 0, inFlight: 0, delayed: 0, oldestMessageAgeMs: null }),
    ];
    const metrics = new NodeMetrics('n1', { status: () => status, queues: () => queues }, false);
    const text = await metrics.render();
    expect(sample(text, 'flotilla_queue_depth', 'jobs')).toBe(9);
    expect(sample(text, 'flotilla_queue_ready', 'jobs')).toBe(4);
    expect(sample(text, 'flotilla_queue_in_flight', 'jobs')).toBe(3);
    expect(sample(text, 'flotilla_queue_delayed', 'jobs')).toBe(2);
    expect(sample(text, 'flotilla_queue_bytes', 'jobs')).toBe(900);
    expect(sample(text, 'flotilla_queue_oldest_age_ms', 'jobs')).toBe(1500);
    expect(sample(text, 'flotilla_queue_oldest_age_ms', 'idle')).toBe(0);
    expect(text).toContain('flotilla_queue_depth{queue="jobs",node="n1"} 9');

    queues = [queue('jobs', { depth: 1, ready: 1, inFlight: 0, delayed: 0 })];
    const later = await metrics.render();
    expect(sample(later, 'flotilla_queue_depth', 'jobs')).toBe(1);
    expect(sample(later, 'flotilla_queue_depth', 'idle')).toBeUndefined();
  });
});
