/**
 * Keeps the client connected to the cluster's leader and runs requests with retries.
 *
 * Finding the leader: every welcome names the answering node and the leader it knows. The link
 * remembers which of the user's URLs is which node id. When a node names another leader (in its
 * welcome, a NOT_LEADER reply or a goingAway push), the link moves to the user's URL for that id;
 * if it has not seen that id yet it tries the user's URLs it has not identified; only then does
 * it use the leader's advertised URL, which may not be reachable from here (containers, port
 * mapping). With no leader known (an election) it backs off and tries the next URL.
 *
 * Learning the members: after each connection is adopted the link asks `cluster` for the members
 * and their advertised URLs (so does every `cluster()` call), and tries those URLs after the
 * user's, in every round, never instead of them. A long-lived client whose configured nodes were
 * all removed or are down thus still finds the members that replaced them, while a deployment
 * whose advertised addresses are unreachable from here loses nothing: the user's URLs come first.
 *
 * Reconnecting: exponential backoff with jitter, reset by the first successful request. A URL
 * whose connection was dropped as unresponsive (a paused node keeps its sockets open, see
 * connection.ts) is avoided for a while, so the search for the new leader does not wait out a
 * hello timeout on it, nor follow other nodes' stale word that it still leads.
 *
 * Retrying: a request is repeated within its deadline when nothing was applied (NOT_LEADER,
 * UNAVAILABLE, OVERLOADED) and, for idempotent requests only, when the outcome is unknown
 * (CONNECTION_LOST, TIMEOUT). Everything else surfaces as the typed error, except that once an
 * attempt may have been applied, the final error says so (see `outcomeUnknown`) whatever the last
 * attempt's code.
 */

import {
  type ClusterNodeInfo,
  type ErrorCode,
  FlotillaError,
  type OpName,
  type Push,
  type RequestParams,
  type ResultMap,
  type ServerLimitsInfo,
  welcomeLimits,
} from '@flotilla/shared';
import { Connection } from './connection.js';
import type { TypedEmitter } from './emitter.js';
import { normalizeServerUrl, type ResolvedOptions } from './options.js';
import { defaultWebSocketFactory, type WebSocketFactory } from './transport.js';
import {
  backoffDelayMs,
  cancelledError,
  Deadline,
  type Deferred,
  deferred,
  outcomeUnknown,
  sleep,
  toFlotillaError,
} from './util.js';

/** Where the client is in its life. */
export type ClientStatus = 'connecting' | 'connected' | 'reconnecting' | 'draining' | 'closed';

/** Events of a client, by name, with their payloads. */
export interface ClientEvents {
  /** A connection to the leader (or to a node while no leader is known) is ready. */
  connected: { url: string; nodeId: string; leaderId: string | null };
  /** The connection in use closed or was left for another node. */
  disconnected: { url: string; nodeId: string; error: FlotillaError };
  /** The leader the client knows of changed (null: an election is in progress). */
  leaderChanged: { leaderId: string | null; previousLeaderId: string | null };
  /**
   * Something failed that no caller awaits: a failed automatic ack, a broken frame, a subscription
   * the server ended for good (its `closed()` resolves with the same error).
   */
  error: FlotillaError;
}

/** What the link tells its client. */
export interface LinkHooks {
  onConnected(connection: Connection): void;
  onDisconnected(connection: Connection): void;
  onPush(connection: Connection, push: Push): void;
  /** The link closed for good: `error` is CLOSED after `close(null)`, else what ended it. */
  onClosed(error: FlotillaError): void;
}

/** How a request may be retried. */
export interface CallOptions<K extends OpName> {
  /** Safe to repeat when its outcome is unknown (CONNECTION_LOST, TIMEOUT). */
  idempotent: boolean;
  /** Deadline across all attempts (default: requestTimeoutMs). */
  timeoutMs?: number;
  /** Stops the request (no more attempts; the one in flight is forgotten): it rejects with CANCELLED. */
  signal?: AbortSignal;
  /** Runs synchronously when the result arrives, before later frames are read. */
  onResult?: (result: ResultMap[K]) => void;
  /** Told of every failed attempt that is about to be retried (a later success may follow). */
  onRetry?: (failure: FlotillaError) => void;
}

