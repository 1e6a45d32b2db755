/**
 * Email sending, end to end: a web handler that enqueues "send email" jobs and answers 202 at
 * once, and a worker that sends them to a fake SMTP sink at a bounded rate.
 *
 *   npx tsx examples/email-sending/main.ts                 # web handler + worker
 *   npx tsx examples/email-sending/main.ts --burst 10000   # ...then fire 10,000 requests and report
 *   npx tsx examples/email-sending/main.ts --role worker   # only a worker (scale out)
 *
 * Ctrl-C stops taking requests, lets jobs in hand finish, and closes the client (which drains).
 */

import { parseArgs } from 'node:util';
import { connect, type FlotillaClient } from '@flotilla/client';
import { choiceFlag, numberFlag } from '../common/flags.js';
import { type Logger, plainLogger } from '../common/log.js';
import { resolveServers } from '../common/servers.js';
import { describeError, stopOnSignal } from '../common/shutdown.js';
import { fireBurst } from './burst.js';
import { EMAIL_DLQ, EMAIL_QUEUE } from './email.js';
import { FakeSmtpSink } from './sink.js';
import { maxInWindow } from './token-bucket.js';
import { type EmailWeb, startEmailWeb } from './web.js';
import { type EmailWorker, setupEmailQueues, startEmailWorker } from './worker.js';

const HELP = `Usage: npx tsx examples/email-sending/main.ts [options]

  --servers URLS     cluster URLs, comma-separated (default FLOTILLA_SERVERS, else the flotilla dev nodes)
  --role ROLE        all (default), web or worker
  --host HOST        web handler address (default 127.0.0.1)
  --port PORT        web handler port (default 8025)
  --rate N           emails sent per second at most (default 200)
  --bucket N         token bucket capacity: sends allowed at once after a pause (default 20)
  --prefetch N       jobs the worker holds at once (default 100)
  --fail-rate F      share of sends the fake SMTP sink refuses (0..1, default 0), to show retries
  --sink-file PATH   append every sent email to this JSON-lines file
  --burst N          (role all) fire N requests at the handler, wait until all are sent, report, exit
`;

interface Settings {
  servers: string[];
  role: 'all' | 'web' | 'worker';
  host: string;
  port: number;
  ratePerSec: number;
  bucket: number;
  prefetch: number;
  failRate: number;
  sinkFile: string | undefined;
  burst: number;
}

function readSettings(argv: string[]): Settings | null {
  const { values } = parseArgs({
    args: argv,
    options: {
      servers: { type: 'string' },
      role: { type: 'string', default: 'all' },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '8025' },
      rate: { type: 'string', default: '200' },
      bucket: { type: 'string', default: '20' },
      prefetch: { type: 'string', default: '100' },
      'fail-rate': { type: 'string', default: '0' },
      'sink-file': { type: 'string' },
      burst: { type: 'string', default: '0' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return null;
  const role = choiceFlag(values.role, 'role', ['all', 'web', 'worker'] as const);
  const burst = numberFlag(values.burst, 'burst');
  if (burst > 0 && role !== 'all')
    throw new RangeError('--burst needs --role all (the sink lives in the worker)');
  return {
    servers: resolveServers(values.servers),
    role,
    host: values.host,
    port: numberFlag(values.port, 'port', { max: 65_535 }),
    ratePerSec: numberFlag(values.rate, 'rate', { min: 0.001, integer: false }),
    bucket: numberFlag(values.bucket, 'bucket', { min: 1 }),
    prefetch: numberFlag(values.prefetch, 'prefetch', { min: 1, max: 10_000 }),
    failRate: numberFlag(values['fail-rate'], 'fail-rate', { max: 1, integer: false }),
    sinkFile: values['sink-file'],
    burst,
  };
}

interface Running {
  client: FlotillaClient;
  sink: FakeSmtpSink | undefined;
  web: EmailWeb | undefined;
  worker: EmailWorker | undefined;
}

async function start(settings: Settings, log: Logger): Promise<Running> {
  const client = await connect({ servers: settings.servers, name: `email-example-${settings.role}` });
  client.on('leaderChanged', ({ leaderId }) => log.info(`leader is now ${leaderId ?? 'unknown'}`));
  client.on('error', (error) => log.warn(`client: ${describeError(error)}`));
  await setupEmailQueues(client);
  const running: Running = { client, sink: undefined, web: undefined, worker: undefined };
  if (settings.role !== 'web') {
    running.sink = new FakeSmtpSink({ failRate: settings.failRate, file: settings.sinkFile });
    running.worker = await startEmailWorker({
      client,
      sink: running.sink,
      ratePerSec: settings.ratePerSec,
      burst: settings.bucket,
      prefetch: settings.prefetch,
      log: plainLogger('email-worker'),
    });
  }
  if (settings.role !== 'worker') {
    running.web = await startEmailWeb({
      client,
      host: settings.host,
      port: settings.port,
      log: plainLogger('email-web'),
    });
  }
  return running;
}

/** The clean stop: no new requests, jobs in hand finish, then the client drains and closes. */
async function stop(running: Running): Promise<void> {
  await running.web?.close();
  await running.worker?.close();
  await running.client.close();
  await running.sink?.close();
}

/** Fires the burst at our own handler, waits until the queue is empty, and reports. */
async function runBurst(settings: Settings, running: Running, log: Logger): Promise<void> {
  const { client, web, sink } = running;
  if (web === undefined || sink === undefined)
    throw new Error('the burst needs the web handler and the worker');
  const before = await client.queueStats(EMAIL_QUEUE);
  log.info(`firing ${settings.burst} requests at ${web.url}/send`);
  const burst = await fireBurst({ url: web.url, count: settings.burst, concurrency: 100 });
  log.info(
    `burst answered in ${(burst.elapsedMs / 1000).toFixed(1)} s: ${burst.accepted} accepted ` +
      `(${Math.round((burst.accepted * 1000) / burst.elapsedMs)}/s), ${burst.failed} failed, ` +
      `refusals ${JSON.stringify(burst.refusals)}`,
  );
  for (;;) {
    const stats = await client.queueStats(EMAIL_QUEUE);
    if (stats.depth === 0) {
      reportBurst(settings, sink, stats.deadLetteredCount - before.deadLetteredCount, log);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

function reportBurst(settings: Settings, sink: FakeSmtpSink, deadLettered: number, log: Logger): void {
  const summary = sink.summary();
  const times = sink.attemptTimesMs;
  const spanMs = (times.at(-1) ?? 0) - (times[0] ?? 0);
  const bound = settings.bucket + Math.ceil(settings.ratePerSec) + 1;
  log.info(
    `all done: ${summary.unique} emails sent, ${summary.duplicates} duplicates, ${summary.temporaryFailures} ` +
      `temporary failures retried, ${deadLettered} dead-lettered to ${EMAIL_DLQ}`,
  );
  log.info(
    `sending took ${(spanMs / 1000).toFixed(1)} s (${Math.round((summary.attempts * 1000) / Math.max(spanMs, 1))} ` +
      `attempts/s); most attempts in any 1 s: ${maxInWindow(times, 1000)} (bound ${bound})`,
  );
}

async function main(): Promise<void> {
  const log = plainLogger('email-example');
  const settings = readSettings(process.argv.slice(2));
  if (settings === null) {
    process.stdout.write(HELP);
    return;
  }
  const running = await start(settings, log);
  stopOnSignal(() => stop(running), log);
  if (settings.burst > 0) {
    await runBurst(settings, running, log);
    await stop(running);
    process.exit(0);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`email example: ${describeError(error)}\n`);
  process.exit(1);
});
