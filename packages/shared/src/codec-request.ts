/**
 * Client → server frames: `[0, id, op, ...args]`. `encodeRequest` is what the SDK sends;
 * `decodeRequest` is what the gateway runs on every received frame: it validates every field in
 * one pass over the bytes and returns a typed request or a typed error naming the field, and never
 * throws on hostile bytes. Message bodies come back as views of the frame (zero-copy).
 */

import { FlotillaError, invalidArgument } from './errors.js';
import {
  type AckItem,
  BodyFormat,
  FrameType,
  MAX_BODY_FORMAT,
  MIN_PROTOCOL_VERSION,
  OP,
  type OpName,
  opName,
  PROTOCOL_VERSION,
  type PublishMessage,
  type Request,
  type RequestDecodeResult,
  type RequestParams,
} from './frames.js';
import { DEFAULT_LIMITS, type ProtocolLimits, QUEUE_NAME_MAX_LENGTH, QUEUE_NAME_PATTERN } from './limits.js';
import { MsgpackReader, type MsgpackWriter, setOwn, withWriter } from './msgpack.js';
import { checkMutable, checkQueueOptionsPatch, resolveQueueOptions } from './queue-options-validate.js';

/** Request ids and subscription ids are 1..2^32-1 (0 means "unknown id" in error replies). */
export const MAX_ID = 0xffff_ffff;
const MAX_SEQ = Number.MAX_SAFE_INTEGER;
/** Elements of a publish message array: body, format, headers, idempotencyKey, delayMs, ttlMs, group, priority. */
const MESSAGE_FIELDS = 8;

// ---------------------------------------------------------------------------------------------
// Encoding

function isPresent<T>(value: T | null | undefined): value is T {
  return value !== null && value !== undefined;
}

function optionalUint(w: MsgpackWriter, value: number | null | undefined): void {
  if (isPresent(value)) w.uint(value);
  else w.nil();
}

function optionalStr(w: MsgpackWriter, value: string | null | undefined): void {
  if (isPresent(value)) w.str(value);
  else w.nil();
}

/** Number of elements needed so that every present optional value is written (trailing absents dropped). */
function presentLength(values: readonly unknown[]): number {
  let length = values.length;
  while (length > 0 && !isPresent(values[length - 1])) length--;
  return length;
}

function writeHeaders(w: MsgpackWriter, headers: Record<string, string>): void {
  const keys = Object.keys(headers);
  w.mapHeader(keys.length);
  for (const key of keys) {
    w.str(key);
    w.str(headers[key]!);
  }
}

/** `[body, format?, headers?, idempotencyKey?, delayMs?, ttlMs?, group?, priority?]`, trailing absents omitted. */
function writeMessage(w: MsgpackWriter, m: PublishMessage): void {
  const format = m.format === BodyFormat.Bytes ? undefined : m.format;
  const length =
    1 + presentLength([format, m.headers, m.idempotencyKey, m.delayMs, m.ttlMs, m.group, m.priority]);
  w.arrayHeader(length);
  w.bin(m.body);
  if (length > 1) optionalUint(w, format);
  if (length > 2) {
    if (isPresent(m.headers)) writeHeaders(w, m.headers);
    else w.nil();
  }
  if (length > 3) optionalStr(w, m.idempotencyKey);
  if (length > 4) optionalUint(w, m.delayMs);
  if (length > 5) optionalUint(w, m.ttlMs);
  if (length > 6) optionalStr(w, m.group);
  if (length > 7) optionalUint(w, m.priority);
}

/** Ack items as one flat array of triples: `[queue, seq, deliveryId, queue, seq, deliveryId, ...]`. */
function writeItems(w: MsgpackWriter, items: readonly AckItem[]): void {
  w.arrayHeader(items.length * 3);
  for (const item of items) {
    w.str(item.queue);
    w.uint(item.seq);
    w.uint(item.deliveryId);
  }
}

