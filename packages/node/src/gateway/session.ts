/**
 * One client connection: an actor whose mailbox receives the client's frames and handles them one
 * at a time (hello first, then requests by id), and the `ConsumerPort` through which the queue
 * runtime hands back command answers, deliveries and the end of subscriptions.
 *
 * What a session guarantees the node: nothing a client sends can throw out of it (bad frames get
 * an error reply or a close, as docs/protocol.md says), its requests in flight are bounded
 * (OVERLOADED beyond), and a client that does not read its socket stops being read and stops
 * getting deliveries until its send buffer drains, instead of making the node buffer without end.
 *
 * Writes made while handling one batch of events are corked and leave as one socket write.
 */
import type { Duplex } from 'node:stream';
import {
  type DeliveryFields,
  decodeRequest,
  type ErrorCode,
  encodeDeliver,
  encodeError,
  encodePush,
  encodeResult,
  FlotillaError,
  type OpName,
  type RequestDecodeResult,
  type ResultMap,
} from '@flotilla/shared';
import type { WebSocket } from 'ws';
import type { Principal } from '../auth/tokens.js';
import type { PullRequest, Subscription } from '../broker/consumers.js';
import type { ConsumerPort } from '../broker/types.js';
import type { Command, DeliveredMessage, Reply } from '../queues/index.js';
import { Actor } from '../runtime/actor.js';
import type { TimerHandle } from '../runtime/timer-wheel.js';
import type { GatewayCore } from './core.js';
import { answerCommand, handleHello, handleRequest, type PendingRequest, wireReceive } from './ops.js';

/** WebSocket close codes used by the server (docs/protocol.md, lifecycle). */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  protocolError: 1002,
  policy: 1008,
  tooBig: 1009,
  tryAgainLater: 1013,
} as const;

export class Session extends Actor<Uint8Array> implements ConsumerPort {
  /** Set by a successful hello; requests before it get PROTOCOL_ERROR. */
  principal: Principal | null = null;
  clientName: string | null = null;
  /** Push subscriptions of this connection by subId. */
  readonly subs = new Map<number, Subscription>();
  /** Consumer ids this session leased through (released when it closes). */
  readonly consumerIds = new Set<string>();
  /** Parked or proposed pulls. */
  readonly pulls = new Set<PullRequest>();
  private readonly requests = new Map<number, PendingRequest>();
  private nextToken = 1;
  private nextSubId = 1;
  private isClosed = false;
  /** A close was started: frames still arriving are ignored. */
  private closing = false;
  private draining = false;
  private corked = false;
  private congestedNow = false;
  private helloTimer: TimerHandle | null;

  constructor(
    readonly core: GatewayCore,
    private readonly ws: WebSocket,
    private readonly socket: Duplex,
    readonly sessionNo: number,
    readonly remote: string,
  ) {
    super(`session ${sessionNo}`, core.options.maxQueuedFrames);
    ws.on('message', (data, isBinary) => this.received(data as Buffer, isBinary));
    ws.on('close', (code, reason) => this.closed(code, reason.toString()));
    ws.on('error', (error) =>
      this.core.logger.debug({ session: sessionNo, err: error.message }, 'socket error'),
    );
    this.helloTimer = core.timers.after(core.options.helloTimeoutMs, () => this.helloTimedOut());
  }

  get congested(): boolean {
    return this.congestedNow;
  }

  get isOpen(): boolean {
    return !this.isClosed;
  }

  /** Requests received and not answered yet (commands in the log, reads, parked pulls). */
  get pendingRequests(): number {
    return this.requests.size;
  }

  // -------------------------------------------------------------------------------------------
  // Incoming frames

  private received(data: Buffer, isBinary: boolean): void {
    if (this.isClosed || this.closing) return;
    if (!isBinary) {
      this.close(CloseCode.protocolError, 'text frames are not part of the protocol');
      return;
    }
    if (!this.trySend(data)) this.close(CloseCode.policy, 'too many frames waiting to be handled');
  }

  protected override handle(frame: Uint8Array): void {
    if (this.isClosed || this.closing) return;
    const decoded = decodeRequest(frame, this.core.limits);
    if (!decoded.ok) {
      this.badFrame(decoded);
      return;
    }
    const request = decoded.value;
    if (this.principal === null) {
      if (request.op === 'hello') handleHello(this, request);
      else this.fail(request.id, new FlotillaError('PROTOCOL_ERROR', `${request.op} before hello`));
      return;
    }
    if (request.op === 'hello') {
      this.fail(request.id, new FlotillaError('PROTOCOL_ERROR', 'hello was already accepted'));
      return;
    }
    if (this.draining) {
      this.fail(request.id, new FlotillaError('UNAVAILABLE', 'the node is shutting down'));
      return;
    }
    if (this.requests.size >= this.core.options.maxPendingRequests) {
      this.fail(
        request.id,
        new FlotillaError(
          'OVERLOADED',
          `more than ${this.core.options.maxPendingRequests} requests in flight`,
        ),
      );
      return;
    }
    handleRequest(this, request);
  }

  /** A frame that did not decode: answer by id when it was readable, else close (1002). */
  private badFrame(decoded: Extract<RequestDecodeResult, { ok: false }>): void {
    const { error, id, op } = decoded;
    if (id === 0) {
      this.fail(0, error);
      this.close(CloseCode.protocolError, error.message.slice(0, 120));
      return;
    }
    this.fail(id, error);
    if (op === 'hello' && this.principal === null && error.code === 'UNSUPPORTED_VERSION') {
      this.close(CloseCode.protocolError, 'unsupported protocol version');
    }
  }

  private helloTimedOut(): void {
    this.helloTimer = null;
    if (this.principal === null && !this.isClosed) this.close(CloseCode.policy, 'no hello in time');
  }

