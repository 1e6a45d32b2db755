/**
 * A fake Flotilla cluster for the SDK's tests: one `ws` server per fake node on a free loopback
 * port, speaking the client protocol with the shared codec, all nodes serving one in-memory
 * broker. A test chooses the leader (followers answer NOT_LEADER naming it), can make the
 * leader's advertised URL unreachable (so only following by node id works), drop connections,
 * send goingAway, refuse, hold or swallow any request, freeze a node (it stops answering but keeps
 * its connections open, like a paused process), and inspect every request received.
 *
 * Node-only (it imports `ws`); never exported from the SDK's entry point. The broker package's
 * real gateway replaces it in cluster tests.
 */

import {
  DEFAULT_LIMITS,
  type DeliveredMessage,
  decodeRequest,
  encodeDeliver,
  encodeError,
  encodePush,
  encodeResult,
  FlotillaError,
  type OpName,
  PROTOCOL_VERSION,
  type ProtocolLimits,
  type Request,
  type RequestOf,
  type ResultMap,
  type Welcome,
  welcomeLimits,
} from '@flotilla/shared';
import { WebSocket, WebSocketServer } from 'ws';
import { FakeBroker, type FakeSubscription } from './fake-broker.js';

/** A request as the fake received it. */
export interface RecordedRequest {
  nodeId: string;
  sessionId: number;
  request: Request;
}

/**
 * What to do with a request instead of serving it normally:
 * - `error`: answer with this error, apply nothing;
 * - `reply`: answer with this result, apply nothing;
 * - `hold`: apply it, keep the reply until `releaseHeld()`;
 * - `ignore`: apply nothing, never answer;
 * - `drop`: apply nothing, close the connection.
 */
export type RequestAction =
  | { kind: 'error'; error: FlotillaError }
  | { kind: 'reply'; result: unknown }
  | { kind: 'hold' }
  | { kind: 'ignore' }
  | { kind: 'drop' }
  | undefined;

export interface FakeClusterOptions {
  /** Node ids, one server each (default `['n1']`). */
  nodeIds?: string[];
  /** The leader (default: the first node; null: no leader, an election). */
  leaderId?: string | null;
  /** URL each node advertises as its client URL: `unreachable` (default) or its `real` URL. */
  advertise?: 'unreachable' | 'real';
  /** Tighter protocol limits (e.g. a small maxPublishBatch). */
  limits?: Partial<ProtocolLimits>;
  /** Accepted bearer tokens; when given, hello without one of them gets UNAUTHORIZED. */
  tokens?: string[];
}

/** An address nothing listens on: port 9 (discard) on loopback, so a connect fails fast. */
const UNREACHABLE_URL_BASE = 'ws://127.0.0.1:9/client';

/** One client connection to a fake node. */
class FakeSession {
  welcomed = false;
  private nextSubId = 1;
  readonly subs = new Map<number, FakeSubscription>();

  constructor(
    readonly id: number,
    readonly node: FakeNode,
    readonly socket: WebSocket,
  ) {}

  send(frame: Uint8Array): void {
    if (this.node.frozen) return;
    if (this.socket.readyState === WebSocket.OPEN) this.socket.send(frame);
  }

  newSubscription(queue: string, window: number): FakeSubscription {
    const subId = this.nextSubId++;
    const sub: FakeSubscription = {
      sessionId: this.id,
      subId,
      queue,
      window,
      unsettled: new Set(),
      maxUnsettled: 0,
      push: (name: string, messages: DeliveredMessage[]) => this.send(encodeDeliver(subId, name, messages)),
    };
    this.subs.set(subId, sub);
    return sub;
  }
}

/** One fake node: a WebSocket server at `/client` on a loopback port. */
export class FakeNode {
  readonly sessions = new Set<FakeSession>();
  private server!: WebSocketServer;
  port = 0;
  /**
   * A frozen node reads and answers nothing and pushes nothing, yet keeps every connection open
   * and still accepts new ones (which then never get a welcome): a paused process as the client
   * sees it. Frames sent to it meanwhile are lost, not queued.
   */
  frozen = false;