function writeFrameStart(w: MsgpackWriter, id: number, op: OpName, argCount: number): void {
  w.arrayHeader(3 + argCount);
  w.uint(FrameType.Request);
  w.uint(id);
  w.uint(OP[op]);
}

/** Writes the args of ops whose args are a fixed list of strings and uints. */
function writeSimpleArgs(w: MsgpackWriter, id: number, op: OpName, args: readonly unknown[]): void {
  const count = presentLength(args);
  writeFrameStart(w, id, op, count);
  for (let i = 0; i < count; i++) {
    const arg = args[i];
    if (typeof arg === 'string') w.str(arg);
    else if (typeof arg === 'number') w.uint(arg);
    else w.nil();
  }
}

type AnyParams = RequestParams[OpName];

function writeRequest(w: MsgpackWriter, id: number, op: OpName, params: AnyParams): void {
  const p = params as unknown as Record<string, unknown>;
  switch (op) {
    case 'publish': {
      const { queue, messages } = params as RequestParams['publish'];
      writeFrameStart(w, id, op, 2);
      w.str(queue);
      w.arrayHeader(messages.length);
      for (const message of messages) writeMessage(w, message);
      return;
    }
    case 'nack': {
      const { items, delayMs, deadLetter } = params as RequestParams['nack'];
      // `items, delayMs?, deadLetter?`: the flag only when set, so plain nacks keep their form.
      const argCount = deadLetter === true ? 3 : isPresent(delayMs) ? 2 : 1;
      writeFrameStart(w, id, op, argCount);
      writeItems(w, items);
      if (argCount > 1) optionalUint(w, delayMs);
      if (argCount > 2) w.bool(true);
      return;
    }
    case 'ack':
    case 'extend': {
      const { items } = params as RequestParams['ack'];
      const last = op === 'extend' ? p.ms : undefined;
      writeFrameStart(w, id, op, isPresent(last) ? 2 : 1);
      writeItems(w, items);
      if (isPresent(last)) w.uint(last as number);
      return;
    }
    case 'createQueue':
    case 'updateQueue': {
      const { name, options } = params as RequestParams['createQueue'];
      writeFrameStart(w, id, op, 2);
      w.str(name);
      w.any(options);
      return;
    }
    default:
      writeSimpleArgs(w, id, op, simpleArgs(op, p));
  }
}

/** Positional args of the ops written by writeSimpleArgs, in wire order. */
function simpleArgs(op: OpName, p: Record<string, unknown>): unknown[] {
  switch (op) {
    case 'hello':
      return [p.version, p.token, p.name];
    case 'deleteQueue':
    case 'purgeQueue':
    case 'queueStats':
      return [p.name];
    case 'subscribe':
      return [p.queue, p.prefetch];
    case 'credit':
      return [p.subId, p.prefetch];
    case 'unsubscribe':
      return [p.subId];
    case 'receive':
      return [p.queue, p.max, p.waitMs, p.visibilityTimeoutMs];
    case 'peek':
      return [p.queue, p.max, p.fromSeq];
    case 'redrive':
      return [p.dlq, p.target, p.max];
    default:
      return [];
  }
}

/**
 * Encodes a request frame. Does not validate values (the server does, field by field); integers
 * must be non-negative safe integers and `id` must be 1..MAX_ID.
 */
export function encodeRequest<K extends OpName>(id: number, op: K, params: RequestParams[K]): Uint8Array {
  return withWriter((w) => writeRequest(w, id, op, params));
}

// ---------------------------------------------------------------------------------------------
// Decoding

/** Re-labels an error raised inside an element so its field reads `messages[3].delayMs`. */
function withFieldPrefix(error: unknown, prefix: string): unknown {
  if (!(error instanceof FlotillaError)) return error;
  const field = error.field;
  if (field === undefined) return error;
  const full = field === '' ? prefix : `${prefix}.${field}`;
  const text = error.message.startsWith(`${field}: `) ? error.message.slice(field.length + 2) : error.message;
  return new FlotillaError(error.code, `${full}: ${text}`, { ...error.details, field: full });
}

