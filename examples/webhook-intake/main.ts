/**
 * Webhook intake, end to end: an HTTP endpoint that stores each webhook (202 only after the
 * publish is confirmed) and processors that handle them with retries, exponential backoff, a
 * dead-letter queue and per-customer order.
 *
 *   npx tsx examples/webhook-intake/main.ts                        # intake + processor
 *   npx tsx examples/webhook-intake/main.ts --flaky 0.3 --demo 40  # flaky processing, 40 webhooks, report
 *   npx tsx examples/webhook-intake/main.ts --role processor       # one more processor
 *
 * Ctrl-C stops taking webhooks, lets those in progress finish, and closes the client (which drains).
 */

import { parseArgs } from 'node:util';
import { connect, type FlotillaClient } from '@flotilla/client';
import { choiceFlag, numberFlag } from '../common/flags.js';
import { type Logger, plainLogger } from '../common/log.js';
import { resolveServers } from '../common/servers.js';
import { describeError, stopOnSignal } from '../common/shutdown.js';
import { startWebhookIntake, type WebhookIntake } from './intake.js';
import {
  demoProcessor,
  setupWebhookQueues,
  startWebhookProcessor,
  type WebhookProcessor,
} from './processor.js';
import { deliverWebhook, demoWebhooks } from './provider.js';
import { jsonBody, WEBHOOK_DLQ, WEBHOOK_QUEUE, type WebhookEvent } from './webhook.js';

const HELP = `Usage: npx tsx examples/webhook-intake/main.ts [options]

  --servers URLS        cluster URLs, comma-separated (default FLOTILLA_SERVERS, else the flotilla dev nodes)
  --role ROLE           all (default), intake or processor
  --host HOST           intake address (default 127.0.0.1)
  --port PORT           intake port (default 8026)
  --prefetch N          webhooks in progress at once per processor (default 50)
  --flaky F             share of processing attempts that fail (0..1, default 0), to show retries
  --max-deliveries N    attempts before a webhook is dead-lettered (default 5)
  --retry-delay-ms MS   first retry delay; doubles each attempt up to 60 s (default 1000)
  --demo N              (role all) post N webhooks for 4 customers, every 7th poison, wait, report, exit
`;

const DEMO_CUSTOMERS = ['acme', 'globex', 'initech', 'umbrella'];
const DEMO_POISON_EVERY = 7;

interface Settings {
  servers: string[];
  role: 'all' | 'intake' | 'processor';
  host: string;
  port: number;
  prefetch: number;
  failRate: number;
  maxDeliveries: number;
  retryDelayMs: number;
  demo: number;
}