/**
 * How long a URL whose node stopped answering is avoided, in ms: enough for an election (about a
 * second) and for the other nodes to learn the new leader, short enough that a node that resumes
 * is used again soon. Avoided, not banned: when every candidate is avoided, it is tried anyway.
 */
const AVOID_UNRESPONSIVE_MS = 10_000;

/** Codes after which no reconnect can help: the client closes with them. */
const FATAL: ReadonlySet<ErrorCode> = new Set(['UNAUTHORIZED', 'UNSUPPORTED_VERSION']);
/** Codes that guarantee nothing was applied and another attempt may succeed. */
const NOT_APPLIED_RETRYABLE: ReadonlySet<ErrorCode> = new Set(['NOT_LEADER', 'UNAVAILABLE', 'OVERLOADED']);
/** Codes whose outcome is unknown: only idempotent requests go again. */
const OUTCOME_UNKNOWN: ReadonlySet<ErrorCode> = new Set(['CONNECTION_LOST', 'TIMEOUT']);

interface LeaderHint {
  leaderId: string;
  leaderUrl: string | null;
  /** User URLs already tried while looking for this leader. */
  probed: Set<string>;
  /** Moves left before giving up on this hint (guards against nodes naming each other forever). */
  movesLeft: number;
}

/** The connection manager behind a client. */
export class LeaderLink {
  private current: Connection | null = null;
  private ready: Deferred<Connection> = this.newReady();
  private connecting: Promise<void> | null = null;
  private readonly nodeIdByUrl = new Map<string, string>();
  private hint: LeaderHint | null = null;
  private lastAttempt: { url: string; fromHint: boolean } | null = null;
  private nextServer = 0;
  /** Attempts since the last successful request; drives the backoff. */
  private failures = 0;
  /** The next connection attempt may skip the backoff: the caller already waited. */
  private waitedAlready = false;
  private epochs = 0;
  private leaderId: string | null = null;
  private lastLimits: ServerLimitsInfo = welcomeLimits();
  private webSocket: WebSocketFactory | undefined;
  private closedError: FlotillaError | null = null;
  private readonly closing = deferred<void>();
  private lastError: FlotillaError | null = null;
  /**
   * Advertised client URLs of the cluster's members by node id, as of the latest `cluster`
   * answer: candidates tried after the user's URLs (see the file comment).
   */
  private readonly members = new Map<string, string>();
  /** URLs whose node stopped answering, and until when (monotonic ms) to avoid them. */
  private readonly unresponsive = new Map<string, number>();
  status: ClientStatus = 'connecting';

  constructor(
    private readonly options: ResolvedOptions,
    private readonly events: TypedEmitter<ClientEvents>,
    private readonly hooks: LinkHooks,
  ) {
    this.webSocket = options.webSocket;
  }

  /** The connection in use, or null while (re)connecting. */
  get connection(): Connection | null {
    return this.current;
  }

  /** The leader's node id as last known (null: unknown). */
  get knownLeaderId(): string | null {
    return this.leaderId;
  }

  /** The limits of the node in use (or the last one, or protocol defaults). */
  get limits(): ServerLimitsInfo {
    return this.lastLimits;
  }

  /** Which node id each configured URL turned out to be. */
  get learnedNodes(): ReadonlyMap<string, string> {
    return this.nodeIdByUrl;
  }

  /** The members' advertised URLs by node id, as last learned from a `cluster` answer. */
  get memberUrls(): ReadonlyMap<string, string> {
    return this.members;
  }