function protocolError(message: string): FlotillaError {
  return new FlotillaError('PROTOCOL_ERROR', message);
}

/** Reads an optional arg: absent (past the end of the args) or nil gives undefined. */
function hasArg(r: MsgpackReader, index: number, argCount: number): boolean {
  return index < argCount && !r.nil();
}

let lastValidQueueName = '';

function readQueueName(r: MsgpackReader, field: string): string {
  const name = r.str(field, QUEUE_NAME_MAX_LENGTH);
  // Batches usually name one queue over and over: skip the regex for a repeat.
  if (name !== lastValidQueueName) {
    if (!QUEUE_NAME_PATTERN.test(name)) {
      throw invalidArgument(field, `not a valid queue name (1..${QUEUE_NAME_MAX_LENGTH} of [A-Za-z0-9._:-])`);
    }
    lastValidQueueName = name;
  }
  return name;
}

function readNonEmptyStr(r: MsgpackReader, field: string, maxBytes: number): string {
  const value = r.str(field, maxBytes);
  if (value.length === 0) throw invalidArgument(field, 'must not be empty');
  return value;
}

/** Reads a header value; the field path is built only on error (this runs once per header on the hot path). */
function readHeaderValue(r: MsgpackReader, key: string, maxBytes: number): string {
  try {
    return r.str('', maxBytes);
  } catch (error) {
    throw withFieldPrefix(error, `headers.${key}`);
  }
}

function readHeaders(r: MsgpackReader, limits: ProtocolLimits): Record<string, string> {
  const count = r.mapHeader('headers');
  if (count > limits.maxHeaders) throw invalidArgument('headers', `more than ${limits.maxHeaders} headers`);
  const headers: Record<string, string> = {};
  let bytes = 0;
  for (let i = 0; i < count; i++) {
    const key = r.str('headers', limits.maxHeaderBytes);
    bytes += r.lastStringBytes;
    const value = readHeaderValue(r, key, limits.maxHeaderBytes);
    bytes += r.lastStringBytes;
    if (bytes > limits.maxHeaderBytes) {
      throw invalidArgument('headers', `keys and values exceed ${limits.maxHeaderBytes} bytes`);
    }
    if (key.length === 0) throw invalidArgument('headers', 'header names must not be empty');
    setOwn(headers, key, value);
  }
  return headers;
}

function readMessage(r: MsgpackReader, limits: ProtocolLimits): PublishMessage {
  const length = r.arrayHeader('');
  if (length < 1 || length > MESSAGE_FIELDS) {
    throw invalidArgument('', `a message has 1..${MESSAGE_FIELDS} elements, got ${length}`);
  }
  const body = r.bin('body', limits.maxMessageBytes, 'MESSAGE_TOO_LARGE');
  const format = (hasArg(r, 1, length) ? r.int('format', 0, MAX_BODY_FORMAT) : 0) as BodyFormat;
  const headers = hasArg(r, 2, length) ? readHeaders(r, limits) : undefined;
  const key = hasArg(r, 3, length)
    ? readNonEmptyStr(r, 'idempotencyKey', limits.maxIdempotencyKeyBytes)
    : undefined;
  const delayMs = hasArg(r, 4, length) ? r.int('delayMs', 0, limits.maxDelayMs) : undefined;
  const ttlMs = hasArg(r, 5, length) ? r.int('ttlMs', 1, limits.maxTtlMs) : undefined;
  const group = hasArg(r, 6, length) ? readNonEmptyStr(r, 'group', limits.maxGroupBytes) : undefined;
  const priority = hasArg(r, 7, length) ? r.int('priority', 0, limits.maxPriorityLevels - 1) : undefined;
  return { body, format, headers, idempotencyKey: key, delayMs, ttlMs, group, priority };
}

