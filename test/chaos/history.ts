/**
 * The history of a chaos campaign: every event a client could see, in the order the campaign
 * process saw them, as JSON lines. The workload writes it, the checker judges it; nothing else is
 * shared between them. Also here: the payload format (each body names its payload id and carries a
 * checksum, so the checker can tell phantom and corrupted deliveries from real ones) and the final
 * state the campaign records after draining the cluster.
 */
import { createWriteStream, readFileSync, type WriteStream } from 'node:fs';

/** Fields every event has. */
export interface EventBase {
  /** Position in the history: a total order consistent with real time (one process, one clock). */
  i: number;
  /** Milliseconds since the campaign started, by the campaign process's monotonic clock. */
  t: number;
}

/** A publish call as the application made it (one per attempt; explicit-key producers retry). */
export interface PublishInvoke {
  kind: 'publish-invoke';
  /** Identifies this attempt; its outcome event carries the same op. */
  op: number;
  client: string;
  queue: string;
  /** Payload id written in the body: unique per logical message. */
  pid: string;
  /** The idempotency key the application gave, or null (the SDK then makes its own, per call). */
  key: string | null;
  group: string | null;
}

export interface PublishOk {
  kind: 'publish-ok';
  op: number;
  client: string;
  queue: string;
  pid: string;
  seq: number;
  duplicate: boolean;
}

export interface PublishFail {
  kind: 'publish-fail';
  op: number;
  client: string;
  queue: string;
  pid: string;
  code: string;
  /** The outcome is unknown: the message may or may not have been stored. */
  maybeApplied: boolean;
}

/** A message handed to the application. */
export interface Deliver {
  kind: 'deliver';
  client: string;
  queue: string;
  seq: number;
  deliveryId: number;
  deliveryCount: number;
  group: string | null;
  /** The body as UTF-8 text, exactly as received. */
  body: string;
}

export type SettleOp = 'ack' | 'nack';

export interface SettleInvoke {
  kind: 'settle-invoke';
  op: number;
  settle: SettleOp;
  client: string;
  queue: string;
  seq: number;
  deliveryId: number;
}

export interface SettleOk {
  kind: 'settle-ok';
  op: number;
  settle: SettleOp;
  client: string;
  queue: string;
  seq: number;
  deliveryId: number;
}

export interface SettleFail {
  kind: 'settle-fail';
  op: number;
  settle: SettleOp;
  client: string;
  queue: string;
  seq: number;
  deliveryId: number;
  code: string;
  maybeApplied: boolean;
}

/** A consumer closed its client on purpose while holding unsettled messages. */
export interface ConsumerCrash {
  kind: 'crash';
  client: string;
  /** The unsettled deliveries it abandoned, as `queue#seq/deliveryId`. */
  abandoned: string[];
}

/** A fault as the nemesis injected it (start) and took it back (end). */
export interface NemesisEvent {
  kind: 'nemesis';
  phase: 'start' | 'end';
  /** Index of the fault in the schedule. */
  fault: number;
  name: string;
  detail: string;
}

/** Campaign milestones: faults begin, faults end and the cluster is healed, draining, done. */
export interface PhaseEvent {
  kind: 'phase';
  name: 'workload-start' | 'faults-start' | 'healed' | 'drain-start' | 'drain-end';
}

export type HistoryEventBody =
  | PublishInvoke
  | PublishOk
  | PublishFail
  | Deliver
  | SettleInvoke
  | SettleOk
  | SettleFail
  | ConsumerCrash
  | NemesisEvent
  | PhaseEvent;

export type HistoryEvent = EventBase & HistoryEventBody;

/** What one node reported at the end of the campaign. */
export interface FinalNode {
  id: string;
  appliedIndex: number;
  digest: string;
}

/** What a queue looked like after the drain. */
export interface FinalQueue {
  name: string;
  /** -1 when no member could say. */
  depth: number;
  inFlight: number;
  delayed: number;
  deadLetterQueue: string | null;
  maxDeliveries: number;
}

