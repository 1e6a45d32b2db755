/**
 * The output side of the pipeline without a cluster: durable writes leave exactly the final file,
 * leftovers of an interrupted write are removed and never counted, and the verifier reports
 * duplicates, bad lines, batch sizes and only the events of the run asked about.
 */

import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { removeTemporaryFiles, TEMP_PREFIX, writeFileDurably } from './durable-file.js';
import { makeEvent, type OutputLine } from './events.js';
import { verifyOutput } from './verify.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'flotilla-verify-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function lines(runId: string, indexes: number[]): string {
  return indexes
    .map((i) => {
      const line: OutputLine = { seq: i + 1, publishedAtMs: 0, event: makeEvent(runId, i, 0) };
      return `${JSON.stringify(line)}\n`;
    })
    .join('');
}

describe('writeFileDurably', () => {
  it('leaves the final file with the data and no temporary file', async () => {
    await writeFileDurably(dir, 'batch-1.jsonl', 'a\nb\n');
    expect(readdirSync(dir)).toEqual(['batch-1.jsonl']);
    expect(readFileSync(join(dir, 'batch-1.jsonl'), 'utf8')).toBe('a\nb\n');
  });

  it('fails without leaving anything when the directory does not exist', async () => {
    await expect(writeFileDurably(join(dir, 'missing'), 'x.jsonl', 'a')).rejects.toThrow(/ENOENT/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('removes what an interrupted write left behind', async () => {
    writeFileSync(join(dir, `${TEMP_PREFIX}batch-2.jsonl`), 'half a li');
    writeFileSync(join(dir, 'batch-1.jsonl'), 'kept\n');
    expect(await removeTemporaryFiles(dir)).toBe(1);
    expect(readdirSync(dir)).toEqual(['batch-1.jsonl']);
  });
});

describe('verifyOutput', () => {
  it('counts the run’s events, reports duplicates and bad lines, and skips temporary files', async () => {
    writeFileSync(join(dir, 'batch-1.jsonl'), lines('r1', [0, 1, 2]));
    writeFileSync(join(dir, 'batch-2.jsonl'), `${lines('r1', [2, 3])}not json\n`);
    writeFileSync(join(dir, 'batch-3.jsonl'), lines('other', [0, 1, 2, 3, 4, 5]));
    writeFileSync(join(dir, `${TEMP_PREFIX}batch-4.jsonl`), lines('r1', [9]));

    const report = await verifyOutput(dir, 'r1');

    expect(report).toMatchObject({
      files: 2,
      events: 5,
      unique: 4,
      duplicates: { 'r1-2': 2 },
      largestBatch: 3,
      smallestBatch: 3,
      badLines: 1,
    });
    expect(report.fileOf.get('r1-0')).toBe('batch-1.jsonl');
    expect(report.fileOf.has('r1-9')).toBe(false);
    expect((await verifyOutput(dir)).unique).toBe(10);
  });
});
