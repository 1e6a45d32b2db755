/**
 * WAL group-commit benchmark: many concurrent callers append 1 KiB entries through FileStorage on
 * NodeDisk in a temporary directory; prints entries/s, MB/s, group commits per second (`syncsPerS`:
 * one durable write each), entries per group commit and time-to-durable percentiles per batch.
 *
 *   npx tsx bench/storage/bench.ts [--seconds 5] [--callers 64] [--outstanding 4] [--batch 8] [--entry-bytes 1024]
 *
 * (`npm run bench:storage` runs the same.) Set FLOTILLA_BENCH_DIR to benchmark another file
 * system than the default temp directory.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as hdr from 'hdr-histogram-js';
import type { Entry } from '../../packages/node/src/raft/types.js';
import { FileStorage } from '../../packages/node/src/storage/file-storage.js';
import { NodeDisk } from '../../packages/node/src/storage/node-disk.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    callers: { type: 'string', default: '64' },
    outstanding: { type: 'string', default: '4' },
    batch: { type: 'string', default: '8' },
    'entry-bytes': { type: 'string', default: '1024' },
  },
});
const seconds = Number(values.seconds);
const callers = Number(values.callers);
const outstanding = Number(values.outstanding);
const batchEntries = Number(values.batch);
const entryBytes = Number(values['entry-bytes']);
const WARMUP_MS = 500;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(process.env.FLOTILLA_BENCH_DIR ?? tmpdir(), 'flotilla-bench-storage-'));
  try {
    await run(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function run(dir: string): Promise<void> {
  let syncs = 0;
  let ioMs = 0;
  let measuring = false;
  const storage = new FileStorage({
    disk: new NodeDisk(dir),
    onSync: (report) => {
      if (!measuring) return;
      syncs++;
      ioMs += report.durationMs;
    },
  });
  storage.recover();
  // A pool of distinct payloads, written as they are (never copied or re-encoded by the WAL).
  const payloads = Array.from({ length: 256 }, (_, i) => new Uint8Array(entryBytes).fill(i));
  const latencyUs = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60_000_000,
    numberOfSignificantValueDigits: 3,
  });
  let nextIndex = 1;
  let entries = 0;
  let stopping = false;
  let inFlight = 0;

  const issue = (): void => {
    const batch: Entry[] = new Array(batchEntries);
    for (let i = 0; i < batchEntries; i++) {
      const index = nextIndex++;
      batch[i] = { index, term: 1, type: 0, data: payloads[index & 255]! };
    }
    const started = performance.now();
    inFlight++;
    storage.write({ entries: batch }, (err) => {
      inFlight--;
      if (err) throw err;
      if (measuring) {
        entries += batchEntries;
        latencyUs.recordValue(Math.max(1, Math.round((performance.now() - started) * 1000)));
      }
      if (!stopping) issue();
    });
  };
  for (let c = 0; c < callers * outstanding; c++) issue();

  await delay(WARMUP_MS);
  measuring = true;
  const started = performance.now();
  const cpuStart = process.cpuUsage();
  await delay(seconds * 1000);
  measuring = false;
  const elapsedS = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  stopping = true;
  while (inFlight > 0) await delay(5);
  await new Promise<void>((resolve, reject) => storage.close((err) => (err ? reject(err) : resolve())));

  const mb = (entries * entryBytes) / 1e6;
  const report = {
    date: new Date().toISOString().slice(0, 10),
    node: process.version,
    config: `${callers} callers x ${outstanding} outstanding batches x ${batchEntries} entries of ${entryBytes} B`,
    entriesPerS: Math.round(entries / elapsedS),
    mbPerS: Number((mb / elapsedS).toFixed(1)),
    syncsPerS: Math.round(syncs / elapsedS),
    entriesPerSync: Math.round(entries / Math.max(1, syncs)),
    writeAndSyncMsAvg: Number((ioMs / Math.max(1, syncs)).toFixed(2)),
    durableP50Ms: latencyUs.getValueAtPercentile(50) / 1000,
    durableP99Ms: latencyUs.getValueAtPercentile(99) / 1000,
    durableMaxMs: latencyUs.maxValue / 1000,
    cpuPercent: Math.round(((cpu.user + cpu.system) / 1000 / (elapsedS * 1000)) * 100),
  };
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