  /** Called by the hello handler once the client is authenticated. */
  accepted(principal: Principal, clientName: string | null): void {
    this.principal = principal;
    this.clientName = clientName;
    this.helloTimer?.cancel();
    this.helloTimer = null;
  }

  // -------------------------------------------------------------------------------------------
  // Pending requests

  /** Registers a request whose answer comes later; returns its token. */
  track(request: PendingRequest): number {
    const token = this.nextToken++;
    if (this.nextToken > 0x3fff_ffff) this.nextToken = 1;
    this.requests.set(token, request);
    return token;
  }

  /** Removes and returns a pending request (null if the session forgot it, e.g. after closing). */
  take(token: number): PendingRequest | null {
    const request = this.requests.get(token);
    if (request === undefined) return null;
    this.requests.delete(token);
    return request;
  }

  newSubId(): number {
    const id = this.nextSubId++;
    if (this.nextSubId > 0xffff_ffff) this.nextSubId = 1;
    return id;
  }

  // -------------------------------------------------------------------------------------------
  // ConsumerPort: answers from the runtime

  commandApplied(token: number, command: Command, reply: Reply): void {
    const request = this.take(token);
    if (request === null) return;
    // A fault here would unwind into the log's apply loop: answer INTERNAL instead.
    try {
      answerCommand(this, request, command, reply);
    } catch (error) {
      this.fault(request.id, request.op, error);
    }
  }

  /**
   * A handler for request `id` threw (a bug, never a property of client input): log it and answer
   * INTERNAL instead of unwinding into the socket or the log's apply loop.
   */
  fault(id: number, op: string, error: unknown): void {
    this.core.logger.error({ err: error, op, session: this.sessionNo }, 'request handler fault');
    this.fail(id, new FlotillaError('INTERNAL', `${op} failed on the server`));
  }

  commandFailed(token: number, error: FlotillaError): void {
    const request = this.take(token);
    if (request === null) return;
    if (request.pull !== undefined) this.pulls.delete(request.pull);
    this.fail(request.id, error);
  }

  pushDeliveries(subId: number, queue: string, messages: readonly DeliveredMessage[]): void {
    this.write(encodeDeliver(subId, queue, messages as readonly DeliveryFields[]));
  }

  subscriptionEnded(subId: number, code: ErrorCode, message: string): void {
    if (!this.subs.delete(subId)) return;
    this.write(encodePush({ kind: 'subscriptionEnded', subId, code, message }));
  }

  unsubscribed(_subId: number, token: number): void {
    const request = this.take(token);
    if (request !== null) this.reply(request.id, 'unsubscribe', null);
  }

  receiveDone(token: number, queue: string, messages: readonly DeliveredMessage[]): void {
    const request = this.take(token);
    if (request === null) return;
    if (request.pull !== undefined) this.pulls.delete(request.pull);
    this.reply(request.id, 'receive', wireReceive(queue, messages));
  }

  // -------------------------------------------------------------------------------------------
  // Writing

  reply<K extends OpName>(id: number, op: K, result: ResultMap[K]): void {
    this.write(encodeResult(id, op, result));
  }

  fail(id: number, error: FlotillaError): void {
    this.core.countError(error.code);
    this.write(encodeError(id, error));
  }

  /** Pushes goingAway; with `close`, the connection then closes (1001). */
  goingAway(reason: string, leaderId: string | null, leaderUrl: string | null, close: boolean): void {
    this.write(encodePush({ kind: 'goingAway', reason, leaderId, leaderUrl }));
    if (close) this.close(CloseCode.goingAway, reason);
  }

  /** Stops taking requests (UNAVAILABLE); requests already in flight are still answered. */
  stopTakingRequests(): void {
    this.draining = true;
  }

  private write(frame: Uint8Array): void {
    if (this.isClosed) return;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      queueMicrotask(this.uncork);
    }
    this.ws.send(frame);
    if (!this.congestedNow && this.ws.bufferedAmount > this.core.options.sendBufferHighBytes) this.congest();
  }

  private readonly uncork = (): void => {
    this.corked = false;
    this.socket.uncork();
  };

  /** The client is not reading: stop reading its requests and stop its deliveries until the buffer drains. */
  private congest(): void {
    this.congestedNow = true;
    this.ws.pause();
    this.socket.once('drain', this.drained);
    this.core.logger.debug({ session: this.sessionNo, buffered: this.ws.bufferedAmount }, 'client congested');
  }

  private readonly drained = (): void => {
    if (this.isClosed) return;
    this.congestedNow = false;
    this.ws.resume();
    for (const sub of this.subs.values()) this.core.runtime.setPrefetch(sub, sub.prefetch);
  };

  // -------------------------------------------------------------------------------------------
  // Closing

  /** Starts the closing handshake; frames still arriving are ignored, 'close' ends the session. */
  close(code: number, reason: string): void {
    if (this.isClosed || this.closing) return;
    this.closing = true;
    // A paused socket would never read the client's close frame: read again (frames are ignored now).
    if (this.congestedNow) this.ws.resume();
    this.ws.close(code, reason);
  }

  private closed(code: number, reason: string): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.stopMailbox();
    this.helloTimer?.cancel();
    this.socket.off('drain', this.drained);
    const runtime = this.core.runtime;
    for (const pull of this.pulls) runtime.cancelReceive(pull);
    for (const sub of this.subs.values()) runtime.dropSubscription(sub);
    runtime.releaseConsumers([...this.consumerIds]);
    this.pulls.clear();
    this.subs.clear();
    this.requests.clear();
    this.core.sessionClosed(this);
    this.core.logger.debug({ session: this.sessionNo, code, reason }, 'session closed');
  }
}
