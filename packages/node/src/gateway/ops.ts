/**
 * What each client op does on this node, per docs/protocol.md: permission checks
 * (`principal.can(publish|consume|manage, queue)`), leader-only ops answered NOT_LEADER on a
 * follower, writes proposed through the runtime's batcher and answered after commit and apply,
 * reads served from the local state after a read barrier (so a read sees every write confirmed
 * before it), and push/pull consumers registered with the runtime.
 */
import {
  type AckItem,
  type DeliveredMessage,
  FlotillaError,
  invalidArgument,
  PROTOCOL_VERSION,
  type PublishMessage,
  type QueueOptions,
  type Request,
  type RequestOf,
  resolveQueueOptions,
  welcomeLimits,
} from '@flotilla/shared';
import { type Action, ANONYMOUS_ADMIN } from '../auth/tokens.js';
import type { PullRequest } from '../broker/consumers.js';
import type { Command, Reply, DeliveredMessage as StoredDelivery } from '../queues/index.js';
import {
  clientUrl,
  clusterInfo,
  itemOutcomes,
  replyError,
  wireDelivery,
  wirePeeked,
  wireStats,
} from './convert.js';
import { CloseCode, type Session } from './session.js';

/** A request waiting for the log, a read barrier or messages. */
export interface PendingRequest {
  id: number;
  op: Request['op'];
  /** publish: the queue, for metrics. */
  queue?: string;
  /** ack/nack/extend: request index of each item sent to the log when some were refused here. */
  sent?: number[] | null;
  /** ack/nack/extend: indexes refused with FORBIDDEN. */
  forbidden?: number[];
  /** ack: the items, for per-queue metrics. */
  items?: AckItem[];
  /** createQueue: the full options proposed (returned on success). */
  options?: QueueOptions;
  /** receive: the pull registered with the runtime. */
  pull?: PullRequest;
}

// ---------------------------------------------------------------------------------------------
// Hello

export function handleHello(s: Session, request: RequestOf<'hello'>): void {
  const { token, name } = request.params;
  const authenticator = s.core.authenticator;
  const principal = authenticator === null ? ANONYMOUS_ADMIN : authenticator.authenticate(token);
  if (principal === null) {
    s.fail(request.id, new FlotillaError('UNAUTHORIZED', token ? 'unknown token' : 'a token is required'));
    s.close(CloseCode.policy, 'unauthorized');
    return;
  }
  s.accepted(principal, name ?? null);
  const status = s.core.runtime.status();
  s.reply(request.id, 'hello', {
    protocolVersion: PROTOCOL_VERSION,
    nodeId: status.nodeId,
    leaderId: status.leaderId,
    leaderUrl: status.leaderId === null ? null : clientUrl(status.leaderAddress),
    serverVersion: s.core.options.serverVersion,
    limits: welcomeLimits(s.core.limits),
  });
  s.core.logger.debug({ session: s.sessionNo, client: name, principal: principal.name }, 'hello');
}

// ---------------------------------------------------------------------------------------------
// Dispatch

/** Handles an accepted session's request; a fault inside is answered INTERNAL, never thrown. */
export function handleRequest(s: Session, request: Request): void {
  try {
    dispatch(s, request);
  } catch (error) {
    s.fault(request.id, request.op, error);
  }
}

function dispatch(s: Session, request: Request): void {
  if (request.op === 'cluster') {
    s.reply(request.id, 'cluster', clusterInfo(s.core.runtime.status()));
    return;
  }
  if (!s.core.runtime.isLeader) {
    s.fail(request.id, s.core.runtime.notLeaderError());
    return;
  }
  switch (request.op) {
    case 'publish':
      publish(s, request);
      return;
    case 'ack':
    case 'nack':
    case 'extend':
      settle(s, request);
      return;
    case 'subscribe':
      whenCaughtUp(s, request, () => subscribe(s, request));
      return;
    case 'credit':
      credit(s, request);
      return;
    case 'unsubscribe':
      unsubscribe(s, request);
      return;
    case 'receive':
      whenCaughtUp(s, request, () => receive(s, request));
      return;
    case 'listQueues':
    case 'queueStats':
    case 'peek':
      read(s, request);
      return;
    case 'createQueue':
    case 'updateQueue':
    case 'deleteQueue':
    case 'purgeQueue':
    case 'redrive':
      admin(s, request);
      return;
    case 'hello':
      throw new Error('hello is handled before dispatch');
  }
}

