/**
 * The chaos workload: producers and consumers using the SDK the way applications do, recording
 * every client-visible event in the history.
 *
 * - Queues: a plain queue with short leases, a queue with message groups, and a retry queue whose
 *   messages are dead-lettered after a few deliveries into a dead-letter queue.
 * - Producers: with and without idempotency keys. The keyed ones retry a failed publish with the
 *   same key (as an application would after an unknown outcome), and now and then publish a
 *   confirmed key again on purpose. The group producer publishes each group strictly in sequence.
 * - Consumers: fast and slow push consumers (the slow ones sometimes outlive their lease), pull
 *   consumers, a consumer that nacks, and two that "crash": they close their client without
 *   settling what they hold, then come back as a new client. The dead-letter queue is drained by
 *   a push and a pull consumer.
 *
 * Pacing pauses only limit the load; nothing here waits for a condition by sleeping.
 */
import {
  connect,
  type FlotillaClient,
  isFlotillaError,
  type Message,
  type Subscription,
} from '@flotilla/client';
import type { HistoryWriter } from './history.js';
import { encodePayload } from './history.js';
import type { Rng } from './rng.js';

export const QUEUES = {
  plain: 'chaos.plain',
  groups: 'chaos.groups',
  retry: 'chaos.retry',
  dlq: 'chaos.dlq',
} as const;

/** Queues in creation order (a dead-letter queue before the queue that uses it), with their options. */
export const QUEUE_SETUP: { name: string; options: Record<string, unknown> }[] = [
  { name: QUEUES.plain, options: { visibilityTimeoutMs: 2_000 } },
  { name: QUEUES.groups, options: { visibilityTimeoutMs: 3_000 } },
  { name: QUEUES.dlq, options: {} },
  {
    name: QUEUES.retry,
    options: {
      visibilityTimeoutMs: 3_000,
      maxDeliveries: 3,
      deadLetterQueue: QUEUES.dlq,
      retry: { backoff: 'fixed', delayMs: 200, maxDelayMs: 0 },
    },
  },
];

/** Deadline of one SDK request across its own retries and failovers (consumers, setup). */
const REQUEST_TIMEOUT_MS = 10_000;
/**
 * Producers give up sooner, shorter than most faults last, so publishes of unknown outcome
 * (TIMEOUT after the request was sent) really happen and the keyed producers' retries with the
 * same key are exercised.
 */
const PUBLISH_TIMEOUT_MS = 3_000;
const CONNECT_TIMEOUT_MS = 10_000;
const KEYED_PUBLISH_ATTEMPTS = 5;
const GROUPS = ['g0', 'g1', 'g2'];

