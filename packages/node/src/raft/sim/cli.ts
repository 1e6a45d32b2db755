/**
 * `npm run sim -- --seeds N [--seed S] [--steps K] [--stats] [--storage mem|wal]`: runs the deterministic cluster simulation over
 * seeds 1..N (or only seed S). On a violation it prints the seed, what broke, the last events and
 * the command that replays the run, and exits 1. On success the last line is exactly
 * `sim: <N> seeds, <steps> steps, <faults> faults, 0 violations`. `--stats` first lists how often
 * each interesting event (elections, installs, membership changes, ...) happened. By default every
 * node runs on the production write-ahead log over the storage layer's in-memory disk, which loses
 * unsynced writes on a crash; `--storage mem` uses a small in-memory model instead (faster).
 */
import { runSimulation, type SimResult } from './simulation.js';

export const DEFAULT_STEPS = 4000;

interface CliOptions {
  seeds: number;
  seed: number | null;
  steps: number;
  stats: boolean;
  storage: 'mem' | 'wal';
}

function parseArgs(argv: string[]): CliOptions | string {
  const options: CliOptions = { seeds: 200, seed: null, steps: DEFAULT_STEPS, stats: false, storage: 'wal' };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === '--stats') {
      options.stats = true;
      continue;
    }
    if (flag === '--storage') {
      const kind = argv[++i];
      if (kind !== 'mem' && kind !== 'wal') return '--storage takes mem or wal';
      options.storage = kind;
      continue;
    }
    const value = Number(argv[i + 1]);
    if (!Number.isSafeInteger(value) || value < 0) return `${flag} needs a non-negative integer`;
    if (flag === '--seeds') options.seeds = value;
    else if (flag === '--seed') options.seed = value;
    else if (flag === '--steps') options.steps = value;
    else return `unknown flag ${flag}`;
    i++;
  }
  return options;
}

function report(result: SimResult, options: CliOptions): string {
  const storage = options.storage === 'mem' ? ' --storage mem' : '';
  return [
    `FAIL seed ${result.seed} at ${result.virtualTimeMs} ms (virtual), step ${result.steps}:`,
    ...result.violations.map((v) => `  ${v}`),
    'last events:',
    ...result.trace.slice(-40).map((line) => `  ${line}`),
    `replay: npm run sim -- --seed ${result.seed} --steps ${options.steps}${storage}`,
  ].join('\n');
}

export function main(argv: string[], out: (line: string) => void): number {
  const options = parseArgs(argv);
  if (typeof options === 'string') {
    out(
      `sim: ${options}\nusage: npm run sim -- --seeds N [--seed S] [--steps K] [--stats] [--storage mem|wal]`,
    );
    return 2;
  }
  const seeds =
    options.seed === null ? Array.from({ length: options.seeds }, (_, i) => i + 1) : [options.seed];
  let steps = 0;
  let faults = 0;
  const coverage = new Map<string, number>();
  let recoveryMsMax = 0;
  for (const seed of seeds) {
    const result = runSimulation({ seed, steps: options.steps, storage: options.storage });
    steps += result.steps;
    faults += result.faults;
    for (const [event, n] of result.coverage) coverage.set(event, (coverage.get(event) ?? 0) + n);
    recoveryMsMax = Math.max(recoveryMsMax, result.recoveryMs);
    if (result.violations.length > 0) {
      out(report(result, options));
      return 1;
    }
  }
  if (options.stats) {
    for (const [event, n] of [...coverage].sort()) out(`  ${String(n).padStart(8)}  ${event}`);
    out(`  slowest recovery after healing: ${recoveryMsMax} ms (virtual)`);
  }
  out(`sim: ${seeds.length} seeds, ${steps} steps, ${faults} faults, 0 violations`);
  return 0;
}

const invokedDirectly = process.argv[1]?.endsWith('/raft/sim/cli.js') === true;
if (invokedDirectly)
  process.exitCode = main(process.argv.slice(2), (line) => process.stdout.write(`${line}\n`));
