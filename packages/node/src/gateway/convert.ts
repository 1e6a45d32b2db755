/**
 * Translations between the state machine's shapes and the wire protocol's: stats maps, peeked and
 * delivered messages, per-item outcomes, cluster info. Pure functions; the hot path (deliver
 * pushes) hands the state machine's own message objects to the encoder without converting them.
 */
import {
  type BodyFormat,
  type ClusterInfo,
  type DeliveredMessage,
  type ErrorCode,
  FlotillaError,
  type ItemOutcomes,
  isErrorCode,
  type NodeRole,
  type QueueOptions,
  type QueueStats,
} from '@flotilla/shared';
import type { NodeStatus } from '../cluster/types.js';
import type {
  PeekedMessage,
  QueueStateMachine,
  Reply,
  DeliveredMessage as StoredDelivery,
} from '../queues/index.js';

/** The client URL of a node from its advertised `host:port`. */
export function clientUrl(address: string | null): string | null {
  return address === null ? null : `ws://${address}/client`;
}

/** A state machine error reply as a wire error. */
export function replyError(reply: Extract<Reply, { ok: false }>): FlotillaError {
  return new FlotillaError(reply.code, reply.message);
}

/** A delivered message for receive results (the queue travels once per list). */
export function wireDelivery(queue: string, m: StoredDelivery): DeliveredMessage {
  return {
    queue,
    seq: m.seq,
    deliveryId: m.deliveryId,
    body: m.body,
    format: m.format as BodyFormat,
    headers: m.headers as Record<string, string> | null,
    group: m.group,
    priority: m.priority,
    deliveryCount: m.deliveryCount,
    publishedAtMs: m.publishedAtMs,
    leaseDeadlineMs: m.leaseDeadlineMs,
    deadLetter: m.deadLetter,
  };
}

/** A peeked message: no lease of the caller's (deliveryId 0); an in-flight one shows its lease deadline. */
export function wirePeeked(queue: string, m: PeekedMessage): DeliveredMessage {
  return {
    queue,
    seq: m.seq,
    deliveryId: 0,
    body: m.body,
    format: m.format as BodyFormat,
    headers: m.headers as Record<string, string> | null,
    group: m.group,
    priority: m.priority,
    deliveryCount: m.deliveryCount,
    publishedAtMs: m.publishedAtMs,
    leaseDeadlineMs: m.state === 'in-flight' ? (m.dueMs ?? 0) : 0,
    deadLetter: m.deadLetter,
  };
}

/**
 * The wire stats map of a queue. Ages are measured against `nowMs` (the leader's clock); the
 * state machine keeps the age of its oldest ready message as of its last entry.
 */
export function wireStats(sm: QueueStateMachine, name: string, nowMs: number): QueueStats | null {
  const stats = sm.stats(name);
  const options = sm.queueOptions(name);
  if (stats === null || options === null) return null;
  const depth = stats.ready + stats.inFlight + stats.delayed;
  const oldestAgeMs = stats.ready === 0 ? null : stats.oldestAgeMs + Math.max(0, nowMs - sm.timeMs);
  return {
    name,
    depth,
    ready: stats.ready,
    inFlight: stats.inFlight,
    delayed: stats.delayed,
    totalBytes: stats.bytes,
    publishedCount: stats.counters.published,
    deliveredCount: stats.counters.delivered,
    ackedCount: stats.counters.acked,
    deadLetteredCount: stats.counters.deadLettered,
    oldestMessageAgeMs: depth === 0 ? null : oldestAgeMs,
    options: options as QueueOptions,
  };
}

/**
 * Per-item outcomes of ack/nack/extend: the failed items by their index in the request. `sent`
 * maps result positions to request indexes when some items never reached the log (forbidden).
 */
export function itemOutcomes(
  results: readonly { ok: boolean; code?: string }[],
  sent: readonly number[] | null,
  forbidden: readonly number[],
): ItemOutcomes {
  const failed: ItemOutcomes['failed'] = [];
  for (let i = 0; i < results.length; i++) {
    const result = results[i]!;
    if (result.ok) continue;
    failed.push({ index: sent === null ? i : sent[i]!, code: itemCode(result.code) });
  }
  for (const index of forbidden) failed.push({ index, code: 'FORBIDDEN' });
  if (forbidden.length > 0) failed.sort((a, b) => a.index - b.index);
  return { failed };
}

/**
 * docs/protocol.md lists LEASE_EXPIRED, QUEUE_NOT_FOUND and FORBIDDEN as item codes. A ref to a
 * delivery that never happened (the state machine says INVALID_ARGUMENT) is reported as
 * LEASE_EXPIRED too: either way the caller does not hold that lease.
 */
function itemCode(code: string | undefined): ErrorCode {
  if (code === 'QUEUE_NOT_FOUND' || code === 'LEASE_EXPIRED') return code;
  if (code !== undefined && isErrorCode(code) && code !== 'INVALID_ARGUMENT') return code;
  return 'LEASE_EXPIRED';
}

/** This node's view of the cluster for the `cluster` op. */
export function clusterInfo(status: NodeStatus): ClusterInfo {
  return {
    nodeId: status.nodeId,
    leaderId: status.leaderId,
    term: status.term,
    commitIndex: status.commitIndex,
    appliedIndex: status.appliedIndex,
    nodes: status.members.map((member) => ({
      id: member.id,
      url: clientUrl(member.address),
      role: memberRole(status, member.id, member.voter),
      reachable: member.id === status.nodeId || member.connected,
      matchIndex: member.matchIndex,
    })),
  };
}

function memberRole(status: NodeStatus, id: string, voter: boolean): NodeRole {
  if (id === status.nodeId) {
    if (status.role === 'pre-candidate') return 'candidate';
    return status.role;
  }
  if (!voter) return 'learner';
  if (id === status.leaderId) return 'leader';
  return status.leaderId === null ? 'unknown' : 'follower';
}
