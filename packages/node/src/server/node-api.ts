/**
 * The HTTP API of a running node (see docs/http-api.md), answered from the Raft driver's status and
 * the local replica of the queue state. Mutations go through the queue runtime like any client
 * command, so they are confirmed only after commit and apply.
 */
import { BodyFormat, decodeBody, type FlotillaError } from '@flotilla/shared';
import type { QueueRuntime } from '../broker/index.js';
import type { RaftDriver } from '../cluster/index.js';
import type { HttpApi, MessageJson } from '../http/api.js';
import { ApiError } from '../http/server.js';
import type { NodeMetrics } from '../metrics/metrics.js';
import type { Command, PeekedMessage, Reply } from '../queues/index.js';
import { QueueStatsSource } from './queue-stats.js';

/**
 * Applied index may trail the leader's commit index (as this node last heard it) by this much and
 * the node still counts as caught up: a follower learns commits with the next append or heartbeat.
 */
const READY_LAG_ENTRIES_MAX = 64;

const utf8 = new TextDecoder('utf-8', { fatal: true });

function bodyText(m: PeekedMessage): string | null {
  try {
    if (m.format === BodyFormat.Msgpack || m.format === BodyFormat.Json) {
      return JSON.stringify(decodeBody(m.body, m.format as BodyFormat));
    }
    return utf8.decode(m.body);
  } catch {
    return null;
  }
}

function toJson(m: PeekedMessage): MessageJson {
  return {
    seq: m.seq,
    state: m.state,
    deliveryCount: m.deliveryCount,
    publishedAtMs: m.publishedAtMs,
    priority: m.priority,
    group: m.group,
    headers: (m.headers ?? {}) as Record<string, string>,
    bytes: m.body.length,
    bodyBase64: Buffer.from(m.body.buffer, m.body.byteOffset, m.body.length).toString('base64'),
    bodyText: bodyText(m),
    deadLetter: m.deadLetter,
  };
}

export class NodeHttpApi implements HttpApi {
  readonly nodeId: string;

  constructor(
    private readonly driver: RaftDriver,
    private readonly runtime: QueueRuntime,
    private readonly nodeMetrics: NodeMetrics,
    private readonly isHealthy: () => { ok: boolean; reason?: string },
    /** Where queue figures and rates come from; the server passes the one it samples. */
    private readonly queueStats: QueueStatsSource = new QueueStatsSource(runtime),
  ) {
    this.nodeId = driver.nodeId;
  }

  health(): { ok: boolean; reason?: string } {
    return this.isHealthy();
  }

  ready(): { ready: boolean; reason?: string } {
    const s = this.driver.status();
    if (!this.isHealthy().ok) return { ready: false, reason: 'not running' };
    if (s.leaderId === null) return { ready: false, reason: 'no leader known' };
    // The leader's commit index, not only our own: a follower far behind the leader's log knows
    // only a small commit index of its own, yet is not caught up.
    const leaderCommit = Math.max(s.commitIndex, this.driver.raftStatus()?.leaderCommit ?? 0);
    const lag = leaderCommit - s.appliedIndex;
    if (lag > READY_LAG_ENTRIES_MAX)
      return { ready: false, reason: `catching up: ${lag} committed entries behind the leader` };
    return { ready: true };
  }

  async metrics(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.nodeMetrics.contentType, body: await this.nodeMetrics.render() };
  }

  cluster() {
    return this.driver.status();
  }

  queues() {
    return this.queueStats.withRates();
  }

  queue(name: string) {
    return this.queueStats.one(name);
  }

  peek(name: string, fromSeq: number, max: number): MessageJson[] | null {
    return this.runtime.state.peek(name, fromSeq, max)?.map(toJson) ?? null;
  }

  digest(): { appliedIndex: number; digest: string } {
    return { appliedIndex: this.runtime.lastAppliedIndex, digest: this.runtime.state.digest() };
  }

  async redrive(dlq: string, target: string | null, max: number | null): Promise<number> {
    const reply = await this.submit({ op: 'redrive', dlq, target, max });
    return reply.op === 'redrive' ? reply.moved : 0;
  }

  async purge(name: string): Promise<number> {
    const reply = await this.submit({ op: 'purgeQueue', queue: name });
    return reply.op === 'purgeQueue' ? reply.purged : 0;
  }

  transferLeadership(to: string | null): Promise<void> {
    return this.driver.transferLeadership(to ?? undefined);
  }

  addLearner(id: string, address: string): Promise<void> {
    return this.driver.addLearner(id, address);
  }

  promoteLearner(id: string): Promise<void> {
    return this.driver.promoteLearner(id);
  }

  removeMember(id: string): Promise<void> {
    return this.driver.removeMember(id);
  }

  leaderHttpUrl(): string | null {
    const s = this.driver.status();
    if (s.leaderId === null || s.leaderId === s.nodeId || s.leaderAddress === null) return null;
    return `http://${s.leaderAddress}`;
  }

  /** Run one command through the log; resolves with its successful reply. */
  private submit(command: Command): Promise<Extract<Reply, { ok: true }>> {
    return new Promise((resolve, reject) => {
      const fail = (err: FlotillaError) => reject(new ApiError(err.code, err.message, err.details));
      const refused = this.runtime.submit(
        command,
        {
          commandApplied: (_token, _command, reply) => {
            if (reply.ok) resolve(reply);
            else reject(new ApiError(reply.code, reply.message));
          },
          commandFailed: (_token, err) => fail(err),
        },
        0,
      );
      if (refused) fail(refused);
    });
  }
}
