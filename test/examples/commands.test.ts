/**
 * Runs each example the way its README says to — `npx tsx examples/<name>/main.ts <flags>` as a
 * child process — against a real 3-node cluster, and checks what the command reports when it is
 * done: the email burst of 10,000 requests is sent once each within the token bucket's bound, the
 * webhook demo keeps every customer's order and dead-letters the poison ones, the pipeline writes
 * all 100,000 events to files exactly once. Only what Docker-free test machines need changes: the
 * cluster's URLs (`--servers`), ports picked by the system (`--port 0`), an output directory of
 * its own, and for the email worker a send rate high enough to finish in seconds. Each child is
 * bounded in time and killed (its whole process group) whatever happens.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, type TestCluster } from '../support/cluster.js';
import { startCluster } from './harness.js';

interface CommandResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** `npx tsx <script> <args>` from the repository root; killed if it outlives `timeoutMs`. */
async function runDocumented(script: string, args: string[], timeoutMs: number): Promise<CommandResult> {
  const child = spawn('npx', ['tsx', script, ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, FLOTILLA_SERVERS: undefined, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group, so npx, tsx and node go together when it is killed.
    detached: true,
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    const exited = new Promise<Pick<CommandResult, 'code' | 'signal'>>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code, signal) => resolve({ code, signal }));
    });
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${script} still running after ${timeoutMs} ms\n${stdout}\n${stderr}`)),
        timeoutMs,
      );
    });
    const { code, signal } = await Promise.race([exited, timedOut]);
    return { code, signal, stdout, stderr };
  } finally {
    clearTimeout(timer);
    killGroup(child);
  }
}

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // The group is already gone: the command exited and took its children with it.
  }
}

/** The one line of `output` matching `pattern`, as its capture groups. */
function reported(result: CommandResult, pattern: RegExp): string[] {
  const matches = result.stdout.split('\n').flatMap((line) => {
    const match = pattern.exec(line);
    return match === null ? [] : [match.slice(1)];
  });
  expect(matches, `one line matching ${pattern} in:\n${result.stdout}\n${result.stderr}`).toHaveLength(1);
  return matches[0]!;
}

/** Leader changes the command's client logged after its first leader: the only excuse for a duplicate. */
const failovers = (result: CommandResult) =>
  Math.max(0, result.stdout.split('\n').filter((line) => line.includes('leader is now')).length - 1);

let cluster: TestCluster;
let servers: string;

beforeAll(async () => {
  cluster = await startCluster();
  servers = cluster.urls().join(',');
}, 60_000);

afterAll(() => cluster?.stop());

describe('examples, run by their documented commands', () => {
  it('email-sending --burst 10000: every request accepted, each email sent once, within the rate bound', async () => {
    const result = await runDocumented(
      'examples/email-sending/main.ts',
      ['--burst', '10000', '--servers', servers, '--port', '0', '--rate', '5000', '--bucket', '200'],
      120_000,
    );
    expect(result.code, result.stderr).toBe(0);
    const [accepted, failed] = reported(
      result,
      /burst answered in [\d.]+ s: (\d+) accepted .*, (\d+) failed/,
    );
    expect([accepted, failed]).toEqual(['10000', '0']);
    const [sent, duplicates, retried, deadLettered] = reported(
      result,
      /all done: (\d+) emails sent, (\d+) duplicates, (\d+) temporary failures retried, (\d+) dead-lettered to emails\.dlq/,
    );
    expect([sent, retried, deadLettered]).toEqual(['10000', '0', '0']);
    if (failovers(result) === 0) expect(duplicates).toBe('0');
    const [most, bound] = reported(result, /most attempts in any 1 s: (\d+) \(bound (\d+)\)/);
    expect(Number(most)).toBeLessThanOrEqual(Number(bound));
    expect(Number(bound)).toBe(200 + 5000 + 1);
  }, 150_000);

  it('webhook-intake --flaky 0.3 --demo 40: all accepted, order kept per customer, poison dead-lettered', async () => {
    const result = await runDocumented(
      'examples/webhook-intake/main.ts',
      ['--flaky', '0.3', '--demo', '40', '--retry-delay-ms', '200', '--servers', servers, '--port', '0'],
      90_000,
    );
    expect(result.code, result.stderr).toBe(0);
    expect(reported(result, /provider: (\d+) of (\d+) webhooks accepted with 202/)).toEqual(['40', '40']);
    const [processed, deadLettered] = reported(
      result,
      /done: (\d+) processed, (\d+) dead-lettered to webhooks\.dlq/,
    ).map(Number);
    // Every 7th of 40 is poison (5); a good one fails 5 flaky attempts in a row only rarely.
    expect(processed! + deadLettered!).toBe(40);
    expect(deadLettered).toBeGreaterThanOrEqual(5);
    expect(reported(result, /per-customer order kept: (\w+)/)).toEqual(['yes']);
  }, 120_000);

  it('pipeline-buffering --count 100000: every event written to a file exactly once', async () => {
    const outDir = mkdtempSync(join(tmpdir(), 'flotilla-pipeline-'));
    try {
      const result = await runDocumented(
        'examples/pipeline-buffering/main.ts',
        ['--count', '100000', '--servers', servers, '--out', outDir],
        120_000,
      );
      expect(result.code, result.stderr).toBe(0);
      expect(reported(result, /published (\d+) events \((\d+) already stored\)/)).toEqual(['100000', '0']);
      const [distinct, lines, duplicated, bad] = reported(
        result,
        /output: (\d+) distinct events in \d+ files \((\d+) lines\), (\d+) duplicated, .*, (\d+) bad lines/,
      );
      expect([distinct, bad]).toEqual(['100000', '0']);
      if (failovers(result) === 0) expect([lines, duplicated]).toEqual(['100000', '0']);
    } finally {
      rmSync(outDir, { recursive: true, force: true });
    }
  }, 150_000);
});
