/**
 * `npm run bench` (= `tsc -b && tsx bench/run.ts`): runs the workloads W1–W6 of
 * shared/BENCHMARKS.md against fresh local 3-node clusters and prints a table; see README.md.
 *
 *   npm run bench -- [--only W1,W3] [--runs 3] [--json out.json] [--quick] [--w6-messages N]
 *                    [--profile DIR] [--lock FILE|none] [--server-args="..."]
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { DEFAULT_LOCK_FILE } from './lib/lock.js';
import { renderReport } from './lib/report.js';
import { runSuite, type SuiteOptions } from './suite.js';
import { FULL_SIZES, QUICK_SIZES, WORKLOAD_IDS, type WorkloadId } from './workloads/types.js';

const HELP = `Usage: npm run bench -- [options]

  --only W1,W3        workloads to run (default: W1,W2,W3,W4,W5,W6)
  --runs N            runs of each workload, each on a fresh cluster; medians reported (default 3)
  --json FILE         also write the full report (every run, CPU, details) as JSON
  --quick             small smoke run: 1 run, W1/W3 10k messages, W6 100k (see README.md)
  --w6-messages N     W6 backlog size (default ${FULL_SIZES.w6Messages.toLocaleString('en-US')}; --quick: ${QUICK_SIZES.w6Messages.toLocaleString('en-US')})
  --profile DIR       run the nodes under node --cpu-prof; profiles land in DIR/<W>-run<n>/
  --lock FILE|none    hold this flock lock during each workload run (default ${DEFAULT_LOCK_FILE})
  --server-args="..." extra flotilla server flags for every node (experiments; reported in the JSON)
  -h, --help          this text
`;

class UsageError extends Error {}

function positiveInteger(value: string, flag: string): number {
  const n = Number(value.replaceAll('_', ''));
  if (!Number.isInteger(n) || n < 1)
    throw new UsageError(`${flag}: expected a positive integer, got ${value}`);
  return n;
}

function workloadList(value: string): WorkloadId[] {
  const ids = value.split(',').map((s) => s.trim().toUpperCase());
  for (const id of ids) {
    if (!(WORKLOAD_IDS as readonly string[]).includes(id)) {
      throw new UsageError(`--only: unknown workload ${id} (known: ${WORKLOAD_IDS.join(', ')})`);
    }
  }
  return WORKLOAD_IDS.filter((id) => ids.includes(id));
}

/** Suite options from the command line; throws UsageError naming the flag. */
function optionsFromArgs(argv: string[]): (SuiteOptions & { jsonFile: string | null }) | null {
  const { values } = parseArgs({
    args: argv,
    options: {
      only: { type: 'string' },
      runs: { type: 'string' },
      json: { type: 'string' },
      quick: { type: 'boolean', default: false },
      'w6-messages': { type: 'string' },
      profile: { type: 'string' },
      lock: { type: 'string' },
      'server-args': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return null;
  const sizes = { ...(values.quick ? QUICK_SIZES : FULL_SIZES) };
  if (values['w6-messages'] !== undefined)
    sizes.w6Messages = positiveInteger(values['w6-messages'], '--w6-messages');
  const lock = values.lock ?? DEFAULT_LOCK_FILE;
  return {
    only: values.only === undefined ? [...WORKLOAD_IDS] : workloadList(values.only),
    runs: values.runs === undefined ? (values.quick ? 1 : 3) : positiveInteger(values.runs, '--runs'),
    sizes,
    lockFile: lock === 'none' ? null : lock,
    profileDir: values.profile ?? null,
    serverArgs: values['server-args']?.split(/\s+/).filter((a) => a !== '') ?? [],
    jsonFile: values.json ?? null,
    log: (line) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`),
  };
}

async function main(): Promise<number> {
  let options: ReturnType<typeof optionsFromArgs>;
  try {
    options = optionsFromArgs(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : error}\n\n${HELP}`);
    return 2;
  }
  if (options === null) {
    process.stdout.write(HELP);
    return 0;
  }
  const report = await runSuite(options);
  process.stdout.write(`${renderReport(report)}\n`);
  if (options.jsonFile !== null) {
    writeFileSync(options.jsonFile, `${JSON.stringify(report, null, 2)}\n`);
    process.stderr.write(`JSON report written to ${options.jsonFile}\n`);
  }
  const failed = report.workloads.some((w) => w.runs.some((r) => r.error !== null));
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : error}\n`);
    process.exit(1);
  },
);
