/**
 * The pipeline example against a real 3-node cluster: a backlog of events becomes files of at most
 * 500 events with every event in exactly one file (duplicates tolerated only after a failover, as
 * at-least-once delivery allows); a trickle is written within the time cut rather than waiting for
 * a full batch; and a batch is acked only after its file is durable — while the write is pending
 * nothing is acked, and a failed write brings the whole batch back to be written again.
 */

import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FlotillaClient } from '@flotilla/client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { memoryLogger } from '../../examples/common/log.js';
import { writeFileDurably } from '../../examples/pipeline-buffering/durable-file.js';
import { EVENTS_QUEUE } from '../../examples/pipeline-buffering/events.js';
import { runProducer } from '../../examples/pipeline-buffering/producer.js';
import { verifyOutput } from '../../examples/pipeline-buffering/verify.js';
import {
  setupEventQueues,
  startBatchWriter,
  type WriteBatchFile,
} from '../../examples/pipeline-buffering/writer.js';
import type { TestCluster } from '../support/cluster.js';
import { waitFor } from '../support/wait.js';
import { Cleanup, clientFor, type FaultLog, startCluster } from './harness.js';

let cluster: TestCluster;
let client: FlotillaClient;
let faults: FaultLog;
const clusterCleanup = new Cleanup();
const cleanup = new Cleanup();

beforeAll(async () => {
  cluster = await startCluster();
  clusterCleanup.add(() => cluster.stop());
  ({ client, faults } = await clientFor(cluster, clusterCleanup));
  await setupEventQueues(client, {
    maxDeliveries: 10,
    visibilityTimeoutMs: 60_000,
    retry: { backoff: 'exponential', delayMs: 50, maxDelayMs: 400 },
  });
});

afterEach(() => cleanup.run());
afterAll(() => clusterCleanup.run());

function outputDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-pipeline-'));
  cleanup.add(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function startWriter(outDir: string, writeFile?: WriteBatchFile) {
  const writer = await startBatchWriter({ client, outDir, writeFile, log: memoryLogger() });
  cleanup.add(() => writer.close());
  return writer;
}

function waitForQueueEmpty(what: string) {
  return waitFor(async () => (await client.queueStats(EVENTS_QUEUE)).depth === 0, {
    timeoutMs: 30_000,
    what,
  });
}

describe('pipeline buffering', () => {
  it('writes a backlog as files of at most 500 events, each event in exactly one file', async () => {
    const count = 5_000;
    const produced = await runProducer({
      client,
      count,
      runId: `backlog-${Date.now()}`,
      log: memoryLogger(),
    });
    expect(produced).toMatchObject({ published: count, duplicates: 0 });
    const outDir = outputDir();

    await startWriter(outDir);
    await waitForQueueEmpty(`${count} events written and acked`);

    const report = await verifyOutput(outDir, produced.runId);
    expect(report.badLines).toBe(0);
    expect(report.unique).toBe(count);
    if (faults.events.length === 0) expect(report.duplicates).toEqual({});
    expect(report.largestBatch).toBe(500); // a backlog fills batches to the count cut
    expect(readdirSync(outDir).filter((name) => name.startsWith('.tmp-'))).toEqual([]);
  });

  it('writes a trickle within the time cut instead of waiting for a full batch', async () => {
    const outDir = outputDir();
    await startWriter(outDir);

    const produced = await runProducer({
      client,
      count: 7,
      runId: `trickle-${Date.now()}`,
      log: memoryLogger(),
    });

    const report = await waitFor(
      async () => {
        const seen = await verifyOutput(outDir, produced.runId);
        return seen.unique === 7 ? seen : false;
      },
      { timeoutMs: 10_000, what: 'the 7 events in a file' },
    );
    expect(report.largestBatch).toBeLessThanOrEqual(7);
    expect(report.duplicates).toEqual({});
  });

  it('acks a batch only after its file is durable; a failed write brings the batch back', async () => {
    const outDir = outputDir();
    let release: ((error?: Error) => void) | undefined;
    let heldEvents = 0;
    let calls = 0;
    // The first write waits for the test, then fails; later writes are the real durable writer.
    const gatedWrite: WriteBatchFile = (dir, name, data) => {
      calls++;
      if (calls > 1) return writeFileDurably(dir, name, data);
      heldEvents = data.split('\n').length - 1;
      return new Promise((resolve, reject) => {
        release = (error) => (error ? reject(error) : resolve());
      });
    };
    const before = await client.queueStats(EVENTS_QUEUE);
    const produced = await runProducer({
      client,
      count: 300,
      runId: `gated-${Date.now()}`,
      log: memoryLogger(),
    });
    const writer = await startWriter(outDir, gatedWrite);

    await waitFor(() => release !== undefined, { timeoutMs: 10_000, what: 'the first batch write to start' });
    const pending = await client.queueStats(EVENTS_QUEUE);
    expect(pending.ackedCount).toBe(before.ackedCount);
    expect(heldEvents).toBeGreaterThan(0);
    expect(pending.inFlight).toBeGreaterThanOrEqual(heldEvents);

    release!(new Error('disk full'));
    await waitForQueueEmpty('the failed batch to be retried and written');

    expect(writer.stats.failedBatches).toBe(1);
    const report = await verifyOutput(outDir, produced.runId);
    expect(report.unique).toBe(300);
    if (faults.events.length === 0) expect(report.duplicates).toEqual({});
    const after = await client.queueStats(EVENTS_QUEUE);
    expect(after.ackedCount - before.ackedCount).toBe(300 + Object.keys(report.duplicates).length);
  });
});