  /**
   * Takes the membership of a `cluster` answer: its members' advertised URLs replace those known
   * (removed members are forgotten). Unusable URLs are left out.
   */
  noteMembers(nodes: readonly ClusterNodeInfo[]): void {
    if (!Array.isArray(nodes)) return;
    this.members.clear();
    for (const node of nodes) {
      const url = typeof node?.url === 'string' ? usableUrl(node.url) : null;
      if (url !== null && typeof node.id === 'string') this.members.set(node.id, url);
    }
  }

  /** The first connection: resolves when one is adopted, rejects after connectTimeoutMs or a fatal error. */
  async start(): Promise<void> {
    this.ensureConnecting();
    const deadline = new Deadline(this.options.connectTimeoutMs, () => 'connect');
    try {
      await deadline.race(this.ready.promise, false);
    } catch (error) {
      const failure = toFlotillaError(error);
      if (failure.code !== 'TIMEOUT') throw failure;
      const reason = this.lastError?.message ?? 'no answer';
      const unavailable = new FlotillaError(
        'UNAVAILABLE',
        `could not connect to ${this.options.servers.join(', ')} within ${this.options.connectTimeoutMs} ms: ${reason}`,
        { servers: this.options.servers },
        { cause: this.lastError ?? undefined },
      );
      this.close(unavailable);
      throw unavailable;
    } finally {
      deadline.clear();
    }
  }

  /**
   * Sends a request to the leader, retrying while that is safe, within one deadline. `params` may
   * be a function: it is asked again before every attempt (a publish frame leaves out messages
   * whose callers gave up).
   */
  async call<K extends OpName>(
    op: K,
    params: RequestParams[K] | (() => RequestParams[K]),
    options: CallOptions<K>,
  ): Promise<ResultMap[K]> {
    const deadline = new Deadline(options.timeoutMs ?? this.options.requestTimeoutMs, () => op);
    let sent = false;
    const { signal } = options;
    const onAbort = () => deadline.cancel(cancelledError(op, signal!, { sent }));
    if (signal?.aborted) onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    // Failed attempts that were retried: the final error says "maybe applied" if any of them may have been.
    const retried: FlotillaError[] = [];
    try {
      for (let attempt = 1; ; attempt++) {
        const connection = await deadline.race(this.awaitConnection(), sent);
        try {
          const request = typeof params === 'function' ? params() : params;
          sent = true;
          return await this.attempt(connection, op, request, deadline, options.onResult);
        } catch (error) {
          const failure = toFlotillaError(error);
          if (deadline.expired || !mayRetry(failure, options.idempotent)) throw failure;
          retried.push(failure);
          options.onRetry?.(failure);
          await this.recover(connection, failure, attempt, deadline);
        }
      }
    } catch (error) {
      const failure = toFlotillaError(error);
      const timedOut = deadline.expired && failure.code === 'TIMEOUT';
      throw timedOut ? timeoutAfterAttempts(failure, retried) : outcomeUnknown(op, failure, retried);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      deadline.clear();
    }
  }

  /** One attempt on a given connection with the request deadline; no retries. */
  async callOn<K extends OpName>(
    connection: Connection,
    op: K,
    params: RequestParams[K],
    onResult?: (result: ResultMap[K]) => void,
  ): Promise<ResultMap[K]> {
    const deadline = new Deadline(this.options.requestTimeoutMs, () => op);
    try {
      return await this.attempt(connection, op, params, deadline, onResult);
    } finally {
      deadline.clear();
    }
  }

  /** Waits the backoff delay for retry number `attempt` (cut short by close). */
  pause(attempt: number): Promise<void> {
    return sleep(backoffDelayMs(attempt, this.options.reconnectDelayMs), this.closing.promise);
  }

  /**
   * `connection` told us to go elsewhere (NOT_LEADER, goingAway). Moves to the named leader, or,
   * when none is named, to the next server.
   */
  followLeader(connection: Connection, leaderId: string | null, leaderUrl: string | null): void {
    if (leaderId !== null) this.noteLeader(leaderId);
    if (connection !== this.current) return;
    if (leaderId !== null && leaderId !== connection.nodeId) {
      if (this.hint?.leaderId !== leaderId) {
        this.hint = { leaderId, leaderUrl, probed: new Set(), movesLeft: this.candidates().length + 1 };
      }
    }
    this.detach(connection, 'moving to the leader');
  }