function allowed(s: Session, id: number, action: Action, queue: string): boolean {
  if (s.principal?.can(action, queue)) return true;
  s.fail(
    id,
    new FlotillaError('FORBIDDEN', `${s.principal?.name ?? 'this client'} may not ${action} on ${queue}`),
  );
  return false;
}

/** Any permission on the queue lets a client see it in listQueues and queueStats. */
function canSee(s: Session, queue: string): boolean {
  const p = s.principal;
  return p !== null && (p.can('manage', queue) || p.can('consume', queue) || p.can('publish', queue));
}

/** Hands a command to the runtime; the answer comes back through `answerCommand`. */
function propose(s: Session, pending: PendingRequest, command: Command): void {
  const token = s.track(pending);
  const refused = s.core.runtime.submit(command, s, token);
  if (refused !== null) {
    s.take(token);
    s.fail(pending.id, refused);
  }
}

// ---------------------------------------------------------------------------------------------
// Publish and settlements

function publish(s: Session, request: RequestOf<'publish'>): void {
  const { queue, messages } = request.params;
  if (!allowed(s, request.id, 'publish', queue)) return;
  const problem = priorityProblem(s, queue, messages);
  if (problem !== null) {
    s.fail(request.id, problem);
    return;
  }
  propose(s, { id: request.id, op: 'publish', queue }, { op: 'publish', queue, messages });
}

/** The frame decoder checks priority against maxPriorityLevels; the queue's own levels are checked here. */
function priorityProblem(
  s: Session,
  queue: string,
  messages: readonly PublishMessage[],
): FlotillaError | null {
  let highest = 0;
  let at = 0;
  for (let i = 0; i < messages.length; i++) {
    const priority = messages[i]!.priority ?? 0;
    if (priority > highest) {
      highest = priority;
      at = i;
    }
  }
  if (highest === 0) return null;
  const levels = s.core.runtime.state.queueOptions(queue)?.priorityLevels;
  if (levels === undefined || highest < levels) return null;
  return invalidArgument(
    `messages[${at}].priority`,
    `${highest} is outside 0..${levels - 1} (queue ${queue})`,
  );
}

function settle(s: Session, request: RequestOf<'ack'> | RequestOf<'nack'> | RequestOf<'extend'>): void {
  const items = request.params.items;
  const forbidden: number[] = [];
  for (let i = 0; i < items.length; i++) {
    if (!s.principal?.can('consume', items[i]!.queue)) forbidden.push(i);
  }
  let sent: number[] | null = null;
  let allowedItems = items;
  if (forbidden.length > 0) {
    sent = [];
    for (let i = 0; i < items.length; i++) if (!forbidden.includes(i)) sent.push(i);
    allowedItems = sent.map((i) => items[i]!);
  }
  const pending: PendingRequest = { id: request.id, op: request.op, sent, forbidden, items: allowedItems };
  if (allowedItems.length === 0) {
    s.reply(request.id, request.op, itemOutcomes([], null, forbidden));
    return;
  }
  propose(s, pending, settleCommand(request, allowedItems));
}