function readMessages(r: MsgpackReader, limits: ProtocolLimits): PublishMessage[] {
  const count = r.arrayHeader('messages');
  if (count === 0) throw invalidArgument('messages', 'at least one message is required');
  if (count > limits.maxPublishBatch) {
    throw invalidArgument('messages', `more than ${limits.maxPublishBatch} messages in one publish`);
  }
  const messages = new Array<PublishMessage>(count);
  for (let i = 0; i < count; i++) {
    try {
      messages[i] = readMessage(r, limits);
    } catch (error) {
      throw withFieldPrefix(error, `messages[${i}]`);
    }
  }
  return messages;
}

function readItems(r: MsgpackReader, limits: ProtocolLimits): AckItem[] {
  const length = r.arrayHeader('items');
  if (length === 0 || length % 3 !== 0) {
    throw invalidArgument('items', `expected a non-empty flat list of (queue, seq, deliveryId) triples`);
  }
  const count = length / 3;
  if (count > limits.maxAckBatch) throw invalidArgument('items', `more than ${limits.maxAckBatch} items`);
  const items = new Array<AckItem>(count);
  for (let i = 0; i < count; i++) {
    try {
      const queue = readQueueName(r, 'queue');
      const seq = r.int('seq', 1, MAX_SEQ);
      const deliveryId = r.int('deliveryId', 1, MAX_SEQ);
      items[i] = { queue, seq, deliveryId };
    } catch (error) {
      throw withFieldPrefix(error, `items[${i}]`);
    }
  }
  return items;
}

function readOptions(r: MsgpackReader, limits: ProtocolLimits): unknown {
  return r.any('options', limits.maxDepth);
}

type ArgReader = (r: MsgpackReader, argCount: number, limits: ProtocolLimits) => AnyParams;

/** Per op: the accepted argument counts and how to read the args. */
const ARG_READERS: Record<OpName, [minArgs: number, maxArgs: number, read: ArgReader]> = {
  // Any arg count reaches readHello, so a newer client learns UNSUPPORTED_VERSION, not an arity error.
  hello: [1, MAX_ID, readHello],
  createQueue: [2, 2, readCreateQueue],
  deleteQueue: [1, 1, (r) => ({ name: readQueueName(r, 'name') })],
  purgeQueue: [1, 1, (r) => ({ name: readQueueName(r, 'name') })],
  listQueues: [0, 0, () => ({})],
  queueStats: [1, 1, (r) => ({ name: readQueueName(r, 'name') })],
  updateQueue: [2, 2, readUpdateQueue],
  publish: [
    2,
    2,
    (r, _n, limits) => ({ queue: readQueueName(r, 'queue'), messages: readMessages(r, limits) }),
  ],
  subscribe: [
    2,
    2,
    (r, _n, limits) => ({
      queue: readQueueName(r, 'queue'),
      prefetch: r.int('prefetch', 1, limits.maxPrefetch),
    }),
  ],
  credit: [
    2,
    2,
    (r, _n, limits) => ({
      subId: r.int('subId', 1, MAX_ID),
      prefetch: r.int('prefetch', 0, limits.maxPrefetch),
    }),
  ],
  unsubscribe: [1, 1, (r) => ({ subId: r.int('subId', 1, MAX_ID) })],
  receive: [3, 4, readReceive],
  ack: [1, 1, (r, _n, limits) => ({ items: readItems(r, limits) })],
  nack: [1, 3, readNack],
  extend: [
    2,
    2,
    (r, _n, limits) => ({ items: readItems(r, limits), ms: r.int('ms', 1, limits.maxVisibilityTimeoutMs) }),
  ],
  peek: [2, 3, readPeek],
  redrive: [1, 3, readRedrive],
  cluster: [0, 0, () => ({})],
};

