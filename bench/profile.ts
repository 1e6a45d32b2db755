/**
 * Where a node's time goes: reads V8 CPU profiles written by `npm run bench -- --profile DIR`
 * and prints, per node, how busy it was during the workload's timed part and the functions and
 * code areas with the most self time, as shares of busy (non-idle) time.
 *
 *   npx tsx bench/profile.ts DIR/W1-run1 [--top 20] [--whole]
 *
 * `timed-window.json` (written by the suite) bounds the samples to the timed part and names the
 * leader; `--whole` keeps the whole process lifetime instead.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { type CpuProfile, renderSummary, summarize } from './lib/cpu-profile.js';

interface NodeNote {
  nodeId: string;
  pid: number | null;
  role: string;
}

function main(): void {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { top: { type: 'string', default: '20' }, whole: { type: 'boolean', default: false } },
  });
  const dir = positionals[0];
  if (dir === undefined) throw new Error('usage: tsx bench/profile.ts DIR [--top N] [--whole]');
  const readJson = <T>(name: string): T | null =>
    existsSync(join(dir, name)) ? (JSON.parse(readFileSync(join(dir, name), 'utf8')) as T) : null;
  const nodes = readJson<NodeNote[]>('nodes.json') ?? [];
  const timed = readJson<{ workload: string; leaderId: string | null; windowUs: [number, number] }>(
    'timed-window.json',
  );
  const [fromUs, toUs] = values.whole || timed === null ? [-Infinity, Infinity] : timed.windowUs;
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  for (const file of files) {
    const pid = Number(file.split('.')[3]);
    const note = nodes.find((n) => n.pid === pid);
    const led = note !== undefined && timed?.leaderId === note.nodeId;
    const who =
      note === undefined ? `pid ${pid}` : `${note.nodeId}${led ? ' (leader in the timed part)' : ''}`;
    const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
    const scope = Number.isFinite(fromUs) ? `${timed?.workload} timed part` : 'whole process';
    process.stdout.write(
      `${renderSummary(`${who}, ${scope}`, summarize(profile, fromUs, toUs), Number(values.top))}\n\n`,
    );
  }
}

main();
