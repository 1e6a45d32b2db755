/**
 * The vocabulary between the queue runtime (which owns the state machine, the proposal batcher and
 * the leader's delivery duties) and whoever submits commands to it: gateway sessions, and the
 * runtime itself for ticks, deliveries and releases. Owners get their answers through these
 * interfaces, one call per command, so the hot path needs no promise or closure per request.
 */
import type { ErrorCode, FlotillaError } from '@flotilla/shared';
import type { Command, DeliveredMessage, PublishMessage, Reply } from '../queues/index.js';

/** Whoever submitted a command. `token` is the owner's own handle for the request (e.g. a slot number). */
export interface CommandOwner {
  /** The command was committed and applied; `reply` is the state machine's answer (maybe an error reply). */
  commandApplied(token: number, command: Command, reply: Reply): void;
  /**
   * The command was not applied through this node's proposal. `error.code` says whether it is
   * certain (NOT_LEADER, UNAVAILABLE, OVERLOADED: nothing happened) or unknown (TIMEOUT: it may
   * still be applied by the next leader).
   */
  commandFailed(token: number, error: FlotillaError): void;
}

/** What the runtime tells a client session about its consumers. Implemented by the gateway session. */
export interface ConsumerPort extends CommandOwner {
  /** True while the client's send buffer is over its limit: no new deliveries until it drains. */
  readonly congested: boolean;
  /** Leases for one of the session's push subscriptions were applied: send them to the client. */
  pushDeliveries(subId: number, queue: string, messages: readonly DeliveredMessage[]): void;
  /** The runtime ended a subscription (its queue was deleted, this node lost leadership). */
  subscriptionEnded(subId: number, code: ErrorCode, message: string): void;
  /** An unsubscribe finished: every deliver proposed for the subscription has been applied or failed. */
  unsubscribed(subId: number, token: number): void;
  /** A pull (`receive`) finished: with messages, or empty when its wait ended. */
  receiveDone(token: number, queue: string, messages: readonly DeliveredMessage[]): void;
}

/** Limits of the runtime, each with its reason. */
export interface RuntimeLimits {
  /**
   * Soft cap on one log entry, in bytes of commands (bodies plus a small per-command overhead).
   * About 1 MiB: big enough to amortise a proposal, small enough that several entries are in
   * flight at once so disk and network overlap (frames of ~100 messages beat one of 1,000 by 27%
   * in the data-path experiment). A single command larger than this gets an entry of its own.
   */
  maxEntryBytes: number;
  /** Cap on commands in one entry: bounds one apply's work and the reply fan-out of one entry. */
  maxEntryCommands: number;
  /**
   * Bytes of commands proposed and not yet applied, across all sessions. Beyond it new commands
   * are refused with OVERLOADED rather than queued without bound (64 MiB ≈ 64 full entries).
   */
  maxPendingBytes: number;
  /** Longest a deliver proposal may lease in one command (the state machine's own cap is 10,000). */
  maxDeliverBatch: number;
  /** Wait before retrying a leadership proposal the log refused (e.g. during a transfer), in ms. */
  leadershipRetryMs: number;
}

export const DEFAULT_RUNTIME_LIMITS: Readonly<RuntimeLimits> = Object.freeze({
  maxEntryBytes: 1024 * 1024,
  maxEntryCommands: 512,
  maxPendingBytes: 64 * 1024 * 1024,
  maxDeliverBatch: 1000,
  leadershipRetryMs: 50,
});

/**
 * Rough encoded size of a command without encoding it: bodies dominate, then headers, keys and
 * groups (counted in UTF-16 units, so non-ASCII text is under-counted), the rest is a small
 * constant. It decides where entries are cut; the batcher checks the real size against the log's
 * limit before proposing.
 */
export function commandSizeBytes(command: Command): number {
  switch (command.op) {
    case 'publish': {
      let size = 32 + command.queue.length;
      for (const m of command.messages) size += publishedMessageBytes(m);
      return size;
    }
    case 'ack':
    case 'nack':
    case 'extend':
      return 16 + command.items.length * 24;
    case 'release':
      return 16 + command.consumerIds.length * 32;
    default:
      return 128;
  }
}

function publishedMessageBytes(m: PublishMessage): number {
  let size = m.body.byteLength + 24 + (m.idempotencyKey?.length ?? 0) + (m.group?.length ?? 0);
  const headers = m.headers;
  if (headers != null) for (const key in headers) size += key.length + (headers[key] as string).length + 4;
  return size;
}
