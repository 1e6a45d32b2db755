/**
 * What the HTTP layer needs from the node: health, readiness, metrics and the JSON API that the
 * dashboard and operators script against (documented in docs/http-api.md). The composition root
 * implements it over the Raft driver and the queue runtime.
 */
import type { QueueStats } from '@flotilla/shared';
import type { NodeStatus } from '../cluster/types.js';

/** A JSON view of a stored message (bodies as base64, plus text when they are UTF-8). */
export interface MessageJson {
  seq: number;
  state: 'ready' | 'delayed' | 'retrying' | 'in-flight';
  deliveryCount: number;
  publishedAtMs: number;
  priority: number;
  group: string | null;
  headers: Record<string, string>;
  bytes: number;
  bodyBase64: string;
  /** The body as text when it is valid UTF-8 (or JSON/msgpack rendered as JSON). */
  bodyText: string | null;
  /** Where a dead-lettered message came from and why. */
  deadLetter: { queue: string; seq: number; deliveryCount: number; reason: string; timeMs: number } | null;
}

/** An error with a stable code, mapped onto an HTTP status; NOT_LEADER requests are forwarded. */
export interface ApiFailure {
  code: string;
  message: string;
  details?: Record<string, unknown>;
}

export interface HttpApi {
  readonly nodeId: string;
  /** Process and storage are fine. */
  health(): { ok: boolean; reason?: string };
  /** Has a leader and has applied what it knows is committed (within a small lag). */
  ready(): { ready: boolean; reason?: string };
  metrics(): Promise<{ contentType: string; body: string }>;
  cluster(): NodeStatus;
  /** Queue stats from this node's replica (followers may lag slightly; `appliedIndex` says how much). */
  queues(): QueueStats[];
  queue(name: string): QueueStats | null;
  peek(name: string, fromSeq: number, max: number): MessageJson[] | null;
  /** Digest of the whole state machine at the applied index, to compare replicas. */
  digest(): { appliedIndex: number; digest: string };
  /** Leader-only operations: reject with an ApiFailure (NOT_LEADER, QUEUE_NOT_FOUND, ...). */
  redrive(dlq: string, target: string | null, max: number | null): Promise<number>;
  purge(name: string): Promise<number>;
  transferLeadership(to: string | null): Promise<void>;
  addLearner(id: string, address: string): Promise<void>;
  promoteLearner(id: string): Promise<void>;
  removeMember(id: string): Promise<void>;
  /** HTTP base URL of the leader, for forwarding; null when there is none. */
  leaderHttpUrl(): string | null;
}
