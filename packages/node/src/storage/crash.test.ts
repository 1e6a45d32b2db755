/**
 * SIGKILL crash test with real processes and real files: a child (`crash-child.ts`, bundled once
 * with esbuild so each start is a plain `node` start) appends batches to a log on NodeDisk and
 * reports what was acknowledged; the test kills it at a random point of its progress, 20 times
 * over the same directory, and after each kill reopens the log and checks that every acknowledged
 * entry is there, intact and in order, and that nothing in the log was never written.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileStorage } from './file-storage.js';
import { NodeDisk } from './node-disk.js';
import { entryIsIntact } from './test-kit.js';
import { seededRandom } from './virtual-clock.js';

const KILLS = 20;
const READY_DEADLINE_MS = 10_000;

interface Batch {
  first: number;
  count: number;
  term: number;
}

/** One child run's report, parsed from its stdout. */
interface RunReport {
  issued: Batch[];
  acked: Batch[];
  snapshots: { index: number; term: number }[];
}

let workDir: string;
let childScript: string;

beforeAll(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'flotilla-storage-crash-'));
  childScript = join(workDir, 'crash-child.mjs');
  await build({
    entryPoints: [fileURLToPath(new URL('./crash-child.ts', import.meta.url))],
    outfile: childScript,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'error',
  });
});

afterAll(() => {
  rmSync(workDir, { recursive: true, force: true });
});

/** Starts the child and kills it with SIGKILL once it has acknowledged `killAfterAcks` batches. */
function runAndKill(dataDir: string, seed: number, killAfterAcks: number): Promise<RunReport> {
  return new Promise((resolve, reject) => {
    const child: ChildProcessWithoutNullStreams = spawn(process.execPath, [
      childScript,
      dataDir,
      String(seed),
    ]);
    const report: RunReport = { issued: [], acked: [], snapshots: [] };
    let buffered = '';
    let stderr = '';
    let killed = false;
    const deadline = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`child made no progress within ${READY_DEADLINE_MS} ms; stderr: ${stderr}`));
    }, READY_DEADLINE_MS);
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) parseLine(line, report);
      if (!killed && report.acked.length >= killAfterAcks) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(deadline);
      // Lines already in the pipe when the child died still count: they were written before.
      for (const line of buffered.split('\n')) parseLine(line, report);
      if (signal === 'SIGKILL') resolve(report);
      else reject(new Error(`child exited on its own (code ${code}); stderr: ${stderr}`));
    });
  });
}

function parseLine(line: string, report: RunReport): void {
  const [kind, a, b, c] = line.trim().split(' ');
  if (kind === 'W') report.issued.push({ first: Number(a), count: Number(b), term: Number(c) });
  else if (kind === 'A') report.acked.push({ first: Number(a), count: Number(b), term: Number(c) });
  else if (kind === 'S') report.snapshots.push({ index: Number(a), term: Number(b) });
}

/** Applies a batch to a log held as `terms[index]`: entries from `first` on are replaced. */
function applyBatch(terms: number[], batch: Batch): void {
  terms.length = batch.first;
  for (let i = 0; i < batch.count; i++) terms.push(batch.term);
}

async function reopen(dataDir: string) {
  const storage = new FileStorage({ disk: new NodeDisk(dataDir) });
  const recovered = storage.recover();
  await new Promise<void>((resolve, reject) => storage.close((err) => (err ? reject(err) : resolve())));
  return recovered;
}

describe('crash safety with SIGKILL', () => {
  it(`keeps every acknowledged entry across ${KILLS} kills`, async () => {
    const dataDir = join(workDir, 'data');
    const random = seededRandom(20_261_128);
    /** The acknowledged log: `ackedTerms[index]` (entries at or below the snapshot may be stale). */
    const ackedTerms: number[] = [0];
    let ackedSnapshot = 0;
    let totalAcked = 0;
    for (let kill = 0; kill < KILLS; kill++) {
      const killAfterAcks = 1 + Math.floor(random() * 150);
      const report = await runAndKill(dataDir, kill + 1, killAfterAcks);
      expect(report.acked.length).toBeGreaterThanOrEqual(killAfterAcks);
      totalAcked += report.acked.length;
      for (const batch of report.acked) applyBatch(ackedTerms, batch);
      for (const snap of report.snapshots) ackedSnapshot = Math.max(ackedSnapshot, snap.index);

      const recovered = await reopen(dataDir);
      const snapIndex = recovered.snapshot?.index ?? 0;
      expect(snapIndex).toBeGreaterThanOrEqual(ackedSnapshot);
      if (recovered.snapshot) expect(recovered.snapshot.term).toBe(ackedTerms[snapIndex]);
      expect(recovered.entries.every(entryIsIntact)).toBe(true);
      if (recovered.entries.length > 0) expect(recovered.entries[0]!.index).toBe(snapIndex + 1);

      // Acknowledged entries are all there, unless a later batch (unacknowledged) may have replaced them.
      const unacked = report.issued.slice(report.acked.length);
      const replaceableFrom = Math.min(...unacked.map((b) => b.first), ackedTerms.length);
      const got = new Map(recovered.entries.map((e) => [e.index, e.term]));
      for (let index = snapIndex + 1; index < replaceableFrom; index++) {
        expect(got.get(index), `acknowledged entry ${index}`).toBe(ackedTerms[index]);
      }
      // Anything else must come from a batch that was issued.
      for (const entry of recovered.entries) {
        if (entry.index < replaceableFrom) continue;
        const source = report.issued.some(
          (b) => b.term === entry.term && entry.index >= b.first && entry.index < b.first + b.count,
        );
        expect(source, `entry ${entry.index}:${entry.term} was never issued`).toBe(true);
      }
      // The next run continues from what survived.
      ackedTerms.length = snapIndex + 1;
      for (const entry of recovered.entries) ackedTerms.push(entry.term);
    }
    expect(totalAcked).toBeGreaterThan(KILLS);
  });
});
