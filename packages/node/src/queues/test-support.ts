/**
 * Helpers for the queue state machine's tests: a driver that stamps entries with a controllable
 * clock, typed shortcuts for the common commands, and option sets. Not part of the public API.
 */
import { DEFAULT_QUEUE_OPTIONS, type QueueOptions } from '@flotilla/shared';
import { QueueStateMachine } from './state-machine.js';
import type {
  Command,
  CommandOp,
  DeliveredMessage,
  DeliveryRef,
  Effect,
  OkReply,
  PublishMessage,
  QueueOptionsPatch,
  Reply,
} from './types.js';

export const T0 = 1_700_000_000_000;

export function queueOptions(patch: QueueOptionsPatch = {}): QueueOptions {
  return {
    ...DEFAULT_QUEUE_OPTIONS,
    ...patch,
    retry: { ...DEFAULT_QUEUE_OPTIONS.retry, ...patch.retry },
  } as QueueOptions;
}

export function bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

export function text(body: Uint8Array): string {
  return new TextDecoder().decode(body);
}

export function refOf(queue: string, m: { seq: number; deliveryId: number }): DeliveryRef {
  return { queue, seq: m.seq, deliveryId: m.deliveryId };
}

/** Drives a state machine one command per entry, with a clock the test moves. */
export class Driver {
  nowMs = T0;
  lastEffects: Effect[] = [];

  constructor(readonly sm = new QueueStateMachine()) {}

  run(command: Command, atMs = this.nowMs): Reply {
    if (atMs > this.nowMs) this.nowMs = atMs;
    const { reply, effects } = this.sm.apply({ timeMs: atMs }, command);
    this.lastEffects = effects;
    return reply;
  }

  /** Runs a command that must succeed and returns its typed reply. */
  ok<Op extends CommandOp>(command: Extract<Command, { op: Op }>, atMs = this.nowMs): OkReply<Op> {
    const reply = this.run(command, atMs);
    if (!reply.ok) throw new Error(`${command.op} failed: ${reply.code} ${reply.message}`);
    return reply as OkReply<Op>;
  }

  /** Moves the clock forward by `ms` and applies an empty tick. */
  advance(ms: number): Effect[] {
    this.ok({ op: 'tick' }, this.nowMs + ms);
    return this.lastEffects;
  }

  create(queue: string, patch: QueueOptionsPatch = {}): void {
    this.ok({ op: 'createQueue', queue, options: queueOptions(patch) });
  }

  publish(queue: string, ...messages: (string | PublishMessage)[]): number[] {
    const list = messages.map((m) => (typeof m === 'string' ? { body: bytes(m) } : m));
    const reply = this.ok({ op: 'publish', queue, messages: list });
    return reply.results.map((r) => (r.ok ? r.seq : -1));
  }

  deliver(queue: string, max = 100, consumerId = 'n1/1', leaseMs?: number): DeliveredMessage[] {
    return this.ok({ op: 'deliver', queue, consumerId, max, leaseMs: leaseMs ?? null }).messages;
  }

  /** Bodies of the delivered messages, as text. */
  deliverText(queue: string, max = 100, consumerId = 'n1/1'): string[] {
    return this.deliver(queue, max, consumerId).map((m) => text(m.body));
  }

  ack(queue: string, ...messages: DeliveredMessage[]): void {
    const reply = this.ok({ op: 'ack', items: messages.map((m) => refOf(queue, m)) });
    const failed = reply.results.find((r) => !r.ok);
    if (failed) throw new Error(`ack failed: ${JSON.stringify(failed)}`);
  }

  nack(queue: string, messages: DeliveredMessage[], delayMs?: number): void {
    const reply = this.ok({
      op: 'nack',
      items: messages.map((m) => refOf(queue, m)),
      delayMs: delayMs ?? null,
    });
    const failed = reply.results.find((r) => !r.ok);
    if (failed) throw new Error(`nack failed: ${JSON.stringify(failed)}`);
  }

  stats(queue: string) {
    const stats = this.sm.stats(queue);
    if (stats === null) throw new Error(`no queue ${queue}`);
    return stats;
  }
}