export interface WorkloadOptions {
  /**
   * The cluster's client URLs now. Each client is configured with the list current when it
   * connects and keeps it, as an application would: a long-lived client whose configured nodes
   * were all removed can only follow the leader's advertised address.
   */
  urls: () => string[];
  history: HistoryWriter;
  rng: Rng;
  /** Progress lines for people (connect failures and the like). */
  log: (line: string) => void;
  /** Multiplies every producer's pace (default 1; lower means fewer messages per second). */
  rate?: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function errorFacts(error: unknown): { code: string; maybeApplied: boolean } {
  if (isFlotillaError(error)) return { code: error.code, maybeApplied: error.maybeApplied };
  // Anything else is a bug somewhere; treat the outcome as unknown rather than as a refusal.
  return { code: `NON_FLOTILLA:${(error as Error)?.message ?? String(error)}`, maybeApplied: true };
}

/** Connects with retries until it works or `stillWanted()` turns false. */
async function connectClient(
  urls: string[],
  name: string,
  stillWanted: () => boolean,
  log: (line: string) => void,
  requestTimeoutMs = REQUEST_TIMEOUT_MS,
): Promise<FlotillaClient | null> {
  while (stillWanted()) {
    try {
      const client = await connect({
        servers: urls,
        name,
        requestTimeoutMs,
        connectTimeoutMs: CONNECT_TIMEOUT_MS,
      });
      client.on('error', () => {});
      return client;
    } catch (error) {
      log(`${name}: connect failed (${errorFacts(error).code}), retrying`);
      await sleep(500);
    }
  }
  return null;
}

/** Creates the workload's queues, tolerating QUEUE_EXISTS (a retried create may have worked). */
export async function createQueues(urls: string[], log: (line: string) => void): Promise<void> {
  const client = await connectClient(urls, 'chaos-setup', () => true, log);
  try {
    for (const { name, options } of QUEUE_SETUP) {
      for (let attempt = 1; ; attempt++) {
        try {
          await client!.createQueue(name, options);
          break;
        } catch (error) {
          if (isFlotillaError(error, 'QUEUE_EXISTS')) break;
          if (attempt >= 10) throw error;
          await sleep(300);
        }
      }
    }
  } finally {
    await client!.close();
  }
}

type Phase = 'running' | 'draining' | 'stopped';

interface ProducerSpec {
  name: string;
  queue: string;
  /** Give each message an idempotency key (and retry failed publishes with it). */
  keyed: boolean;
  /** Publish strictly one at a time per group. */
  groups?: string[];
  /** Concurrent publishing loops (ungrouped producers). */
  workers: number;
  paceMs: [number, number];
}

interface ConsumerSpec {
  name: string;
  queue: string;
  style: 'push' | 'pull';
  prefetch: number;
  /** Handling time before settling. */
  workMs: [number, number];
  /** Chance to take longer than the lease before acking (its ack should then be refused). */
  overrunChance: number;
  overrunMs: number;
  nackChance: number;
  /** Chance, per delivery, to close the client holding what it has. */
  crashChance: number;
}

const PRODUCERS: ProducerSpec[] = [
  { name: 'p-plain', queue: QUEUES.plain, keyed: false, workers: 3, paceMs: [10, 40] },
  { name: 'p-plain-key', queue: QUEUES.plain, keyed: true, workers: 2, paceMs: [10, 40] },
  // Slower than the others: a group delivers one message at a time, held up for a lease (3 s)
  // whenever its consumer overruns or crashes, so faster producers outgrow what the consumers can
  // drain in a long campaign.
  { name: 'p-groups', queue: QUEUES.groups, keyed: true, groups: GROUPS, workers: 1, paceMs: [20, 70] },
  { name: 'p-retry', queue: QUEUES.retry, keyed: false, workers: 1, paceMs: [30, 90] },
];

const CONSUMERS: ConsumerSpec[] = [
  // biome-ignore format: a table reads best one consumer per line
  { name: 'c-plain-fast', queue: QUEUES.plain, style: 'push', prefetch: 20, workMs: [0, 5], overrunChance: 0, overrunMs: 0, nackChance: 0, crashChance: 0 },
  // biome-ignore format: a table reads best one consumer per line
  { name: 'c-plain-slow', queue: QUEUES.plain, style: 'push', prefetch: 5, workMs: [50, 400], overrunChance: 0.03, overrunMs: 2_600, nackChance: 0.05, crashChance: 0 },
  // biome-ignore format: a table reads best one consumer per line
  { name: 'c-plain-pull', queue: QUEUES.plain, style: 'pull', prefetch: 10, workMs: [0, 20], overrunChance: 0, overrunMs: 0, nackChance: 0, crashChance: 0 },
  // biome-ignore format: a table reads best one consumer per line
  { name: 'c-plain-crash', queue: QUEUES.plain, style: 'push', prefetch: 5, workMs: [0, 50], overrunChance: 0, overrunMs: 0, nackChance: 0, crashChance: 0.05 },
  // biome-ignore format: a table reads best one consumer per line
  { name: 'c-groups-a', queue: QUEUES.groups, style: 'push', prefetch: 5, workMs: [0, 30], overrunChance: 0, overrunMs: 0, nackChance: 0.05, crashChance: 0 },
  // biome-ignore format: a table reads best one consumer per line
  { name: 'c-groups-b', queue: QUEUES.groups, style: 'push', prefetch: 5, workMs: [0, 60], overrunChance: 0.02, overrunMs: 3_500, nackChance: 0, crashChance: 0 },
  // biome-ignore format: a table reads best one consumer per line
  { name: 'c-groups-crash', queue: QUEUES.groups, style: 'pull', prefetch: 3, workMs: [0, 30], overrunChance: 0, overrunMs: 0, nackChance: 0, crashChance: 0.08 },
  // biome-ignore format: a table reads best one consumer per line
  { name: 'c-retry-nack', queue: QUEUES.retry, style: 'push', prefetch: 10, workMs: [0, 20], overrunChance: 0, overrunMs: 0, nackChance: 0.6, crashChance: 0 },
  // biome-ignore format: a table reads best one consumer per line
  { name: 'c-dlq', queue: QUEUES.dlq, style: 'push', prefetch: 20, workMs: [0, 5], overrunChance: 0, overrunMs: 0, nackChance: 0, crashChance: 0 },
  // biome-ignore format: a table reads best one consumer per line
  { name: 'c-dlq-pull', queue: QUEUES.dlq, style: 'pull', prefetch: 10, workMs: [0, 5], overrunChance: 0, overrunMs: 0, nackChance: 0, crashChance: 0 },
];

export class Workload {
  private phase: Phase = 'running';
  private nextOp = 0;
  private readonly tasks: Promise<void>[] = [];
  private readonly clients = new Set<FlotillaClient>();
  private readonly subscriptions = new Set<Subscription>();
  /** Each consumer's current client and subscription, for `describe()`. */
  private readonly current = new Map<string, { life: ConsumerLife; sub: Subscription | null }>();
  private readonly producersStopped: Promise<void>[] = [];
  private producing = true;
  private readonly text = new TextDecoder();

