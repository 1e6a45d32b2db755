/**
 * Server → client frames: results `[1, id, op, result]`, errors `[2, id, code, message, details]`
 * and pushes (deliver, goingAway, subscriptionEnded). The gateway encodes them; the SDK decodes
 * them with `decodeServerFrame`, which checks every field's type and never throws.
 */

import { asFlotillaError } from './codec-request.js';
import { type ErrorCode, FlotillaError, invalidArgument, isErrorCode } from './errors.js';
import {
  type BodyFormat,
  type DeadLetterInfo,
  type DecodeResult,
  type DeliveredMessage,
  FrameType,
  type ItemOutcomes,
  MAX_BODY_FORMAT,
  OP,
  type OpName,
  opName,
  type Push,
  type Reply,
  type ResultMap,
  type ServerFrame,
} from './frames.js';
import { DEFAULT_LIMITS } from './limits.js';
import { MsgpackReader, type MsgpackWriter, withWriter } from './msgpack.js';

const MAX_INT = Number.MAX_SAFE_INTEGER;
/** Elements of a delivered message: seq, deliveryId, body, format, headers, group, priority, deliveryCount, publishedAtMs, leaseDeadlineMs. */
const DELIVERED_FIELDS = 10;
/** With the optional 11th element, the dead-letter history `[queue, seq, deliveryCount, reason, timeMs]`. */
const DELIVERED_FIELDS_WITH_HISTORY = 11;
/** Elements of the dead-letter history. */
const DEAD_LETTER_FIELDS = 5;
/** Nesting allowed in elements a newer server appends (skipped unread). */
const SKIP_DEPTH = DEFAULT_LIMITS.maxDepth;

// ---------------------------------------------------------------------------------------------
// Encoding

/** What encodeDeliver needs of each message; the server may pass its own records if they have these fields. */
export type DeliveryFields = Omit<DeliveredMessage, 'queue'>;

/**
 * `[seq, deliveryId, body, format, headers, group, priority, deliveryCount, publishedAtMs,
 * leaseDeadlineMs, deadLetter?]`: the history is appended only for dead-lettered messages, so every
 * other delivery keeps the 10-element form.
 */
function writeDelivered(w: MsgpackWriter, m: DeliveryFields): void {
  const history = m.deadLetter ?? null;
  w.arrayHeader(history === null ? DELIVERED_FIELDS : DELIVERED_FIELDS_WITH_HISTORY);
  w.uint(m.seq);
  w.uint(m.deliveryId);
  w.bin(m.body);
  w.uint(m.format);
  if (m.headers === null || m.headers === undefined) w.nil();
  else w.any(m.headers);
  if (m.group === null || m.group === undefined) w.nil();
  else w.str(m.group);
  w.uint(m.priority);
  w.uint(m.deliveryCount);
  w.uint(m.publishedAtMs);
  w.uint(m.leaseDeadlineMs);
  if (history !== null) writeDeadLetter(w, history);
}

function writeDeadLetter(w: MsgpackWriter, d: DeadLetterInfo): void {
  w.arrayHeader(DEAD_LETTER_FIELDS);
  w.str(d.queue);
  w.uint(d.seq);
  w.uint(d.deliveryCount);
  w.str(d.reason);
  w.uint(d.timeMs);
}

function writeMessageList(w: MsgpackWriter, queue: string, messages: readonly DeliveryFields[]): void {
  w.str(queue);
  w.arrayHeader(messages.length);
  for (const message of messages) writeDelivered(w, message);
}

function writeOutcomes(w: MsgpackWriter, outcomes: ItemOutcomes): void {
  w.arrayHeader(outcomes.failed.length * 2);
  for (const { index, code } of outcomes.failed) {
    w.uint(index);
    w.str(code);
  }
}

function writeResult(w: MsgpackWriter, op: OpName, result: unknown): void {
  switch (op) {
    case 'publish': {
      const { seqs, duplicates } = result as ResultMap['publish'];
      w.arrayHeader(2);
      w.arrayHeader(seqs.length);
      for (const seq of seqs) w.uint(seq);
      w.arrayHeader(duplicates.length);
      for (const index of duplicates) w.uint(index);
      return;
    }
    case 'receive':
    case 'peek': {
      const messages = result as ResultMap['receive'];
      w.arrayHeader(2);
      writeMessageList(w, messages[0]?.queue ?? '', messages);
      return;
    }
    case 'ack':
    case 'nack':
    case 'extend':
      writeOutcomes(w, result as ItemOutcomes);
      return;
    default:
      // Admin results are rare: maps, numbers or nil, written as plain msgpack values.
      w.any(result);
  }
}