  /** Closes the link: no more connections; requests fail with `error` (CLOSED by default). */
  close(error: FlotillaError | null): void {
    if (this.closedError !== null) return;
    this.closedError = error ?? new FlotillaError('CLOSED', 'the client is closed');
    this.status = 'closed';
    this.closing.resolve();
    this.ready.reject(this.closedError);
    const connection = this.current;
    this.current = null;
    connection?.close(1000, 'client closed', this.closedError);
    this.hooks.onClosed(this.closedError);
  }

  private newReady(): Deferred<Connection> {
    const ready = deferred<Connection>();
    ready.promise.catch(() => {});
    return ready;
  }

  private awaitConnection(): Promise<Connection> {
    if (this.closedError !== null) return Promise.reject(this.closedError);
    if (this.current !== null) return Promise.resolve(this.current);
    this.ensureConnecting();
    return this.ready.promise;
  }

  private attempt<K extends OpName>(
    connection: Connection,
    op: K,
    params: RequestParams[K],
    deadline: Deadline,
    onResult?: (result: ResultMap[K]) => void,
  ): Promise<ResultMap[K]> {
    const handle = connection.request(op, params, (result) => {
      this.failures = 0;
      onResult?.(result);
    });
    return deadline.race(handle.promise, true, handle.cancel);
  }

  /** What to do before retrying after a retryable failure on `connection`. */
  private async recover(
    connection: Connection,
    failure: FlotillaError,
    attempt: number,
    deadline: Deadline,
  ): Promise<void> {
    if (failure.code === 'CONNECTION_LOST') return; // the link is already reconnecting
    if (failure.code === 'NOT_LEADER') {
      const { leaderId, leaderUrl } = notLeaderDetails(failure);
      if (leaderId !== null && leaderId !== connection.nodeId) {
        this.followLeader(connection, leaderId, leaderUrl);
        return;
      }
      // No leader known (an election): wait, then ask another node (without waiting again).
      await this.pauseWithin(attempt, deadline);
      if (connection === this.current) {
        this.waitedAlready = true;
        this.detach(connection, 'no leader known');
      }
      return;
    }
    await this.pauseWithin(attempt, deadline);
  }

  private async pauseWithin(attempt: number, deadline: Deadline): Promise<void> {
    await deadline.race(this.pause(attempt), true);
  }

  private ensureConnecting(): void {
    if (this.connecting !== null || this.closedError !== null || this.current !== null) return;
    this.connecting = this.connectLoop().finally(() => {
      this.connecting = null;
    });
  }

  private async connectLoop(): Promise<void> {
    let redirects = 0;
    let justRedirected = false;
    while (this.closedError === null && this.current === null) {
      // Backoff is for failures: a node that just named the leader sends us straight there
      // (bounded by the redirect count, so nodes that disagree cannot keep us spinning), and a
      // request that waited out an election before leaving its node has paused already.
      const backOff = this.failures > 0 && !justRedirected && !this.waitedAlready;
      if (backOff || redirects > this.candidates().length) {
        await this.pause(Math.max(this.failures, 1));
        if (this.closedError !== null) return;
      }
      justRedirected = false;
      this.waitedAlready = false;
      const url = this.nextUrl();
      this.failures++;
      const connection = await this.tryOpen(url);
      if (connection === null) continue;
      if (this.closedError !== null) {
        connection.close(1000, 'client closed');
        return;
      }
      if (this.redirected(url, connection)) {
        this.failures--;
        redirects++;
        justRedirected = true;
        continue;
      }
      this.adopt(connection);
    }
  }