  private constructor(private readonly options: WorkloadOptions) {}

  /** A getter, so checks inside loops are not narrowed away by the compiler. */
  private get stopped(): boolean {
    return this.phase === 'stopped';
  }

  /** Starts every consumer and producer; resolves once they are all under way. */
  static start(options: WorkloadOptions): Workload {
    const workload = new Workload(options);
    for (const spec of CONSUMERS)
      workload.tasks.push(workload.runConsumer(spec, options.rng.fork(spec.name)));
    for (const spec of PRODUCERS) {
      const names = spec.groups ?? Array.from({ length: spec.workers }, (_, w) => String(w + 1));
      const loops = names.map((suffix) => {
        const name = `${spec.name}/${suffix}`;
        return workload.runProducer(spec, options.rng.fork(name), name, spec.groups ? suffix : null);
      });
      workload.producersStopped.push(...loops);
    }
    return workload;
  }

  /** Stop publishing new messages; resolves when every publish in progress has an outcome. */
  async stopProducers(): Promise<void> {
    this.producing = false;
    await Promise.all(this.producersStopped);
  }

  /** Consumers stop misbehaving (no crashes, no overruns) so the queues can drain. */
  startDraining(): void {
    this.phase = 'draining';
  }

  /** One line per consumer: its client, connection and subscription, for a drain that stalls. */
  describe(): string {
    return [...this.current.entries()]
      .map(([consumer, { life, sub }]) => {
        const client = `${life.name} ${life.client.status} on ${life.client.nodeId ?? '-'}`;
        const subscription = sub ? `subscription holds ${sub.held}/${sub.prefetch}` : 'no subscription';
        return `${consumer}: ${client}, ${subscription}, ${life.held.size} in the handler`;
      })
      .join('\n');
  }

  /** Close every client (draining what is in progress). */
  async stop(): Promise<void> {
    this.phase = 'stopped';
    this.producing = false;
    await Promise.all([...this.subscriptions].map((s) => s.close().catch(() => {})));
    await Promise.all([...this.clients].map((c) => c.close().catch(() => {})));
    await Promise.all(this.tasks.concat(this.producersStopped));
  }

  // -------------------------------------------------------------------------------------------
  // Producers