function settleCommand(
  request: RequestOf<'ack'> | RequestOf<'nack'> | RequestOf<'extend'>,
  items: AckItem[],
): Command {
  switch (request.op) {
    case 'ack':
      return { op: 'ack', items };
    case 'nack':
      // A rejection (deadLetter) moves each message to its queue's dead-letter queue at once.
      return request.params.deadLetter === true
        ? { op: 'nack', items, deadLetter: true }
        : { op: 'nack', items, delayMs: request.params.delayMs ?? null };
    case 'extend':
      return { op: 'extend', items, ms: request.params.ms };
  }
}

// ---------------------------------------------------------------------------------------------
// Consumers

/**
 * Runs a request that consults the local state (does the queue exist?) once this leader has
 * applied everything committed before its term. A newly elected leader may not have yet: after
 * the whole cluster restarts it starts from its snapshot and learns the commit index only when
 * its first entry commits. Answering QUEUE_NOT_FOUND then, for a queue that exists, would end a
 * client's subscription for good; so until the leader's duties start such a request waits for a
 * read barrier (which resolves once that point is applied here).
 */
function whenCaughtUp(s: Session, request: RequestOf<'subscribe' | 'receive'>, run: () => void): void {
  if (s.core.runtime.dutiesActive) run();
  else afterReadBarrier(s, request, run);
}

/**
 * Runs `run` once everything committed before now is applied here, if the session is still open
 * and this node still leads (else NOT_LEADER); a fault inside is answered INTERNAL.
 */
function afterReadBarrier(s: Session, request: Request, run: () => void): void {
  const token = s.track({ id: request.id, op: request.op });
  const runtime = s.core.runtime;
  runtime.readBarrier().then(
    () => {
      if (s.take(token) === null) return; // the session closed meanwhile
      if (!runtime.isLeader) {
        s.fail(request.id, runtime.notLeaderError());
        return;
      }
      try {
        run();
      } catch (error) {
        s.fault(request.id, request.op, error);
      }
    },
    () => {
      if (s.take(token) !== null) s.fail(request.id, runtime.notLeaderError());
    },
  );
}

function queueExists(s: Session, id: number, queue: string): boolean {
  if (s.core.runtime.state.queueOptions(queue) !== null) return true;
  s.fail(id, new FlotillaError('QUEUE_NOT_FOUND', `queue ${queue} does not exist`));
  return false;
}

/** Consumer ids are `<nodeId>:<term>:<session>:<sub>` (sub 0 for pulls): unique cluster-wide. */
function consumerId(s: Session, sub: number): string {
  const prefix = s.core.runtime.consumerPrefix();
  if (prefix === null) throw new Error('consumer id asked for while not leader');
  const id = `${prefix}${s.sessionNo}:${sub}`;
  s.consumerIds.add(id);
  return id;
}

function subscribe(s: Session, request: RequestOf<'subscribe'>): void {
  const { queue, prefetch } = request.params;
  if (!allowed(s, request.id, 'consume', queue) || !queueExists(s, request.id, queue)) return;
  if (s.subs.size >= s.core.options.maxSubscriptionsPerSession) {
    const max = s.core.options.maxSubscriptionsPerSession;
    s.fail(request.id, new FlotillaError('OVERLOADED', `at most ${max} subscriptions per connection`));
    return;
  }
  const subId = s.newSubId();
  const sub = s.core.runtime.subscribe(s, subId, queue, consumerId(s, subId), prefetch);
  s.subs.set(subId, sub);
  s.reply(request.id, 'subscribe', subId);
}

function credit(s: Session, request: RequestOf<'credit'>): void {
  const sub = s.subs.get(request.params.subId);
  if (sub === undefined) {
    s.fail(request.id, subscriptionNotFound(request.params.subId));
    return;
  }
  s.core.runtime.setPrefetch(sub, request.params.prefetch);
  s.reply(request.id, 'credit', null);
}

