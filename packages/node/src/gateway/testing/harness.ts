/**
 * Test kit for the gateway: a broker on loopback (HTTP server routing `/client` upgrades to a
 * Gateway over a QueueRuntime and a LocalLog) and a bare protocol client built on `ws` and the
 * shared codec, so tests speak the wire protocol exactly as any client would.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  decodeServerFrame,
  type ErrorReply,
  encodeRequest,
  type OpName,
  type ProtocolLimits,
  type Push,
  type Reply,
  type RequestParams,
  type ResultMap,
  type ServerFrame,
} from '@flotilla/shared';
import WebSocket from 'ws';
import type { TokenAuthenticator } from '../../auth/tokens.js';
import { QueueRuntime } from '../../broker/runtime.js';
import { waitFor } from '../../broker/testing/fake-port.js';
import { LocalLog } from '../../broker/testing/local-log.js';
import type { RuntimeLimits } from '../../broker/types.js';
import type { NodeMetrics } from '../../metrics/metrics.js';
import { TimerWheel } from '../../runtime/timer-wheel.js';
import type { GatewaySettings } from '../core.js';
import { Gateway } from '../gateway.js';

export { waitFor };

export interface BrokerOptions {
  log?: LocalLog;
  authenticator?: TokenAuthenticator | null;
  settings?: Partial<GatewaySettings>;
  limits?: ProtocolLimits;
  runtimeLimits?: Partial<RuntimeLimits>;
  metrics?: NodeMetrics;
}

export interface TestBroker {
  url: string;
  log: LocalLog;
  runtime: QueueRuntime;
  gateway: Gateway;
  server: Server;
  close(): Promise<void>;
}

export async function startBroker(options: BrokerOptions = {}): Promise<TestBroker> {
  const log = options.log ?? new LocalLog();
  const timers = new TimerWheel();
  const metrics = options.metrics ?? null;
  const runtime = new QueueRuntime({
    nodeId: log.nodeId,
    log,
    timers,
    limits: options.runtimeLimits,
    metrics,
  });
  log.attach(runtime);
  const gateway = new Gateway({
    runtime,
    timers,
    authenticator: options.authenticator ?? null,
    settings: options.settings,
    limits: options.limits,
    metrics,
  });
  const server = createServer((_req, res) => res.writeHead(404).end());
  server.on('upgrade', (req, socket, head) => {
    if (req.url === '/client') gateway.handleUpgrade(req, socket, head);
    else socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  if (log.isLeader()) await waitFor(() => runtime.dutiesActive, 'leader duties');
  return {
    url: `ws://127.0.0.1:${port}/client`,
    log,
    runtime,
    gateway,
    server,
    async close() {
      gateway.closeAll('test over');
      gateway.close();
      runtime.stop();
      timers.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A protocol client: numbered requests, replies matched by id, pushes collected in order. */
export class TestClient {
  readonly pushes: Push[] = [];
  readonly replies = new Map<number, Reply>();
  /** Frames that did not decode as server frames (must stay empty). */
  readonly garbage: Uint8Array[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private nextId = 1;

  private constructor(readonly ws: WebSocket) {
    ws.binaryType = 'nodebuffer';
    ws.on('message', (data) => this.received(data as Buffer));
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    });
    ws.on('error', () => {});
  }

  static async open(url: string): Promise<TestClient> {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    // Listeners first: a frame may arrive in the same read as the upgrade response.
    const client = new TestClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return client;
  }

  /** Opens a connection and says hello; fails the test unless welcomed. */
  static async connect(url: string, token?: string): Promise<TestClient> {
    const client = await TestClient.open(url);
    await client.ok('hello', { version: 1, token: token ?? null, name: 'test' });
    return client;
  }

  private received(data: Buffer): void {
    const decoded = decodeServerFrame(new Uint8Array(data));
    if (!decoded.ok) {
      this.garbage.push(new Uint8Array(data));
      return;
    }
    const frame: ServerFrame = decoded.value;
    if (frame.kind === 'result' || frame.kind === 'error') this.replies.set(frame.id, frame);
    else this.pushes.push(frame);
  }

  sendRaw(bytes: Uint8Array | string): void {
    this.ws.send(bytes);
  }

  /** Sends a request and returns its id without waiting. */
  send<K extends OpName>(op: K, params: RequestParams[K]): number {
    const id = this.nextId++;
    this.ws.send(encodeRequest(id, op, params));
    return id;
  }

  async reply(id: number, timeoutMs = 3000): Promise<Reply> {
    await waitFor(() => this.replies.has(id), `reply to request ${id}`, timeoutMs);
    return this.replies.get(id)!;
  }

  async request<K extends OpName>(op: K, params: RequestParams[K]): Promise<Reply> {
    return this.reply(this.send(op, params));
  }

  /** A request that must succeed; returns its result. */
  async ok<K extends OpName>(op: K, params: RequestParams[K]): Promise<ResultMap[K]> {
    const reply = await this.request(op, params);
    if (reply.kind === 'error') throw new Error(`${op} failed: ${reply.error.code} ${reply.error.message}`);
    return reply.result as ResultMap[K];
  }

  /** A request that must fail; returns the error reply. */
  async error<K extends OpName>(op: K, params: RequestParams[K]): Promise<ErrorReply> {
    const reply = await this.request(op, params);
    if (reply.kind !== 'error') throw new Error(`${op} succeeded but was expected to fail`);
    return reply;
  }

  /** Deliveries pushed for `subId`, flattened in arrival order. */
  delivered(subId: number) {
    return this.pushes.flatMap((p) => (p.kind === 'deliver' && p.subId === subId ? p.messages : []));
  }

  async waitForPush(predicate: (push: Push) => boolean, what: string, timeoutMs = 3000): Promise<Push> {
    await waitFor(() => this.pushes.some(predicate), what, timeoutMs);
    return this.pushes.find(predicate)!;
  }

  close(): void {
    this.ws.close();
  }
}

export const bytes = (text: string) => new TextEncoder().encode(text);
export const text = (body: Uint8Array) => new TextDecoder().decode(body);