function readHello(r: MsgpackReader, argCount: number, limits: ProtocolLimits): RequestParams['hello'] {
  const version = r.int('version', 0, MAX_ID);
  if (version < MIN_PROTOCOL_VERSION || version > PROTOCOL_VERSION) {
    throw new FlotillaError(
      'UNSUPPORTED_VERSION',
      `protocol version ${version} is not supported (this server speaks ${MIN_PROTOCOL_VERSION}..${PROTOCOL_VERSION})`,
      { field: 'version', minVersion: MIN_PROTOCOL_VERSION, maxVersion: PROTOCOL_VERSION },
    );
  }
  if (argCount > 3) throw invalidArgument('arguments', `hello takes 1..3 arguments, got ${argCount}`);
  const token = hasArg(r, 1, argCount) ? r.str('token', limits.maxTokenBytes) : null;
  const name = hasArg(r, 2, argCount) ? r.str('name', limits.maxClientNameBytes) : null;
  return { version, token, name };
}

function readCreateQueue(r: MsgpackReader, _n: number, limits: ProtocolLimits): RequestParams['createQueue'] {
  const name = readQueueName(r, 'name');
  const options = checkQueueOptionsPatch(readOptions(r, limits), 'options', limits);
  // Catch cross-field mistakes (own DLQ, backoff bounds) before the request reaches the log.
  const resolved = resolveQueueOptions(name, options, undefined, { limits });
  if (!resolved.ok) throw resolved.error;
  return { name, options };
}

function readUpdateQueue(r: MsgpackReader, _n: number, limits: ProtocolLimits): RequestParams['updateQueue'] {
  const name = readQueueName(r, 'name');
  const options = checkQueueOptionsPatch(readOptions(r, limits), 'options', limits);
  checkMutable(options);
  if (options.deadLetterQueue === name) {
    throw invalidArgument('options.deadLetterQueue', 'a queue cannot be its own dead-letter queue');
  }
  return { name, options };
}

function readNack(r: MsgpackReader, argCount: number, limits: ProtocolLimits): RequestParams['nack'] {
  const items = readItems(r, limits);
  const delayMs = hasArg(r, 1, argCount) ? r.int('delayMs', 0, limits.maxDelayMs) : undefined;
  const deadLetter = hasArg(r, 2, argCount) ? r.bool('deadLetter') : undefined;
  if (deadLetter === true && delayMs !== undefined) {
    throw invalidArgument('deadLetter', 'a rejected message is dead-lettered at once: no delayMs with it');
  }
  return deadLetter === true ? { items, delayMs, deadLetter } : { items, delayMs };
}

function readReceive(r: MsgpackReader, argCount: number, limits: ProtocolLimits): RequestParams['receive'] {
  const queue = readQueueName(r, 'queue');
  const max = r.int('max', 1, limits.maxReceiveMessages);
  const waitMs = r.int('waitMs', 0, limits.maxReceiveWaitMs);
  const visibilityTimeoutMs = hasArg(r, 3, argCount)
    ? r.int('visibilityTimeoutMs', 1, limits.maxVisibilityTimeoutMs)
    : undefined;
  return { queue, max, waitMs, visibilityTimeoutMs };
}

function readPeek(r: MsgpackReader, argCount: number, limits: ProtocolLimits): RequestParams['peek'] {
  const queue = readQueueName(r, 'queue');
  const max = r.int('max', 1, limits.maxReceiveMessages);
  const fromSeq = hasArg(r, 2, argCount) ? r.int('fromSeq', 0, MAX_SEQ) : undefined;
  return { queue, max, fromSeq };
}

function readRedrive(r: MsgpackReader, argCount: number, limits: ProtocolLimits): RequestParams['redrive'] {
  const dlq = readQueueName(r, 'dlq');
  const target = hasArg(r, 1, argCount) ? readQueueName(r, 'target') : undefined;
  const max = hasArg(r, 2, argCount) ? r.int('max', 1, limits.maxRedriveMessages) : undefined;
  return { dlq, target, max };
}

/** A number of the envelope: a wrong type there is a broken frame, not a bad argument. */
function envelopeNumber(r: MsgpackReader, what: string): number {
  try {
    return r.number(what);
  } catch (error) {
    if (error instanceof FlotillaError && error.code === 'INVALID_ARGUMENT') {
      throw protocolError(`request ${what} must be a number`);
    }
    throw error;
  }
}