  private async runProducer(spec: ProducerSpec, rng: Rng, name: string, group: string | null): Promise<void> {
    const client = await connectClient(
      this.options.urls(),
      name,
      () => this.producing,
      this.options.log,
      PUBLISH_TIMEOUT_MS,
    );
    if (!client) return;
    this.clients.add(client);
    const rate = this.options.rate ?? 1;
    let n = 0;
    try {
      while (this.producing) {
        n++;
        const pid = `${name}#${n}`;
        const body = encodePayload({ pid, queue: spec.queue, pad: padding(rng) });
        const key = spec.keyed ? `key:${pid}` : null;
        const ok = await this.publishMessage(client, spec, name, { pid, body, key, group });
        // Now and then publish a confirmed key again: the broker must answer with the original seq.
        if (ok && key && rng.chance(0.05))
          await this.publishOnce(client, spec.queue, name, { pid, body, key, group });
        await sleep(rng.int(spec.paceMs[0], spec.paceMs[1]) / rate);
      }
    } finally {
      this.clients.delete(client);
      await client.close().catch(() => {});
    }
  }

  /** Publishes one logical message; keyed producers retry failures with the same key. */
  private async publishMessage(
    client: FlotillaClient,
    spec: ProducerSpec,
    name: string,
    message: { pid: string; body: string; key: string | null; group: string | null },
  ): Promise<boolean> {
    const attempts = message.key ? KEYED_PUBLISH_ATTEMPTS : 1;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (await this.publishOnce(client, spec.queue, name, message)) return true;
      if (attempt < attempts) await sleep(200);
    }
    return false;
  }