/** The state the campaign records after healing and draining the cluster. */
export interface FinalState {
  /** Every member at the end, as each reported itself once the replicas agreed (or the deadline passed). */
  nodes: FinalNode[];
  queues: FinalQueue[];
  /** Milliseconds from the heal until the cluster confirmed a publish and a delivery; null if never. */
  servedAgainMs: number | null;
  /** Milliseconds from the heal until every member reported the same applied index and digest; null if never. */
  convergedMs: number | null;
  /** The bound both must meet. */
  recoveryBoundMs: number;
  /** Ids of the members at the end; each must be among `nodes`. */
  members?: string[];
  /** Node processes that ended without being asked to, with their last words. */
  crashes?: { id: string; detail: string }[];
  /** Faults the nemesis could not carry out (the schedule stopped at the first). */
  faultErrors?: string[];
}

/** Appends events to a JSON-lines file, numbering and timestamping them. */
export class HistoryWriter {
  private readonly out: WriteStream;
  private nextIndex = 0;
  private readonly startMs = performance.now();
  private readonly kinds = new Map<string, number>();

  constructor(readonly path: string) {
    this.out = createWriteStream(path, { flags: 'w' });
  }

  /** Milliseconds since this history started. */
  now(): number {
    return Math.round((performance.now() - this.startMs) * 10) / 10;
  }

  record(event: HistoryEventBody): HistoryEvent {
    const full = { i: this.nextIndex++, t: this.now(), ...event } as HistoryEvent;
    this.out.write(`${JSON.stringify(full)}\n`);
    this.kinds.set(event.kind, (this.kinds.get(event.kind) ?? 0) + 1);
    return full;
  }

  /** Events of one kind recorded so far (for progress lines and tests). */
  count(kind: HistoryEventBody['kind']): number {
    return this.kinds.get(kind) ?? 0;
  }

  get size(): number {
    return this.nextIndex;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve, reject) =>
      this.out.end((error?: Error | null) => (error ? reject(error) : resolve())),
    );
  }
}

/** Reads a history file. A torn last line (the writer died mid-line) is ignored; any other bad line throws. */
export function readHistory(path: string): HistoryEvent[] {
  return parseHistory(readFileSync(path, 'utf8'), path);
}

export function parseHistory(text: string, source = 'history'): HistoryEvent[] {
  const lines = text.split('\n');
  const events: HistoryEvent[] = [];
  lines.forEach((line, index) => {
    if (line.trim() === '') return;
    try {
      events.push(JSON.parse(line) as HistoryEvent);
    } catch (error) {
      const isLast = lines.slice(index + 1).every((rest) => rest.trim() === '');
      if (!isLast) throw new Error(`${source}:${index + 1}: not JSON: ${(error as Error).message}`);
    }
  });
  return events;
}

// ---------------------------------------------------------------------------------------------
// Payloads

/** FNV-1a over a string's UTF-16 code units, as 8 hex digits. */
export function checksum(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, '0');
}

/** What a payload says about itself. */
export interface Payload {
  pid: string;
  /** The queue it was published to. */
  queue: string;
  pad: string;
}

/** The body of a message: JSON naming its payload id and queue, some padding, and a checksum of all that. */
export function encodePayload(payload: Payload): string {
  const { pid, queue, pad } = payload;
  return JSON.stringify({ pid, queue, pad, sum: checksum(`${pid}|${queue}|${pad}`) });
}

/** The payload in a body, or null when the body is not one of ours or its checksum does not match. */
export function decodePayload(body: string): Payload | null {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const { pid, queue, pad, sum } = value as Record<string, unknown>;
  if (typeof pid !== 'string' || typeof queue !== 'string' || typeof pad !== 'string') return null;
  if (sum !== checksum(`${pid}|${queue}|${pad}`)) return null;
  return { pid, queue, pad };
}