function unsubscribe(s: Session, request: RequestOf<'unsubscribe'>): void {
  const sub = s.subs.get(request.params.subId);
  if (sub === undefined) {
    s.fail(request.id, subscriptionNotFound(request.params.subId));
    return;
  }
  s.subs.delete(sub.subId);
  // Leases already made stay the caller's (released when the session closes); none, none to keep.
  if (sub.unsettled.size === 0 && sub.requested === 0) s.consumerIds.delete(sub.consumerId);
  const token = s.track({ id: request.id, op: 'unsubscribe' });
  s.core.runtime.unsubscribe(sub, token);
}

function subscriptionNotFound(subId: number): FlotillaError {
  return new FlotillaError('SUBSCRIPTION_NOT_FOUND', `no subscription ${subId} on this connection`);
}

function receive(s: Session, request: RequestOf<'receive'>): void {
  const { queue, max, waitMs, visibilityTimeoutMs } = request.params;
  if (!allowed(s, request.id, 'consume', queue) || !queueExists(s, request.id, queue)) return;
  const pending: PendingRequest = { id: request.id, op: 'receive' };
  const token = s.track(pending);
  pending.pull = s.core.runtime.receive(s, token, {
    queue,
    consumerId: consumerId(s, 0),
    max,
    waitMs,
    leaseMs: visibilityTimeoutMs ?? null,
  });
  s.pulls.add(pending.pull);
}

/** A receive result: the queue travels in each message for the encoder. */
export function wireReceive(queue: string, messages: readonly StoredDelivery[]): DeliveredMessage[] {
  return messages.map((m) => wireDelivery(queue, m));
}

// ---------------------------------------------------------------------------------------------
// Admin