  private async tryOpen(url: string): Promise<Connection | null> {
    try {
      this.webSocket ??= await defaultWebSocketFactory();
      const connection = await Connection.open(
        {
          url,
          token: this.options.token,
          name: this.options.name,
          webSocket: this.webSocket,
          helloTimeoutMs: this.options.helloTimeoutMs,
          epoch: ++this.epochs,
          heartbeatIntervalMs: this.options.heartbeatIntervalMs,
          heartbeatTimeoutMs: this.options.heartbeatTimeoutMs,
        },
        {
          onPush: (connection, push) => this.handlePush(connection, push),
          onClose: (connection, error) => this.handleClose(connection, error),
          onError: (_connection, error) => this.events.emit('error', error),
        },
      );
      this.unresponsive.delete(url); // it answers again
      return connection;
    } catch (error) {
      const failure = toFlotillaError(error);
      this.lastError = failure;
      if (this.lastAttempt?.fromHint) this.hint = null; // the hinted node is not reachable: look around
      if (FATAL.has(failure.code)) this.close(failure);
      return null;
    }
  }

  /** Learns the URL's node id; true if the node named another leader and we moved on. */
  private redirected(url: string, connection: Connection): boolean {
    const { nodeId, leaderId, leaderUrl } = connection.welcome;
    if (this.options.servers.includes(url)) this.nodeIdByUrl.set(url, nodeId);
    this.noteLeader(leaderId);
    if (leaderId === null || leaderId === nodeId) return false;
    if (this.hint?.leaderId !== leaderId) {
      this.hint = { leaderId, leaderUrl, probed: new Set(), movesLeft: this.candidates().length + 1 };
    }
    connection.close(1000, 'following the leader');
    return true;
  }

  /**
   * The URL of the next attempt: the leader's (by node id) if one is hinted, else the next server;
   * URLs of unresponsive nodes are skipped while there is another choice.
   */
  private nextUrl(): string {
    const fromHint = this.hintedUrl();
    if (fromHint !== null && !this.isAvoided(fromHint)) {
      this.lastAttempt = { url: fromHint, fromHint: true };
      return fromHint;
    }
    // A hint naming a node that stopped answering is stale: ask the others who leads now.
    if (fromHint !== null) this.hint = null;
    const candidates = this.candidates();
    this.nextServer %= candidates.length;
    let url = candidates[this.nextServer]!;
    for (let tried = 0; tried < candidates.length && this.isAvoided(url); tried++) {
      this.nextServer = (this.nextServer + 1) % candidates.length;
      url = candidates[this.nextServer]!;
    }
    this.nextServer = (this.nextServer + 1) % candidates.length;
    this.lastAttempt = { url, fromHint: false };
    return url;
  }

  /** The URLs to go round: the user's first, then the members' advertised URLs not among them. */
  private candidates(): string[] {
    const servers = this.options.servers;
    if (this.members.size === 0) return servers;
    const extra = [...new Set(this.members.values())].filter((url) => !servers.includes(url));
    return extra.length === 0 ? servers : [...servers, ...extra];
  }

  /** Whether `url`'s node was found unresponsive lately (expired entries are dropped). */
  private isAvoided(url: string): boolean {
    const untilMs = this.unresponsive.get(url);
    if (untilMs === undefined) return false;
    if (globalThis.performance.now() < untilMs) return true;
    this.unresponsive.delete(url);
    return false;
  }

  private hintedUrl(): string | null {
    const hint = this.hint;
    if (hint === null) return null;
    if (hint.movesLeft-- <= 0) {
      this.hint = null;
      return null;
    }
    for (const [url, nodeId] of this.nodeIdByUrl) if (nodeId === hint.leaderId) return url;
    const unidentified = this.options.servers.find(
      (url) => !this.nodeIdByUrl.has(url) && !hint.probed.has(url),
    );
    if (unidentified !== undefined) {
      hint.probed.add(unidentified);
      return unidentified;
    }
    this.hint = null;
    const advertised = hint.leaderUrl === null ? null : usableUrl(hint.leaderUrl);
    return advertised ?? this.members.get(hint.leaderId) ?? null;
  }

