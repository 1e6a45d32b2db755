/**
 * `npm run chaos -- --nodes 3|5 --duration 60 --seed S`: runs one chaos campaign against real
 * `flotilla server` processes (built with `tsc -b`) and ends with the checker's summary line,
 * `chaos: <faults> faults, <confirmed> confirmed, <lost> lost, <dups> duplicates, <n> violations`.
 *
 * Exit codes: 0 when the checker found no violation, 1 when it found some, 2 when the campaign
 * itself could not run (bad flags, a cluster that would not start). Without `--seed` a random
 * seed is drawn and printed; the plan and the replay command are printed before anything starts.
 * Ctrl-C stops every process and proxy before exiting.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { replayCommand, runCampaign } from './campaign.js';
import { checkHistory, formatReport, summaryLine } from './checker.js';
import { type FinalState, readHistory } from './history.js';
import { FAULT_KINDS, type FaultKind } from './nemesis.js';

const USAGE = `usage: npm run chaos -- [--nodes 3|5] [--duration seconds] [--seed n] [--kinds k1,k2] [--gap-ms min,max] [--rate x] [--out dir]
       npm run chaos -- --check test-output/chaos/<seed>   (judge a recorded campaign again)
fault kinds: ${FAULT_KINDS.join(', ')}`;

function fail(message: string): never {
  process.stderr.write(`chaos: ${message}\n${USAGE}\n`);
  process.exit(2);
}

function positiveNumber(text: string | undefined, name: string, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0)
    fail(`--${name} must be a positive number, got ${JSON.stringify(text)}`);
  return value;
}

function parseKinds(text: string | undefined): FaultKind[] | undefined {
  if (text === undefined) return undefined;
  const kinds = text.split(',').map((k) => k.trim());
  for (const kind of kinds) {
    if (!(FAULT_KINDS as readonly string[]).includes(kind))
      fail(`unknown fault kind ${JSON.stringify(kind)}`);
  }
  return kinds as FaultKind[];
}

function parseGap(text: string | undefined): [number, number] | undefined {
  if (text === undefined) return undefined;
  const parts = text.split(',').map(Number);
  const [min, max] = parts;
  if (parts.length !== 2 || min === undefined || max === undefined || !(min >= 0 && min <= max))
    fail(`--gap-ms must be min,max in ms with 0 <= min <= max, got ${JSON.stringify(text)}`);
  return [min, max];
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      nodes: { type: 'string' },
      duration: { type: 'string' },
      seed: { type: 'string' },
      kinds: { type: 'string' },
      'gap-ms': { type: 'string' },
      rate: { type: 'string' },
      out: { type: 'string' },
      check: { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (values.check !== undefined) return recheck(values.check);
  const nodes = positiveNumber(values.nodes, 'nodes', 3);
  if (nodes !== 3 && nodes !== 5) fail(`--nodes must be 3 or 5, got ${nodes}`);
  const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
  if (!Number.isSafeInteger(seed) || seed < 0)
    fail(`--seed must be a non-negative integer, got ${values.seed}`);
  const options = {
    nodes,
    durationMs: positiveNumber(values.duration, 'duration', 60) * 1000,
    seed,
    kinds: parseKinds(values.kinds),
    gapMs: parseGap(values['gap-ms']),
    rate: positiveNumber(values.rate, 'rate', 1),
    outDir: values.out,
    log: (line: string) => process.stdout.write(`${line}\n`),
  };
  try {
    const result = await runCampaign(options);
    process.stdout.write(
      `campaign took ${(result.elapsedMs / 1000).toFixed(1)} s; output in ${result.outDir}\n`,
    );
    process.stdout.write(`${result.summary}\n`);
    return result.report.violations.length === 0 ? 0 : 1;
  } catch (error) {
    process.stderr.write(`chaos: the campaign could not run: ${(error as Error).message}\n`);
    process.stderr.write(`replay: ${replayCommand(options)}\n`);
    return 2;
  }
}

/** Runs the checker again on a campaign's recorded history and final state. */
function recheck(dir: string): number {
  const final = JSON.parse(readFileSync(join(dir, 'final.json'), 'utf8')) as FinalState;
  const report = checkHistory(readHistory(join(dir, 'history.jsonl')), final);
  process.stdout.write(`${formatReport(report)}\n${summaryLine(report)}\n`);
  return report.violations.length === 0 ? 0 : 1;
}

// On Ctrl-C the harness's exit hook kills every server process (exit runs 'exit' listeners).
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`chaos: ${signal}, stopping\n`);
    process.exit(130);
  });
}

process.exit(await main());
