/**
 * Pipeline buffering, end to end: a producer publishes product events at a high rate and a batch
 * writer turns them into one JSON-lines file per batch of up to 500 events (or per second).
 *
 *   npx tsx examples/pipeline-buffering/main.ts --count 100000     # produce, write, verify, exit
 *   npx tsx examples/pipeline-buffering/main.ts --role writer      # only the writer, until Ctrl-C
 *   npx tsx examples/pipeline-buffering/main.ts --role producer --count 50000 --rate 5000
 *
 * Ctrl-C stops taking events, lets the batch being written finish (and be acked), and closes the
 * client (which drains).
 */

import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { connect, type FlotillaClient } from '@flotilla/client';
import { choiceFlag, numberFlag } from '../common/flags.js';
import { type Logger, plainLogger } from '../common/log.js';
import { resolveServers } from '../common/servers.js';
import { describeError, stopOnSignal } from '../common/shutdown.js';
import { EVENTS_QUEUE } from './events.js';
import { runProducer } from './producer.js';
import { describeReport, verifyOutput } from './verify.js';
import { type BatchWriter, setupEventQueues, startBatchWriter } from './writer.js';

const HELP = `Usage: npx tsx examples/pipeline-buffering/main.ts [options]

  --servers URLS      cluster URLs, comma-separated (default FLOTILLA_SERVERS, else the flotilla dev nodes)
  --role ROLE         all (default: produce, write, verify, exit), producer or writer
  --count N           events to publish (default 100000)
  --rate N            events per second at most, 0 = as fast as confirmed (default 0)
  --run-id ID         event id prefix; re-running with the same id publishes nothing new
  --out DIR           where batch files go (default ./pipeline-out)
  --max-messages N    events per file at most (default 500)
  --max-wait-ms MS    a file is written this long after its first event at the latest (default 1000)
`;

interface Settings {
  servers: string[];
  role: 'all' | 'producer' | 'writer';
  count: number;
  ratePerSec: number;
  runId: string;
  outDir: string;
  maxMessages: number;
  maxWaitMs: number;
}

function readSettings(argv: string[]): Settings | null {
  const { values } = parseArgs({
    args: argv,
    options: {
      servers: { type: 'string' },
      role: { type: 'string', default: 'all' },
      count: { type: 'string', default: '100000' },
      rate: { type: 'string', default: '0' },
      'run-id': { type: 'string' },
      out: { type: 'string', default: 'pipeline-out' },
      'max-messages': { type: 'string', default: '500' },
      'max-wait-ms': { type: 'string', default: '1000' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return null;
  return {
    servers: resolveServers(values.servers),
    role: choiceFlag(values.role, 'role', ['all', 'producer', 'writer'] as const),
    count: numberFlag(values.count, 'count'),
    ratePerSec: numberFlag(values.rate, 'rate'),
    runId: values['run-id'] ?? `run-${Date.now().toString(36)}`,
    outDir: resolve(values.out),
    maxMessages: numberFlag(values['max-messages'], 'max-messages', { min: 1, max: 5_000 }),
    maxWaitMs: numberFlag(values['max-wait-ms'], 'max-wait-ms', { max: 600_000 }),
  };
}

async function produce(settings: Settings, client: FlotillaClient, log: Logger): Promise<void> {
  log.info(`publishing ${settings.count} events (run ${settings.runId})`);
  const result = await runProducer({
    client,
    count: settings.count,
    runId: settings.runId,
    ratePerSec: settings.ratePerSec,
    log: plainLogger('producer'),
  });
  const perSec = Math.round(((result.published + result.duplicates) * 1000) / Math.max(result.elapsedMs, 1));
  log.info(
    `published ${result.published} events (${result.duplicates} already stored) in ` +
      `${(result.elapsedMs / 1000).toFixed(1)} s: ${perSec} events/s`,
  );
}

/** Waits until every event is written (the queue is empty), then checks the files. */
async function verifyWhenDrained(settings: Settings, client: FlotillaClient, log: Logger): Promise<void> {
  while ((await client.queueStats(EVENTS_QUEUE)).depth > 0) {
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  const report = await verifyOutput(settings.outDir, settings.runId);
  log.info(`output: ${describeReport(report)}`);
  if (report.unique !== settings.count) log.warn(`expected ${settings.count} distinct events`);
}

async function main(): Promise<void> {
  const log = plainLogger('pipeline');
  const settings = readSettings(process.argv.slice(2));
  if (settings === null) {
    process.stdout.write(HELP);
    return;
  }
  const client = await connect({ servers: settings.servers, name: `pipeline-example-${settings.role}` });
  client.on('leaderChanged', ({ leaderId }) => log.info(`leader is now ${leaderId ?? 'unknown'}`));
  client.on('error', (error) => log.warn(`client: ${describeError(error)}`));
  await setupEventQueues(client);
  let writer: BatchWriter | undefined;
  const stop = async () => {
    await writer?.close();
    await client.close();
  };
  stopOnSignal(stop, log);
  if (settings.role !== 'producer') {
    writer = await startBatchWriter({
      client,
      outDir: settings.outDir,
      maxMessages: settings.maxMessages,
      maxWaitMs: settings.maxWaitMs,
      log: plainLogger('batch-writer'),
    });
  }
  if (settings.role === 'writer') return; // runs until Ctrl-C
  await produce(settings, client, log);
  if (settings.role === 'all') await verifyWhenDrained(settings, client, log);
  await stop();
  process.exit(0);
}

main().catch((error: unknown) => {
  process.stderr.write(`pipeline example: ${describeError(error)}\n`);
  process.exit(1);
});
