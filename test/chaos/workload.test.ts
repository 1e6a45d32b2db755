/**
 * Proves the workload and the checker fit together without a real cluster: the workload runs
 * against the SDK's in-process fake cluster while leadership moves and connections drop, its
 * history is written and read back, and the checker finds every kind of event it should count
 * (confirmed publishes, redeliveries, dead letters, consumer crashes) and no violation. The fake
 * broker keeps its promises, so any violation here is a bug in the workload or the checker.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { FakeCluster } from '../../packages/client/src/testing/fake-server.js';
import { waitFor } from '../support/wait.js';
import { checkHistory, formatReport } from './checker.js';
import { type FinalState, HistoryWriter, readHistory } from './history.js';
import { Rng } from './rng.js';
import { createQueues, QUEUE_SETUP, Workload } from './workload.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

it('a workload run against a fake cluster with failovers yields a clean, complete history', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'chaos-workload-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const fake = await FakeCluster.start({ nodeIds: ['n1', 'n2', 'n3'], leaderId: 'n1', advertise: 'real' });
  cleanups.push(() => fake.stop());
  const log: string[] = [];
  await createQueues(fake.urls, (line) => log.push(line));

  const history = new HistoryWriter(join(dir, 'history.jsonl'));
  history.record({ kind: 'phase', name: 'workload-start' });
  const workload = Workload.start({
    urls: () => fake.urls,
    history,
    rng: new Rng(7),
    log: (line) => log.push(line),
  });
  cleanups.push(() => workload.stop());

  const confirmed = () => history.count('publish-ok');
  await waitFor(() => confirmed() > 100, { timeoutMs: 20_000, what: '100 confirmed publishes' });
  // Failovers the way the SDK meets them: a goingAway, then a silent leader change, then dropped sockets.
  fake.setLeader('n2', { goingAway: true });
  const before = confirmed();
  await waitFor(() => confirmed() > before + 100, {
    timeoutMs: 20_000,
    what: 'publishing on the new leader',
  });
  fake.setLeader('n3');
  fake.dropConnections();
  const after = confirmed();
  await waitFor(() => confirmed() > after + 100, {
    timeoutMs: 20_000,
    what: 'publishing after dropped sockets',
  });
  await waitFor(() => history.count('crash') > 0, { timeoutMs: 20_000, what: 'a consumer crash' });
  // Run on until every path the checker counts was taken at least once.
  const stats = (queue: string) => fake.broker.stats(queue);
  await waitFor(() => stats('chaos.dlq').publishedCount > 0, { timeoutMs: 20_000, what: 'a dead letter' });
  await waitFor(() => stats('chaos.plain').deliveredCount > stats('chaos.plain').publishedCount, {
    timeoutMs: 20_000,
    what: 'a redelivery',
  });

  await workload.stopProducers();
  history.record({ kind: 'phase', name: 'drain-start' });
  workload.startDraining();
  await waitFor(() => QUEUE_SETUP.every((q) => fake.broker.stats(q.name).depth === 0), {
    timeoutMs: 30_000,
    what: 'the fake queues to drain',
  }).catch((error) => {
    const stats = QUEUE_SETUP.map((q) => fake.broker.stats(q.name));
    const depths = stats.map((q) => `${q.name}: ${q.depth} (${q.ready} ready, ${q.inFlight} in flight)`);
    throw new Error(`${error.message}\n${depths.join('\n')}\n${workload.describe()}\n${log.join('\n')}`);
  });
  await workload.stop();
  history.record({ kind: 'phase', name: 'drain-end' });
  await history.close();

  const final: FinalState = {
    nodes: ['n1', 'n2', 'n3'].map((id) => ({ id, appliedIndex: 1, digest: 'fake' })),
    queues: QUEUE_SETUP.map((q) => {
      const stats = fake.broker.stats(q.name);
      return {
        name: q.name,
        depth: stats.depth,
        inFlight: stats.inFlight,
        delayed: stats.delayed,
        deadLetterQueue: stats.options.deadLetterQueue,
        maxDeliveries: stats.options.maxDeliveries,
      };
    }),
    servedAgainMs: 0,
    convergedMs: 0,
    recoveryBoundMs: 1_000,
  };
  const report = checkHistory(readHistory(join(dir, 'history.jsonl')), final);
  expect(report.violations, formatReport(report)).toEqual([]);
  expect(report.counts.confirmed).toBeGreaterThan(200);
  expect(report.counts.lost).toBe(0);
  expect(report.counts.deadLettered).toBeGreaterThan(0);
  expect(report.counts.duplicates).toBeGreaterThan(0);
  // Every message the fake stored was delivered and settled: the broker agrees with the history.
  const published = QUEUE_SETUP.reduce((sum, q) => sum + fake.broker.stats(q.name).publishedCount, 0);
  expect(published).toBeGreaterThanOrEqual(report.counts.confirmed);
}, 180_000);