/** Reads `[0, id, op` and returns the arg count; anything wrong here is PROTOCOL_ERROR or UNKNOWN_OP. */
function readEnvelope(r: MsgpackReader, state: { id: number; op: OpName | null }): number {
  const first = r.peek();
  if (!((first >= 0x90 && first <= 0x9f) || first === 0xdc || first === 0xdd)) {
    throw protocolError('a frame is a msgpack array');
  }
  const length = r.arrayHeader('frame');
  if (length < 3) throw protocolError(`a request frame has at least 3 elements, got ${length}`);
  if (r.peek() !== FrameType.Request) throw protocolError('expected a request frame (type 0)');
  r.pos++;
  const id = envelopeNumber(r, 'id');
  if (!Number.isInteger(id) || id < 1 || id > MAX_ID) throw protocolError(`request id must be 1..${MAX_ID}`);
  state.id = id;
  const opCode = envelopeNumber(r, 'op');
  const op = opName(opCode);
  if (op === undefined) throw new FlotillaError('UNKNOWN_OP', `unknown op ${opCode}`, { op: opCode });
  state.op = op;
  return length - 3;
}

function readRequest(
  r: MsgpackReader,
  limits: ProtocolLimits,
  state: { id: number; op: OpName | null },
): Request {
  const argCount = readEnvelope(r, state);
  const op = state.op!;
  const [minArgs, maxArgs, read] = ARG_READERS[op];
  if (argCount < minArgs || argCount > maxArgs) {
    const expected = minArgs === maxArgs ? `${minArgs}` : `${minArgs}..${maxArgs}`;
    throw invalidArgument('arguments', `${op} takes ${expected} arguments, got ${argCount}`);
  }
  const params = read(r, argCount, limits);
  if (!r.done) throw protocolError(`${r.remaining} trailing bytes after the frame`);
  return { id: state.id, op, params } as Request;
}

/**
 * Decodes and validates one client frame. Never throws: hostile or broken input gives
 * `{ok: false, error}` with PROTOCOL_ERROR, FRAME_TOO_LARGE, UNKNOWN_OP, UNSUPPORTED_VERSION,
 * MESSAGE_TOO_LARGE or INVALID_ARGUMENT (`error.details.field` names the field), plus the request
 * id (0 when unreadable) and op (null when unreadable) so the server can answer.
 */
export function decodeRequest(
  frame: Uint8Array,
  limits: ProtocolLimits = DEFAULT_LIMITS,
): RequestDecodeResult {
  const state: { id: number; op: OpName | null } = { id: 0, op: null };
  if (frame.byteLength > limits.maxFrameBytes) {
    const error = new FlotillaError(
      'FRAME_TOO_LARGE',
      `frame of ${frame.byteLength} bytes exceeds ${limits.maxFrameBytes} bytes`,
      { frameBytes: frame.byteLength, maxFrameBytes: limits.maxFrameBytes },
    );
    return { ok: false, error, id: 0, op: null };
  }
  try {
    return { ok: true, value: readRequest(new MsgpackReader(frame), limits, state) };
  } catch (error) {
    return { ok: false, error: asFlotillaError(error), id: state.id, op: state.op };
  }
}

/** Anything thrown while decoding becomes a FlotillaError; a non-Flotilla throw is a bug, reported as INTERNAL. */
export function asFlotillaError(error: unknown): FlotillaError {
  if (error instanceof FlotillaError) return error;
  if (error instanceof RangeError) {
    // Stack exhaustion or an allocation refused while reading: the input was hostile, not the code wrong.
    return new FlotillaError(
      'PROTOCOL_ERROR',
      `frame could not be decoded: ${error.message}`,
      {},
      { cause: error },
    );
  }
  return new FlotillaError('INTERNAL', `decoder fault: ${String(error)}`, {}, { cause: error });
}