function readSettings(argv: string[]): Settings | null {
  const { values } = parseArgs({
    args: argv,
    options: {
      servers: { type: 'string' },
      role: { type: 'string', default: 'all' },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '8026' },
      prefetch: { type: 'string', default: '50' },
      flaky: { type: 'string', default: '0' },
      'max-deliveries': { type: 'string', default: '5' },
      'retry-delay-ms': { type: 'string', default: '1000' },
      demo: { type: 'string', default: '0' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return null;
  const role = choiceFlag(values.role, 'role', ['all', 'intake', 'processor'] as const);
  const demo = numberFlag(values.demo, 'demo');
  if (demo > 0 && role !== 'all') throw new RangeError('--demo needs --role all');
  return {
    servers: resolveServers(values.servers),
    role,
    host: values.host,
    port: numberFlag(values.port, 'port', { max: 65_535 }),
    prefetch: numberFlag(values.prefetch, 'prefetch', { min: 1, max: 10_000 }),
    failRate: numberFlag(values.flaky, 'flaky', { max: 1, integer: false }),
    maxDeliveries: numberFlag(values['max-deliveries'], 'max-deliveries', { min: 1, max: 1000 }),
    retryDelayMs: numberFlag(values['retry-delay-ms'], 'retry-delay-ms', { min: 1, max: 60_000 }),
    demo,
  };
}

interface Running {
  client: FlotillaClient;
  intake: WebhookIntake | undefined;
  processor: WebhookProcessor | undefined;
  processed: WebhookEvent[];
}

async function start(settings: Settings, log: Logger): Promise<Running> {
  const client = await connect({ servers: settings.servers, name: `webhook-example-${settings.role}` });
  client.on('leaderChanged', ({ leaderId }) => log.info(`leader is now ${leaderId ?? 'unknown'}`));
  client.on('error', (error) => log.warn(`client: ${describeError(error)}`));
  await setupWebhookQueues(client, {
    maxDeliveries: settings.maxDeliveries,
    visibilityTimeoutMs: 30_000,
    retry: { backoff: 'exponential', delayMs: settings.retryDelayMs, maxDelayMs: 60_000 },
  });
  const running: Running = { client, intake: undefined, processor: undefined, processed: [] };
  if (settings.role !== 'intake') {
    const workerLog = plainLogger('webhook-worker');
    running.processor = await startWebhookProcessor({
      client,
      prefetch: settings.prefetch,
      log: workerLog,
      process: demoProcessor({
        failRate: settings.failRate,
        log: workerLog,
        onProcessed: (event) => running.processed.push(event),
      }),
    });
  }
  if (settings.role !== 'processor') {
    running.intake = await startWebhookIntake({
      client,
      host: settings.host,
      port: settings.port,
      log: plainLogger('webhook-intake'),
    });
  }
  return running;
}

/** The clean stop: no new webhooks, those in progress finish, then the client drains and closes. */
async function stop(running: Running): Promise<void> {
  await running.intake?.close();
  await running.processor?.close();
  await running.client.close();
}

/** Posts the demo traffic to our own intake, waits until the queue is empty, and reports. */
async function runDemo(settings: Settings, running: Running, log: Logger): Promise<void> {
  const { client, intake } = running;
  if (intake === undefined) throw new Error('the demo needs the intake');
  const before = await client.queueStats(WEBHOOK_QUEUE);
  const webhooks = demoWebhooks(settings.demo, DEMO_CUSTOMERS, DEMO_POISON_EVERY);
  // Like a provider: one customer's webhooks in order (each after the previous got its 202),
  // customers in parallel.
  let accepted = 0;
  await Promise.all(
    DEMO_CUSTOMERS.map(async (customer) => {
      for (const w of webhooks.filter((webhook) => webhook.customer === customer)) {
        const outcome = await deliverWebhook(intake.url, w.customer, w.deliveryId, w.payload);
        if (outcome.status === 202) accepted++;
      }
    }),
  );
  log.info(`provider: ${accepted} of ${webhooks.length} webhooks accepted with 202`);
  for (;;) {
    const stats = await client.queueStats(WEBHOOK_QUEUE);
    if (stats.depth === 0) {
      const deadLettered = stats.deadLetteredCount - before.deadLetteredCount;
      log.info(
        `done: ${running.processed.length} processed, ${deadLettered} dead-lettered to ${WEBHOOK_DLQ}`,
      );
      log.info(`per-customer order kept: ${orderKept(running.processed) ? 'yes' : 'NO'}`);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** Whether each customer's webhooks were processed in the order they were sent (`n` increasing). */
function orderKept(processed: readonly WebhookEvent[]): boolean {
  const lastByCustomer = new Map<string, number>();
  for (const event of processed) {
    const n = (jsonBody(event) as { n: number }).n;
    if (n <= (lastByCustomer.get(event.customer) ?? -1)) return false;
    lastByCustomer.set(event.customer, n);
  }
  return true;
}

async function main(): Promise<void> {
  const log = plainLogger('webhook-example');
  const settings = readSettings(process.argv.slice(2));
  if (settings === null) {
    process.stdout.write(HELP);
    return;
  }
  const running = await start(settings, log);
  stopOnSignal(() => stop(running), log);
  if (settings.demo > 0) {
    await runDemo(settings, running, log);
    await stop(running);
    process.exit(0);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`webhook example: ${describeError(error)}\n`);
  process.exit(1);
});