function admin(
  s: Session,
  request: RequestOf<'createQueue' | 'updateQueue' | 'deleteQueue' | 'purgeQueue' | 'redrive'>,
): void {
  switch (request.op) {
    case 'createQueue': {
      const { name, options } = request.params;
      if (!allowed(s, request.id, 'manage', name)) return;
      const resolved = resolveQueueOptions(name, options, undefined, { limits: s.core.limits });
      if (!resolved.ok) {
        s.fail(request.id, resolved.error);
        return;
      }
      const command: Command = { op: 'createQueue', queue: name, options: resolved.value };
      propose(s, { id: request.id, op: 'createQueue', options: resolved.value }, command);
      return;
    }
    case 'updateQueue': {
      const { name, options } = request.params;
      if (!allowed(s, request.id, 'manage', name)) return;
      propose(s, { id: request.id, op: 'updateQueue' }, { op: 'updateQueue', queue: name, changes: options });
      return;
    }
    case 'deleteQueue':
    case 'purgeQueue': {
      const name = request.params.name;
      if (!allowed(s, request.id, 'manage', name)) return;
      propose(s, { id: request.id, op: request.op }, { op: request.op, queue: name });
      return;
    }
    case 'redrive': {
      const { dlq, target, max } = request.params;
      if (!allowed(s, request.id, 'manage', dlq)) return;
      if (target != null && !allowed(s, request.id, 'manage', target)) return;
      const limit = max ?? s.core.limits.maxRedriveMessages;
      propose(
        s,
        { id: request.id, op: 'redrive' },
        { op: 'redrive', dlq, target: target ?? null, max: limit },
      );
      return;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Answers from the log

export function answerCommand(s: Session, pending: PendingRequest, command: Command, reply: Reply): void {
  if (!reply.ok) {
    s.fail(pending.id, replyError(reply));
    return;
  }
  switch (reply.op) {
    case 'publish':
      answerPublish(s, pending, reply.results);
      return;
    case 'ack':
    case 'nack':
    case 'extend': {
      if (reply.op === 'ack') countAcks(s, pending, reply.results);
      const op = reply.op;
      s.reply(pending.id, op, itemOutcomes(reply.results, pending.sent ?? null, pending.forbidden ?? []));
      return;
    }
    case 'createQueue':
      if (!reply.created) {
        s.fail(pending.id, new FlotillaError('QUEUE_EXISTS', `queue ${queueOf(command)} already exists`));
        return;
      }
      s.reply(pending.id, 'createQueue', pending.options as QueueOptions);
      return;
    case 'updateQueue':
      s.reply(pending.id, 'updateQueue', reply.options);
      return;
    case 'deleteQueue':
      s.reply(pending.id, 'deleteQueue', null);
      return;
    case 'purgeQueue':
      s.reply(pending.id, 'purgeQueue', reply.purged);
      return;
    case 'redrive':
      s.reply(pending.id, 'redrive', reply.moved);
      return;
    default:
      throw new Error(`no answer for a ${reply.op} reply to ${pending.op}`);
  }
}

function answerPublish(
  s: Session,
  pending: PendingRequest,
  results: Extract<Reply, { op: 'publish' }>['results'],
) {
  const seqs: number[] = new Array(results.length);
  const duplicates: number[] = [];
  for (let i = 0; i < results.length; i++) {
    const result = results[i]!;
    if (!result.ok) {
      s.fail(pending.id, new FlotillaError('QUEUE_FULL', result.message));
      return;
    }
    seqs[i] = result.seq;
    if (result.duplicate) duplicates.push(i);
  }
  s.core.metrics?.published.inc({ queue: pending.queue as string }, results.length - duplicates.length);
  s.reply(pending.id, 'publish', { seqs, duplicates });
}

function countAcks(s: Session, pending: PendingRequest, results: readonly { ok: boolean }[]): void {
  const metrics = s.core.metrics;
  const items = pending.items;
  if (metrics === null || items === undefined) return;
  let queue = '';
  let count = 0;
  for (let i = 0; i < results.length; i++) {
    if (!results[i]!.ok) continue;
    const q = items[i]!.queue;
    if (q !== queue && count > 0) {
      metrics.acked.inc({ queue }, count);
      count = 0;
    }
    queue = q;
    count++;
  }
  if (count > 0) metrics.acked.inc({ queue }, count);
}

function queueOf(command: Command): string {
  return 'queue' in command ? command.queue : '';
}

// ---------------------------------------------------------------------------------------------
// Reads

function read(s: Session, request: RequestOf<'listQueues' | 'queueStats' | 'peek'>): void {
  if (request.op === 'queueStats' && !canSee(s, request.params.name)) {
    allowed(s, request.id, 'consume', request.params.name);
    return;
  }
  if (request.op === 'peek' && !s.principal?.can('manage', request.params.queue)) {
    if (!allowed(s, request.id, 'consume', request.params.queue)) return;
  }
  afterReadBarrier(s, request, () => answerRead(s, request));
}

function answerRead(s: Session, request: RequestOf<'listQueues' | 'queueStats' | 'peek'>): void {
  const sm = s.core.runtime.state;
  const nowMs = s.core.clock.now();
  switch (request.op) {
    case 'listQueues': {
      const stats = sm.queueNames().flatMap((name) => {
        const one = canSee(s, name) ? wireStats(sm, name, nowMs) : null;
        return one === null ? [] : [s.core.decorateStats(one)];
      });
      s.reply(request.id, 'listQueues', stats);
      return;
    }
    case 'queueStats': {
      const stats = wireStats(sm, request.params.name, nowMs);
      if (stats === null) s.fail(request.id, notFound(request.params.name));
      else s.reply(request.id, 'queueStats', s.core.decorateStats(stats));
      return;
    }
    case 'peek': {
      const { queue, max, fromSeq } = request.params;
      const peeked = sm.peek(queue, fromSeq ?? 0, max);
      if (peeked === null) s.fail(request.id, notFound(queue));
      else
        s.reply(
          request.id,
          'peek',
          peeked.map((m) => wirePeeked(queue, m)),
        );
      return;
    }
  }
}

function notFound(queue: string): FlotillaError {
  return new FlotillaError('QUEUE_NOT_FOUND', `queue ${queue} does not exist`);
}