  private async publishOnce(
    client: FlotillaClient,
    queue: string,
    name: string,
    message: { pid: string; body: string; key: string | null; group: string | null },
  ): Promise<boolean> {
    const { history } = this.options;
    const op = ++this.nextOp;
    const { pid, key, group } = message;
    history.record({ kind: 'publish-invoke', op, client: name, queue, pid, key, group });
    try {
      const options: { idempotencyKey?: string; group?: string } = {};
      if (key) options.idempotencyKey = key;
      if (group) options.group = group;
      const receipt = await client.publish(queue, message.body, options);
      history.record({
        kind: 'publish-ok',
        op,
        client: name,
        queue,
        pid,
        seq: receipt.seq,
        duplicate: receipt.duplicate,
      });
      return true;
    } catch (error) {
      history.record({ kind: 'publish-fail', op, client: name, queue, pid, ...errorFacts(error) });
      return false;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Consumers

  /** Runs one consumer for the whole campaign, as successive clients when it crashes. */
  private async runConsumer(spec: ConsumerSpec, rng: Rng): Promise<void> {
    let incarnation = 0;
    while (!this.stopped) {
      incarnation++;
      const name = `${spec.name}.${incarnation}`;
      const client = await connectClient(this.options.urls(), name, () => !this.stopped, this.options.log);
      if (!client) return;
      this.clients.add(client);
      const life = new ConsumerLife(name, client);
      this.current.set(spec.name, { life, sub: null });
      try {
        if (spec.style === 'push') await this.runPush(spec, rng, life);
        else await this.runPull(spec, rng, life);
      } finally {
        this.clients.delete(client);
        await client.close({ drain: !life.crashed }).catch(() => {});
      }
      if (life.crashed) await sleep(rng.int(200, 800));
    }
  }

  private async runPush(spec: ConsumerSpec, rng: Rng, life: ConsumerLife): Promise<void> {
    let sub: Subscription;
    try {
      sub = await life.client.consume(spec.queue, (msg) => this.handle(spec, rng, life, msg), {
        prefetch: spec.prefetch,
      });
    } catch (error) {
      this.options.log(`${life.name}: subscribe failed (${errorFacts(error).code}), retrying`);
      await sleep(300);
      return;
    }
    this.subscriptions.add(sub);
    this.current.set(spec.name, { life, sub });
    // The subscription lives until the consumer crashes, the campaign stops, or it ends by itself.
    const ended = await Promise.race([sub.closed(), life.crash.then(() => null)]);
    this.subscriptions.delete(sub);
    if (ended && !this.stopped && !life.crashed)
      this.options.log(`${life.name}: subscription ended (${ended.code})`);
  }

  private async runPull(spec: ConsumerSpec, rng: Rng, life: ConsumerLife): Promise<void> {
    while (!this.stopped && !life.crashed) {
      let msgs: Message[];
      try {
        msgs = await life.client.receive(spec.queue, { max: spec.prefetch, waitMs: 500 });
      } catch (error) {
        if (!this.stopped) {
          this.options.log(
            `${life.name}: receive failed on ${life.client.nodeId} (${errorFacts(error).code})`,
          );
        }
        await sleep(200);
        continue;
      }
      await Promise.all(msgs.map((msg) => this.handle(spec, rng, life, msg)));
    }
  }

  /** One delivery: record it, work, then ack, nack, or crash while holding it. */
  private async handle(spec: ConsumerSpec, rng: Rng, life: ConsumerLife, msg: Message): Promise<void> {
    this.options.history.record({
      kind: 'deliver',
      client: life.name,
      queue: msg.queue,
      seq: msg.seq,
      deliveryId: msg.deliveryId,
      deliveryCount: msg.deliveryCount,
      group: msg.group,
      body: this.text.decode(msg.bytes),
    });
    if (life.crashed) return life.abandon(msg);
    life.held.add(msg);
    const misbehave = this.phase === 'running';
    const overrun = misbehave && rng.chance(spec.overrunChance);
    const crash = misbehave && rng.chance(spec.crashChance);
    await sleep(overrun ? spec.overrunMs : rng.int(spec.workMs[0], spec.workMs[1]));
    if (life.crashed) return life.abandon(msg);
    if (crash) {
      this.crash(life);
      return life.abandon(msg);
    }
    life.held.delete(msg);
    await this.settle(life.name, msg, rng.chance(spec.nackChance) ? 'nack' : 'ack');
  }

  private crash(life: ConsumerLife): void {
    const abandoned = [...life.held].map((m) => `${m.queue}#${m.seq}/${m.deliveryId}`);
    this.options.history.record({ kind: 'crash', client: life.name, abandoned });
    life.markCrashed();
    void life.client.close({ drain: false }).catch(() => {});
  }

  private async settle(name: string, msg: Message, settle: 'ack' | 'nack'): Promise<void> {
    const { history } = this.options;
    const op = ++this.nextOp;
    const lease = { client: name, queue: msg.queue, seq: msg.seq, deliveryId: msg.deliveryId };
    history.record({ kind: 'settle-invoke', op, settle, ...lease });
    try {
      await (settle === 'ack' ? msg.ack() : msg.nack());
      history.record({ kind: 'settle-ok', op, settle, ...lease });
    } catch (error) {
      history.record({ kind: 'settle-fail', op, settle, ...lease, ...errorFacts(error) });
    }
  }
}

/** One client of a consumer, until it crashes or the campaign stops. */
class ConsumerLife {
  crashed = false;
  /** Deliveries handed to the handler and not yet settled. */
  readonly held = new Set<Message>();
  private signalCrash!: () => void;
  readonly crash = new Promise<void>((resolve) => {
    this.signalCrash = resolve;
  });

  constructor(
    readonly name: string,
    readonly client: FlotillaClient,
  ) {}

  markCrashed(): void {
    this.crashed = true;
    this.signalCrash();
  }

  /** A crashed consumer never settles: the SDK must not either. */
  abandon(msg: Message): void {
    this.held.delete(msg);
    msg.forget();
  }
}

const LETTERS = 'abcdefghijklmnopqrstuvwxyz0123456789';

function padding(rng: Rng): string {
  const length = rng.int(0, 160);
  let out = '';
  for (let i = 0; i < length; i++) out += LETTERS[rng.int(0, LETTERS.length - 1)];
  return out;
}
