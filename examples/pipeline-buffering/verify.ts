/**
 * Checks an output directory: every event of a run in exactly one file, or the duplicates named;
 * the size of the largest and smallest batch; lines that are not valid output. Temporary files of
 * an unfinished write are not output and are skipped.
 *
 * As a command: npx tsx examples/pipeline-buffering/verify.ts --out ./pipeline-out [--run-id ID --expect N]
 */

import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { numberFlag } from '../common/flags.js';
import { isMainModule } from '../common/shutdown.js';
import { TEMP_PREFIX } from './durable-file.js';
import type { OutputLine } from './events.js';

export interface OutputReport {
  files: number;
  /** Lines counted (of the run, when one is given). */
  events: number;
  /** Distinct event ids. */
  unique: number;
  /** Event ids found in more than one line, with how many times. */
  duplicates: Record<string, number>;
  /** Lines per file: largest and smallest (of files holding events of the run). */
  largestBatch: number;
  smallestBatch: number;
  /** Lines that are not output lines. */
  badLines: number;
  /** Each event id and the file it is in (the last one seen, for duplicates). */
  fileOf: Map<string, string>;
}

/** Reads every batch file in `dir`; with `runId`, counts only that run's events. */
export async function verifyOutput(dir: string, runId?: string): Promise<OutputReport> {
  const names = (await readdir(dir)).filter(
    (name) => name.endsWith('.jsonl') && !name.startsWith(TEMP_PREFIX),
  );
  const report: OutputReport = {
    files: 0,
    events: 0,
    unique: 0,
    duplicates: {},
    largestBatch: 0,
    smallestBatch: 0,
    badLines: 0,
    fileOf: new Map(),
  };
  const counts = new Map<string, number>();
  const sizes: number[] = [];
  for (const name of names.sort()) {
    const lines = (await readFile(join(dir, name), 'utf8')).split('\n').filter((line) => line !== '');
    let ofRun = 0;
    for (const text of lines) {
      const eventId = eventIdOf(text);
      if (eventId === null) report.badLines++;
      else if (runId === undefined || eventId.startsWith(`${runId}-`)) {
        ofRun++;
        counts.set(eventId, (counts.get(eventId) ?? 0) + 1);
        report.fileOf.set(eventId, name);
      }
    }
    if (ofRun > 0) sizes.push(lines.length);
    report.events += ofRun;
  }
  report.files = sizes.length;
  report.unique = counts.size;
  for (const [eventId, count] of counts) if (count > 1) report.duplicates[eventId] = count;
  report.largestBatch = sizes.length === 0 ? 0 : Math.max(...sizes);
  report.smallestBatch = sizes.length === 0 ? 0 : Math.min(...sizes);
  return report;
}

function eventIdOf(text: string): string | null {
  try {
    const line = JSON.parse(text) as Partial<OutputLine>;
    const eventId = line.event?.eventId;
    return typeof line.seq === 'number' && typeof eventId === 'string' ? eventId : null;
  } catch {
    return null;
  }
}

/** One line of text describing a report. */
export function describeReport(report: OutputReport): string {
  const duplicates = Object.keys(report.duplicates).length;
  return (
    `${report.unique} distinct events in ${report.files} files (${report.events} lines), ` +
    `${duplicates} duplicated, batches ${report.smallestBatch}..${report.largestBatch} events, ` +
    `${report.badLines} bad lines`
  );
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: 'string', default: 'pipeline-out' },
      'run-id': { type: 'string' },
      expect: { type: 'string' },
    },
  });
  const report = await verifyOutput(values.out, values['run-id']);
  process.stdout.write(`${describeReport(report)}\n`);
  const expected = values.expect === undefined ? report.unique : numberFlag(values.expect, 'expect');
  const ok =
    report.unique === expected && Object.keys(report.duplicates).length === 0 && report.badLines === 0;
  process.exitCode = ok ? 0 : 1;
}

if (isMainModule(import.meta.url)) await main();