/** Encodes a successful reply to request `id`. */
export function encodeResult<K extends OpName>(id: number, op: K, result: ResultMap[K]): Uint8Array {
  return withWriter((w) => {
    w.arrayHeader(4);
    w.uint(FrameType.Result);
    w.uint(id);
    w.uint(OP[op]);
    writeResult(w, op, result);
  });
}

/** Encodes an error reply (`id` 0 when the request id is unknown). Never throws: unencodable details are dropped. */
export function encodeError(id: number, error: FlotillaError): Uint8Array {
  const write = (details: unknown) => (w: MsgpackWriter) => {
    w.arrayHeader(5);
    w.uint(FrameType.Error);
    w.uint(id);
    w.str(error.code);
    w.str(error.message);
    w.any(details);
  };
  const details = Object.keys(error.details).length > 0 ? error.details : null;
  try {
    return withWriter(write(details));
  } catch {
    return withWriter(write(null));
  }
}

export function encodeReply(reply: Reply): Uint8Array {
  if (reply.kind === 'error') return encodeError(reply.id, reply.error);
  return encodeResult(reply.id, reply.op, reply.result as never);
}

/** Encodes a deliver push: `[3, subId, queue, [message...]]`. The hot server → client frame. */
export function encodeDeliver(subId: number, queue: string, messages: readonly DeliveryFields[]): Uint8Array {
  return withWriter((w) => {
    w.arrayHeader(4);
    w.uint(FrameType.Deliver);
    w.uint(subId);
    writeMessageList(w, queue, messages);
  });
}

export function encodePush(push: Push): Uint8Array {
  switch (push.kind) {
    case 'deliver':
      return encodeDeliver(push.subId, push.queue, push.messages);
    case 'goingAway':
      return withWriter((w) => {
        w.arrayHeader(4);
        w.uint(FrameType.GoingAway);
        w.str(push.reason);
        w.any(push.leaderId);
        w.any(push.leaderUrl);
      });
    case 'subscriptionEnded':
      return withWriter((w) => {
        w.arrayHeader(4);
        w.uint(FrameType.SubscriptionEnded);
        w.uint(push.subId);
        w.str(push.code);
        w.str(push.message);
      });
  }
}

// ---------------------------------------------------------------------------------------------
// Decoding

function optionalStr(r: MsgpackReader, field: string): string | null {
  return r.nil() ? null : r.str(field);
}

function readDelivered(r: MsgpackReader, queue: string): DeliveredMessage {
  const length = r.arrayHeader('message');
  if (length < DELIVERED_FIELDS)
    throw invalidArgument('message', `expected at least ${DELIVERED_FIELDS} elements`);
  const seq = r.int('seq', 0, MAX_INT);
  const deliveryId = r.int('deliveryId', 0, MAX_INT);
  const body = r.bin('body');
  const format = r.int('format', 0, MAX_BODY_FORMAT) as BodyFormat;
  const headers = r.nil() ? null : readStringMap(r);
  const group = optionalStr(r, 'group');
  const priority = r.int('priority', 0, MAX_INT);
  const deliveryCount = r.int('deliveryCount', 0, MAX_INT);
  const publishedAtMs = r.int('publishedAtMs', 0, MAX_INT);
  const leaseDeadlineMs = r.int('leaseDeadlineMs', 0, MAX_INT);
  const deadLetter = length > DELIVERED_FIELDS && !r.nil() ? readDeadLetter(r) : null;
  // Elements a newer server appends are skipped.
  for (let i = DELIVERED_FIELDS_WITH_HISTORY; i < length; i++) r.skip(SKIP_DEPTH);
  return {
    queue,
    seq,
    deliveryId,
    body,
    format,
    headers,
    group,
    priority,
    deliveryCount,
    publishedAtMs,
    leaseDeadlineMs,
    deadLetter,
  };
}

function readDeadLetter(r: MsgpackReader): DeadLetterInfo {
  const length = r.arrayHeader('deadLetter');
  if (length < DEAD_LETTER_FIELDS) {
    throw invalidArgument('deadLetter', `expected at least ${DEAD_LETTER_FIELDS} elements`);
  }
  const info: DeadLetterInfo = {
    queue: r.str('deadLetter.queue'),
    seq: r.int('deadLetter.seq', 0, MAX_INT),
    deliveryCount: r.int('deadLetter.deliveryCount', 0, MAX_INT),
    reason: r.str('deadLetter.reason'),
    timeMs: r.int('deadLetter.timeMs', 0, MAX_INT),
  };
  for (let i = DEAD_LETTER_FIELDS; i < length; i++) r.skip(SKIP_DEPTH);
  return info;
}