  constructor(
    readonly id: string,
    private readonly cluster: FakeCluster,
  ) {}

  /** The URL a user would configure for this node (no path: the SDK adds `/client`). */
  get url(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  async listen(port = 0): Promise<void> {
    this.server = new WebSocketServer({ host: '127.0.0.1', port, path: '/client' });
    await new Promise<void>((resolve, reject) => {
      this.server.once('listening', resolve);
      this.server.once('error', reject);
    });
    this.port = (this.server.address() as { port: number }).port;
    this.server.on('connection', (socket) => this.cluster.accept(this, socket));
  }

  /** Closes every client connection of this node (the clients see CONNECTION_LOST). */
  dropConnections(code = 1001): void {
    for (const session of this.sessions) session.socket.close(code, 'dropped by the test');
  }

  /** Stops listening and closes every connection. */
  async stop(): Promise<void> {
    for (const session of this.sessions) session.socket.terminate();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A fake cluster of nodes sharing one broker. Start with `FakeCluster.start()`. */
export class FakeCluster {
  readonly broker = new FakeBroker();
  readonly nodes: FakeNode[];
  readonly requests: RecordedRequest[] = [];
  leaderId: string | null;
  /** Inspects each request (after hello) and may answer it differently; see RequestAction. */
  interceptor: ((recorded: RecordedRequest) => RequestAction) | null = null;
  readonly limits: ProtocolLimits;
  /** Accepted tokens (undefined: no authentication); a test may change them to revoke a token. */
  tokens: string[] | undefined;
  private readonly held: Array<{ session: FakeSession; frame: Uint8Array }> = [];
  private nextSessionId = 1;

  private constructor(private readonly options: FakeClusterOptions) {
    const ids = options.nodeIds ?? ['n1'];
    this.nodes = ids.map((id) => new FakeNode(id, this));
    this.leaderId = options.leaderId === undefined ? ids[0]! : options.leaderId;
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.tokens = options.tokens;
  }

  static async start(options: FakeClusterOptions = {}): Promise<FakeCluster> {
    const cluster = new FakeCluster(options);
    await Promise.all(cluster.nodes.map((node) => node.listen()));
    return cluster;
  }

  /** The URLs a user would configure, one per node, in node order. */
  get urls(): string[] {
    return this.nodes.map((node) => node.url);
  }

  node(id: string): FakeNode {
    const node = this.nodes.find((n) => n.id === id);
    if (node === undefined) throw new Error(`no fake node ${id}`);
    return node;
  }

  /** The URL a node advertises for clients (see the `advertise` option). */
  advertisedUrl(nodeId: string | null): string | null {
    if (nodeId === null) return null;
    if (this.options.advertise === 'real') return `${this.node(nodeId).url}/client`;
    return `${UNREACHABLE_URL_BASE}?node=${nodeId}`;
  }

  /** Requests of one op, in arrival order. */
  requestsOf<K extends OpName>(op: K): Array<RecordedRequest & { request: RequestOf<K> }> {
    return this.requests.filter((r) => r.request.op === op) as Array<
      RecordedRequest & { request: RequestOf<K> }
    >;
  }

  /**
   * Moves leadership. The old leader's in-flight leases are released (deliveries are void after
   * a leader change); with `goingAway` its clients get the push and are disconnected, otherwise
   * their subscriptions end with NOT_LEADER and later requests get NOT_LEADER.
   */
  setLeader(leaderId: string | null, options: { goingAway?: boolean } = {}): void {
    const old = this.leaderId === null ? undefined : this.node(this.leaderId);
    this.leaderId = leaderId;
    this.broker.expireLeases();
    if (old === undefined || old.id === leaderId) return;
    for (const session of old.sessions) {
      if (options.goingAway) {
        session.send(
          encodePush({
            kind: 'goingAway',
            reason: 'leadership moved',
            leaderId,
            leaderUrl: this.advertisedUrl(leaderId),
          }),
        );
        session.socket.close(1001, 'leadership moved');
        continue;
      }
      for (const sub of session.subs.values()) {
        this.broker.unsubscribe(sub);
        session.send(
          encodePush({
            kind: 'subscriptionEnded',
            subId: sub.subId,
            code: 'NOT_LEADER',
            message: 'leadership moved',
          }),
        );
      }
      session.subs.clear();
    }
  }

  /** Sends every held reply (to sessions still open); returns how many. */
  releaseHeld(): number {
    const held = this.held.splice(0);
    for (const { session, frame } of held) session.send(frame);
    return held.length;
  }

  /** Replies currently held. */
  get heldCount(): number {
    return this.held.length;
  }

  /** Sends raw bytes to every client connection (to test how clients take broken frames). */
  sendRaw(frame: Uint8Array): void {
    for (const node of this.nodes) for (const session of node.sessions) session.send(frame);
  }

  /** Closes every client connection on every node. */
  dropConnections(): void {
    for (const node of this.nodes) node.dropConnections();
  }

  /** Open client connections across nodes. */
  get sessionCount(): number {
    return this.nodes.reduce((sum, node) => sum + node.sessions.size, 0);
  }

  async stop(): Promise<void> {
    this.broker.close();
    await Promise.all(this.nodes.map((node) => node.stop()));
  }

  /** A new client connection on `node`. */
  accept(node: FakeNode, socket: WebSocket): void {
    const session = new FakeSession(this.nextSessionId++, node, socket);
    node.sessions.add(session);
    socket.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary) socket.close(1002, 'text frames are not part of the protocol');
      else this.handleFrame(session, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    });
    socket.on('close', () => {
      node.sessions.delete(session);
      this.broker.dropSession(session.id);
    });
  }

  private handleFrame(session: FakeSession, frame: Uint8Array): void {
    if (session.node.frozen) return;
    const decoded = decodeRequest(frame, this.limits);
    if (!decoded.ok) {
      session.send(encodeError(decoded.id, decoded.error));
      return;
    }
    const request = decoded.value;
    if (!session.welcomed) {
      this.handleHello(session, request);
      return;
    }
    const recorded: RecordedRequest = { nodeId: session.node.id, sessionId: session.id, request };
    this.requests.push(recorded);
    const action = this.interceptor?.(recorded);
    if (action?.kind === 'error') session.send(encodeError(request.id, action.error));
    else if (action?.kind === 'reply')
      session.send(encodeResult(request.id, request.op, action.result as never));
    else if (action?.kind === 'drop') session.socket.close(1001, 'dropped by the test');
    else if (action?.kind !== 'ignore') this.serve(session, request, action?.kind === 'hold');
  }

  private handleHello(session: FakeSession, request: Request): void {
    if (request.op !== 'hello') {
      session.send(encodeError(request.id, new FlotillaError('PROTOCOL_ERROR', 'hello must come first')));
      return;
    }
    const tokens = this.tokens;
    if (tokens !== undefined && !tokens.includes(request.params.token ?? '')) {
      session.send(encodeError(request.id, new FlotillaError('UNAUTHORIZED', 'unknown token')));
      session.socket.close(1008, 'unauthorized');
      return;
    }
    session.welcomed = true;
    const welcome: Welcome = {
      protocolVersion: PROTOCOL_VERSION,
      nodeId: session.node.id,
      leaderId: this.leaderId,
      leaderUrl: this.advertisedUrl(this.leaderId),
      serverVersion: 'fake',
      limits: welcomeLimits(this.limits),
    };
    session.send(encodeResult(request.id, 'hello', welcome));
  }

  /** Serves a request, as the leader would (or NOT_LEADER from a follower). */
  private serve(session: FakeSession, request: Request, hold: boolean): void {
    const reply = (frame: Uint8Array) => {
      if (hold) this.held.push({ session, frame });
      else session.send(frame);
    };
    if (request.op !== 'cluster' && session.node.id !== this.leaderId) {
      const details = { leaderId: this.leaderId, leaderUrl: this.advertisedUrl(this.leaderId) };
      reply(
        encodeError(
          request.id,
          new FlotillaError('NOT_LEADER', `${session.node.id} is not the leader`, details),
        ),
      );
      return;
    }
    const answer = (result: unknown) => reply(encodeResult(request.id, request.op, result as never));
    try {
      if (request.op === 'receive') this.receive(session, request, answer);
      else if (request.op === 'subscribe') this.subscribe(session, request, answer);
      else answer(this.apply(session, request));
    } catch (error) {
      const failure = error instanceof FlotillaError ? error : new FlotillaError('INTERNAL', String(error));
      reply(encodeError(request.id, failure));
    }
  }

  /** Serves every op whose answer is immediate. */
  private apply(session: FakeSession, request: Request): unknown {
    const broker = this.broker;
    switch (request.op) {
      case 'createQueue':
        return broker.createQueue(request.params.name, request.params.options);
      case 'updateQueue':
        return broker.updateQueue(request.params.name, request.params.options);
      case 'deleteQueue':
        return this.deleteQueue(request.params.name);
      case 'purgeQueue':
        return broker.purgeQueue(request.params.name);
      case 'listQueues':
        return broker.listQueues();
      case 'queueStats':
        return broker.stats(request.params.name);
      case 'publish':
        return broker.publish(request.params.queue, request.params.messages);
      case 'credit':
        broker.setWindow(this.sub(session, request.params.subId), request.params.prefetch);
        return null;
      case 'unsubscribe':
        broker.unsubscribe(this.sub(session, request.params.subId));
        session.subs.delete(request.params.subId);
        return null;
      case 'ack':
        return broker.ack(request.params.items);
      case 'nack':
        return broker.nack(
          request.params.items,
          request.params.delayMs ?? undefined,
          request.params.deadLetter === true,
        );
      case 'extend':
        return broker.extend(request.params.items, request.params.ms);
      case 'peek':
        return broker.peek(request.params.queue, request.params.max, request.params.fromSeq ?? 0);
      case 'redrive': {
        const { dlq, target, max } = request.params;
        return broker.redrive(dlq, target ?? undefined, max ?? this.limits.maxRedriveMessages);
      }
      case 'cluster':
        return this.clusterInfo(session);
      default:
        throw new FlotillaError('PROTOCOL_ERROR', `${request.op} is not served here`);
    }
  }

  private receive(
    session: FakeSession,
    request: RequestOf<'receive'>,
    answer: (result: unknown) => void,
  ): void {
    const { queue, max, waitMs, visibilityTimeoutMs } = request.params;
    this.broker.receive(session.id, queue, max, waitMs, visibilityTimeoutMs ?? undefined, answer);
  }

  private subscribe(
    session: FakeSession,
    request: RequestOf<'subscribe'>,
    answer: (result: unknown) => void,
  ): void {
    this.broker.requireQueue(request.params.queue);
    const sub = session.newSubscription(request.params.queue, request.params.prefetch);
    // The reply goes out before any delivery, as on a real node.
    answer(sub.subId);
    this.broker.subscribe(sub);
  }

  private sub(session: FakeSession, subId: number): FakeSubscription {
    const sub = session.subs.get(subId);
    if (sub === undefined) throw new FlotillaError('SUBSCRIPTION_NOT_FOUND', `no subscription ${subId}`);
    return sub;
  }

  private deleteQueue(name: string): null {
    for (const sub of this.broker.deleteQueue(name)) {
      for (const node of this.nodes) {
        for (const session of node.sessions) {
          if (session.id !== sub.sessionId) continue;
          session.subs.delete(sub.subId);
          session.send(
            encodePush({
              kind: 'subscriptionEnded',
              subId: sub.subId,
              code: 'QUEUE_NOT_FOUND',
              message: `queue ${name} was deleted`,
            }),
          );
        }
      }
    }
    return null;
  }

  private clusterInfo(session: FakeSession): ResultMap['cluster'] {
    return {
      nodeId: session.node.id,
      leaderId: this.leaderId,
      term: 1,
      commitIndex: this.requests.length,
      appliedIndex: this.requests.length,
      nodes: this.nodes.map((node) => ({
        id: node.id,
        url: this.advertisedUrl(node.id),
        role: node.id === this.leaderId ? 'leader' : 'follower',
        reachable: true,
        matchIndex: null,
      })),
    };
  }
}