  private adopt(connection: Connection): void {
    this.current = connection;
    this.hint = null;
    this.lastLimits = connection.limits;
    if (this.status !== 'draining') this.status = 'connected';
    const { nodeId, leaderId } = connection.welcome;
    this.events.emit('connected', { url: connection.url, nodeId, leaderId });
    this.ready.resolve(connection);
    this.hooks.onConnected(connection);
    this.learnMembers(connection);
  }

  /** Asks the new connection's node for the members (in the background; a failure changes nothing). */
  private learnMembers(connection: Connection): void {
    this.callOn(connection, 'cluster', {}).then(
      (info) => this.noteMembers(info.nodes),
      () => {},
    );
  }

  /** Stops using the current connection and starts looking for the leader again. */
  private detach(connection: Connection, reason: string, error?: FlotillaError): void {
    if (connection !== this.current) return;
    this.current = null;
    this.ready = this.newReady();
    if (this.status !== 'draining') this.status = 'reconnecting';
    const failure =
      error ??
      new FlotillaError('CONNECTION_LOST', `left ${connection.url}: ${reason}`, { url: connection.url });
    if (failure.details.unresponsive === true) {
      this.unresponsive.set(connection.url, globalThis.performance.now() + AVOID_UNRESPONSIVE_MS);
    }
    this.events.emit('disconnected', { url: connection.url, nodeId: connection.nodeId, error: failure });
    this.hooks.onDisconnected(connection);
    connection.retire();
    this.ensureConnecting();
  }

  private handleClose(connection: Connection, error: FlotillaError): void {
    if (connection === this.current && this.closedError === null)
      this.detach(connection, error.message, error);
  }

  private handlePush(connection: Connection, push: Push): void {
    if (push.kind === 'goingAway') this.followLeader(connection, push.leaderId, push.leaderUrl);
    else this.hooks.onPush(connection, push);
  }

  private noteLeader(leaderId: string | null): void {
    if (leaderId === this.leaderId) return;
    const previousLeaderId = this.leaderId;
    this.leaderId = leaderId;
    this.events.emit('leaderChanged', { leaderId, previousLeaderId });
  }
}

/**
 * The TIMEOUT of a call whose deadline passed after failed attempts (during a backoff pause, while
 * reconnecting, or with one more attempt unanswered): it keeps the last failed attempt's error as
 * its cause and lists every attempt, so the caller still learns why the attempts failed
 * (UNAVAILABLE: no quorum...). TIMEOUT itself already says "maybe applied".
 */
function timeoutAfterAttempts(timeout: FlotillaError, retried: FlotillaError[]): FlotillaError {
  const lastAttempt = retried.at(-1);
  if (lastAttempt === undefined) return timeout;
  const attempts = [...retried, timeout].map(({ code, message }) => ({ code, message }));
  return new FlotillaError(
    timeout.code,
    `${timeout.message}; the last failed attempt: ${lastAttempt.code}: ${lastAttempt.message}`,
    { ...timeout.details, attempts },
    { cause: lastAttempt },
  );
}

/** An advertised URL as a WebSocket URL, or null when it is not one. */
function usableUrl(advertised: string): string | null {
  try {
    return normalizeServerUrl(advertised);
  } catch {
    return null;
  }
}

function mayRetry(failure: FlotillaError, idempotent: boolean): boolean {
  if (NOT_APPLIED_RETRYABLE.has(failure.code)) return true;
  return idempotent && OUTCOME_UNKNOWN.has(failure.code);
}

function notLeaderDetails(failure: FlotillaError): { leaderId: string | null; leaderUrl: string | null } {
  const { leaderId, leaderUrl } = failure.details;
  return {
    leaderId: typeof leaderId === 'string' ? leaderId : null,
    leaderUrl: typeof leaderUrl === 'string' ? leaderUrl : null,
  };
}