function readStringMap(r: MsgpackReader): Record<string, string> {
  const value = r.any('headers', 2);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalidArgument('headers', 'expected a map');
  }
  for (const item of Object.values(value)) {
    if (typeof item !== 'string') throw invalidArgument('headers', 'header values must be strings');
  }
  return value as Record<string, string>;
}

function readMessageList(r: MsgpackReader): { queue: string; messages: DeliveredMessage[] } {
  const queue = r.str('queue');
  const count = r.arrayHeader('messages');
  const messages = new Array<DeliveredMessage>(count);
  for (let i = 0; i < count; i++) messages[i] = readDelivered(r, queue);
  return { queue, messages };
}

function readUintList(r: MsgpackReader, field: string): number[] {
  const count = r.arrayHeader(field);
  const out = new Array<number>(count);
  for (let i = 0; i < count; i++) out[i] = r.int(field, 0, MAX_INT);
  return out;
}

function readOutcomes(r: MsgpackReader): ItemOutcomes {
  const length = r.arrayHeader('outcomes');
  if (length % 2 !== 0) throw invalidArgument('outcomes', 'expected (index, code) pairs');
  const failed: ItemOutcomes['failed'] = [];
  for (let i = 0; i < length; i += 2) {
    const index = r.int('outcomes.index', 0, MAX_INT);
    failed.push({ index, code: toErrorCode(r.str('outcomes.code')) });
  }
  return { failed };
}

/** A code this SDK does not know (a newer server) reads as INTERNAL rather than failing the frame. */
function toErrorCode(code: string): ErrorCode {
  return isErrorCode(code) ? code : 'INTERNAL';
}

type FieldKind = 'string' | 'number' | 'string|null' | 'number|null' | 'object' | 'array';

function checkKind(value: unknown, kind: FieldKind): boolean {
  switch (kind) {
    case 'string|null':
      return value === null || typeof value === 'string';
    case 'number|null':
      return value === null || typeof value === 'number';
    case 'object':
      return typeof value === 'object' && value !== null && !Array.isArray(value);
    case 'array':
      return Array.isArray(value);
    default:
      return typeof value === kind;
  }
}

/** A map whose listed members have the listed kinds (other members pass through: servers may add fields). */
function readShapedMap(
  r: MsgpackReader,
  field: string,
  shape: Record<string, FieldKind>,
): Record<string, unknown> {
  const value = r.any(field, DEFAULT_LIMITS.maxDepth);
  if (!checkKind(value, 'object')) throw invalidArgument(field, 'expected a map');
  const map = value as Record<string, unknown>;
  for (const [key, kind] of Object.entries(shape)) {
    if (!checkKind(map[key], kind)) throw invalidArgument(`${field}.${key}`, `expected ${kind}`);
  }
  return map;
}

const WELCOME_SHAPE: Record<string, FieldKind> = {
  protocolVersion: 'number',
  nodeId: 'string',
  leaderId: 'string|null',
  leaderUrl: 'string|null',
  serverVersion: 'string',
  limits: 'object',
};
const STATS_SHAPE: Record<string, FieldKind> = {
  name: 'string',
  depth: 'number',
  ready: 'number',
  inFlight: 'number',
  delayed: 'number',
  totalBytes: 'number',
  oldestMessageAgeMs: 'number|null',
  options: 'object',
};
const OPTIONS_SHAPE: Record<string, FieldKind> = {
  visibilityTimeoutMs: 'number',
  deadLetterQueue: 'string|null',
  retry: 'object',
};
const CLUSTER_SHAPE: Record<string, FieldKind> = {
  nodeId: 'string',
  leaderId: 'string|null',
  term: 'number',
  nodes: 'array',
};

function readResult(r: MsgpackReader, op: OpName): unknown {
  switch (op) {
    case 'hello':
      return readShapedMap(r, 'welcome', WELCOME_SHAPE);
    case 'createQueue':
    case 'updateQueue':
      return readShapedMap(r, 'options', OPTIONS_SHAPE);
    case 'queueStats':
      return readShapedMap(r, 'stats', STATS_SHAPE);
    case 'listQueues': {
      const count = r.arrayHeader('queues');
      const out = new Array<unknown>(count);
      for (let i = 0; i < count; i++) out[i] = readShapedMap(r, 'stats', STATS_SHAPE);
      return out;
    }
    case 'cluster':
      return readShapedMap(r, 'cluster', CLUSTER_SHAPE);
    case 'deleteQueue':
    case 'credit':
    case 'unsubscribe':
      if (!r.nil()) throw invalidArgument('result', 'expected nil');
      return null;
    case 'purgeQueue':
    case 'redrive':
    case 'subscribe':
      return r.int('result', 0, MAX_INT);
    case 'publish': {
      if (r.arrayHeader('result') !== 2) throw invalidArgument('result', 'expected [seqs, duplicates]');
      const seqs = readUintList(r, 'seqs');
      return { seqs, duplicates: readUintList(r, 'duplicates') };
    }
    case 'receive':
    case 'peek':
      if (r.arrayHeader('result') !== 2) throw invalidArgument('result', 'expected [queue, messages]');
      return readMessageList(r).messages;
    case 'ack':
    case 'nack':
    case 'extend':
      return readOutcomes(r);
  }
}

function readServerFrame(r: MsgpackReader): ServerFrame {
  const length = r.arrayHeader('frame');
  const type = r.int('type', 0, 255);
  switch (type) {
    case FrameType.Result: {
      expectLength(length, 4);
      const id = r.int('id', 0, MAX_INT);
      const opCode = r.int('op', 0, 255);
      const op = opName(opCode);
      if (op === undefined) throw new FlotillaError('PROTOCOL_ERROR', `result for unknown op ${opCode}`);
      return { kind: 'result', id, op, result: readResult(r, op) } as ServerFrame;
    }
    case FrameType.Error: {
      expectLength(length, 5);
      const id = r.int('id', 0, MAX_INT);
      const code = r.str('code');
      const message = r.str('message');
      const details = r.any('details', DEFAULT_LIMITS.maxDepth);
      return { kind: 'error', id, error: errorFromWire(code, message, details) };
    }
    case FrameType.Deliver: {
      expectLength(length, 4);
      const subId = r.int('subId', 0, MAX_INT);
      const { queue, messages } = readMessageList(r);
      return { kind: 'deliver', subId, queue, messages };
    }
    case FrameType.GoingAway:
      expectLength(length, 4);
      return {
        kind: 'goingAway',
        reason: r.str('reason'),
        leaderId: optionalStr(r, 'leaderId'),
        leaderUrl: optionalStr(r, 'leaderUrl'),
      };
    case FrameType.SubscriptionEnded:
      expectLength(length, 4);
      return {
        kind: 'subscriptionEnded',
        subId: r.int('subId', 0, MAX_INT),
        code: toErrorCode(r.str('code')),
        message: r.str('message'),
      };
    default:
      throw new FlotillaError('PROTOCOL_ERROR', `unknown server frame type ${type}`);
  }
}

function expectLength(actual: number, expected: number): void {
  if (actual !== expected) {
    throw new FlotillaError('PROTOCOL_ERROR', `frame has ${actual} elements, expected ${expected}`);
  }
}

/** Rebuilds a FlotillaError from an error frame; an unknown code (newer server) becomes INTERNAL with originalCode. */
export function errorFromWire(code: string, message: string, details: unknown): FlotillaError {
  const detailMap =
    typeof details === 'object' &&
    details !== null &&
    !Array.isArray(details) &&
    !(details instanceof Uint8Array)
      ? (details as Record<string, unknown>)
      : {};
  if (isErrorCode(code)) return new FlotillaError(code, message, detailMap);
  return new FlotillaError('INTERNAL', message, { ...detailMap, originalCode: code });
}

/**
 * Decodes one server frame (reply or push). Never throws: broken frames give `{ok: false}` with
 * PROTOCOL_ERROR (or INVALID_ARGUMENT naming the field of a wrong-typed value).
 */
export function decodeServerFrame(frame: Uint8Array): DecodeResult<ServerFrame> {
  try {
    const r = new MsgpackReader(frame);
    const value = readServerFrame(r);
    if (!r.done) throw new FlotillaError('PROTOCOL_ERROR', `${r.remaining} trailing bytes after the frame`);
    return { ok: true, value };
  } catch (error) {
    return { ok: false, error: asFlotillaError(error) };
  }
}

export function decodeReply(frame: Uint8Array): DecodeResult<Reply> {
  const decoded = decodeServerFrame(frame);
  if (!decoded.ok) return decoded;
  const { value } = decoded;
  if (value.kind === 'result' || value.kind === 'error') return { ok: true, value };
  return {
    ok: false,
    error: new FlotillaError('PROTOCOL_ERROR', `expected a reply, got a ${value.kind} push`),
  };
}

export function decodePush(frame: Uint8Array): DecodeResult<Push> {
  const decoded = decodeServerFrame(frame);
  if (!decoded.ok) return decoded;
  const { value } = decoded;
  if (value.kind !== 'result' && value.kind !== 'error') return { ok: true, value };
  return {
    ok: false,
    error: new FlotillaError('PROTOCOL_ERROR', `expected a push, got a ${value.kind} reply`),
  };
}
