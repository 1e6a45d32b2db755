/**
 * Compact msgpack encoding of queue commands and of log entries carrying batches of them.
 *
 * An entry is `[timeMs, [command, ...]]`: the leader's gateway packs commands from many client
 * sessions into one entry, stamped with the leader's clock. A command is a positional array
 * `[opcode, ...fields]` (numbers below); optional trailing fields may be left out. Publish
 * messages are `[body, headers, idempotencyKey, delayMs, ttlMs, group, priority, format]` with
 * trailing nils trimmed (format 0, plain bytes, is written as absent); delivery refs are flattened `[queue, seq, deliveryId, queue, seq, deliveryId...]`.
 *
 * Decoding keeps message bodies as views into the entry's bytes (no copy): the stored messages
 * then keep the entry's buffer alive until the last of them is gone, so the driver should hand
 * over entry buffers of their own (not views into a large WAL segment read).
 *
 * A command that does not have the expected shape decodes to `{ op: 'invalid' }`, which the state
 * machine answers with INVALID_ARGUMENT; only an entry whose envelope is broken, or that is not
 * msgpack at all, throws {@link CommandDecodeError} (every replica sees the same bytes, so the
 * driver can treat that entry as empty and stay in agreement).
 *
 * The bytes are msgpack written and read with the wire protocol's codec (`@flotilla/shared`), one
 * field at a time (no intermediate tree). Strings use `strPresized`, the header form entries have
 * had from the start, so an entry encodes to the same bytes as it always did.
 */
import { FlotillaError, MsgpackReader, MsgpackWriter, type QueueOptions } from '@flotilla/shared';
import {
  isShapeProblem,
  MAX_SKIP_DEPTH,
  readFlag,
  shape,
  Tuple,
  writeOptNumber,
  writeOptStr,
} from './tuple.js';
import type { Command, DeliveryRef, Headers, PublishMessage, QueueOptionsPatch } from './types.js';

export const Opcode = {
  tick: 0,
  createQueue: 1,
  updateQueue: 2,
  deleteQueue: 3,
  purgeQueue: 4,
  publish: 5,
  deliver: 6,
  ack: 7,
  nack: 8,
  extend: 9,
  release: 10,
  releaseAllExcept: 11,
  redrive: 12,
} as const;

export class CommandDecodeError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CommandDecodeError';
  }
}

export interface DecodedBatch {
  timeMs: number;
  commands: Command[];
}

// ---------------------------------------------------------------------------------------------
// Encoding

/** Initial size of a writer made for one call; the batcher passes a larger one it reuses. */
const DEFAULT_WRITER_BYTES = 4096;

/** Encodes one log entry: the leader's time and the commands it carries. */
export function encodeBatch(
  timeMs: number,
  commands: readonly Command[],
  writer = new MsgpackWriter(DEFAULT_WRITER_BYTES),
): Uint8Array {
  writer.reset();
  writer.arrayHeader(2);
  writer.number(timeMs);
  writer.arrayHeader(commands.length);
  for (const command of commands) writeCommand(writer, command);
  return writer.finish();
}

/** Encodes a single command on its own (e.g. to size it before batching). */
export function encodeCommand(
  command: Command,
  writer = new MsgpackWriter(DEFAULT_WRITER_BYTES),
): Uint8Array {
  writer.reset();
  writeCommand(writer, command);
  return writer.finish();
}

export function writeCommand(w: MsgpackWriter, c: Command): void {
  switch (c.op) {
    case 'tick':
      w.arrayHeader(1);
      w.number(Opcode.tick);
      return;
    case 'createQueue':
      w.arrayHeader(3);
      w.number(Opcode.createQueue);
      w.strPresized(c.queue);
      writeOptions(w, c.options);
      return;
    case 'updateQueue':
      w.arrayHeader(3);
      w.number(Opcode.updateQueue);
      w.strPresized(c.queue);
      writePatch(w, c.changes);
      return;
    case 'deleteQueue':
    case 'purgeQueue':
      w.arrayHeader(2);
      w.number(Opcode[c.op]);
      w.strPresized(c.queue);
      return;
    case 'publish':
      writePublish(w, c.queue, c.messages);
      return;
    default:
      writeDeliveryCommand(w, c);
  }
}

function writeDeliveryCommand(w: MsgpackWriter, c: Command): void {
  switch (c.op) {
    case 'deliver':
      w.arrayHeader(c.leaseMs == null ? 4 : 5);
      w.number(Opcode.deliver);
      w.strPresized(c.queue);
      w.strPresized(c.consumerId);
      w.number(c.max);
      if (c.leaseMs != null) w.number(c.leaseMs);
      return;
    case 'ack':
      w.arrayHeader(2);
      w.number(Opcode.ack);
      writeRefs(w, c.items);
      return;
    case 'nack':
      // `[8, refs, delayMs?, true?]`: the rejection flag only when set, so plain nacks keep their bytes.
      w.arrayHeader(c.deadLetter === true ? 4 : c.delayMs == null ? 2 : 3);
      w.number(Opcode.nack);
      writeRefs(w, c.items);
      if (c.deadLetter === true) {
        writeOptNumber(w, c.delayMs);
        w.bool(true);
      } else if (c.delayMs != null) {
        w.number(c.delayMs);
      }
      return;
    case 'extend':
      w.arrayHeader(3);
      w.number(Opcode.extend);
      writeRefs(w, c.items);
      w.number(c.ms);
      return;
    default:
      writeAdminCommand(w, c);
  }
}

function writeAdminCommand(w: MsgpackWriter, c: Command): void {
  switch (c.op) {
    case 'release':
      w.arrayHeader(c.failed === true ? 3 : 2);
      w.number(Opcode.release);
      w.arrayHeader(c.consumerIds.length);
      for (const id of c.consumerIds) w.strPresized(id);
      if (c.failed === true) w.bool(true);
      return;
    case 'releaseAllExcept':
      w.arrayHeader(2);
      w.number(Opcode.releaseAllExcept);
      w.strPresized(c.ownerPrefix);
      return;
    case 'redrive':
      w.arrayHeader(4);
      w.number(Opcode.redrive);
      w.strPresized(c.dlq);
      writeOptStr(w, c.target);
      writeOptNumber(w, c.max);
      return;
    default:
      throw new Error(`cannot encode command op ${c.op}`);
  }
}

function writePublish(w: MsgpackWriter, queue: string, messages: readonly PublishMessage[]): void {
  w.arrayHeader(3);
  w.number(Opcode.publish);
  w.strPresized(queue);
  w.arrayHeader(messages.length);
  for (const m of messages) writePublishMessage(w, m);
}

/** `[body, headers, key, delayMs, ttlMs, group, priority, format]` without its trailing absent fields. */
function writePublishMessage(w: MsgpackWriter, m: PublishMessage): void {
  // Format 0 (bytes) is the default: leaving it out keeps such entries as they were before formats.
  const format = m.format === 0 ? null : m.format;
  const count = optionalFieldCount(m, format);
  w.arrayHeader(1 + count);
  w.bin(m.body);
  if (count > 0) writeHeaders(w, m.headers ?? null);
  if (count > 1) writeOptStr(w, m.idempotencyKey);
  if (count > 2) writeOptNumber(w, m.delayMs);
  if (count > 3) writeOptNumber(w, m.ttlMs);
  if (count > 4) writeOptStr(w, m.group);
  if (count > 5) writeOptNumber(w, m.priority);
  if (count > 6) writeOptNumber(w, format);
}

/** How many of the optional message fields must be written: up to the last one present. */
function optionalFieldCount(m: PublishMessage, format: number | null | undefined): number {
  if (format != null) return 7;
  if (m.priority != null) return 6;
  if (m.group != null) return 5;
  if (m.ttlMs != null) return 4;
  if (m.delayMs != null) return 3;
  if (m.idempotencyKey != null) return 2;
  return m.headers != null ? 1 : 0;
}

export function writeHeaders(w: MsgpackWriter, headers: Headers | null): void {
  if (headers === null) {
    w.nil();
    return;
  }
  const keys = Object.keys(headers);
  w.mapHeader(keys.length);
  for (const key of keys) {
    w.strPresized(key);
    w.strPresized(headers[key] as string);
  }
}

function writeRefs(w: MsgpackWriter, refs: readonly DeliveryRef[]): void {
  w.arrayHeader(refs.length * 3);
  for (const ref of refs) {
    w.strPresized(ref.queue);
    w.number(ref.seq);
    w.number(ref.deliveryId);
  }
}

/** Options as a fixed positional tuple (also the snapshot's format). */
export function writeOptions(w: MsgpackWriter, o: QueueOptions): void {
  w.arrayHeader(13);
  w.number(o.visibilityTimeoutMs);
  w.number(o.maxDeliveries);
  writeOptStr(w, o.deadLetterQueue);
  w.strPresized(o.retry.backoff);
  w.number(o.retry.delayMs);
  w.number(o.retry.maxDelayMs);
  w.number(o.deliveryDelayMs);
  w.number(o.messageTtlMs);
  w.number(o.maxMessages);
  w.number(o.maxBytes);
  w.strPresized(o.overflow);
  w.number(o.dedupWindowMs);
  w.number(o.priorityLevels);
}

/** A patch as a map of the fields it sets (`retry` as a nested map). */
function writePatch(w: MsgpackWriter, patch: QueueOptionsPatch): void {
  const entries = Object.entries(patch).filter(([, value]) => value !== undefined);
  w.mapHeader(entries.length);
  for (const [key, value] of entries) {
    w.strPresized(key);
    if (key === 'retry') {
      const retry = Object.entries(value as object).filter(([, v]) => v !== undefined);
      w.mapHeader(retry.length);
      for (const [k, v] of retry) {
        w.strPresized(k);
        writeScalar(w, v);
      }
    } else {
      writeScalar(w, value);
    }
  }
}

function writeScalar(w: MsgpackWriter, value: unknown): void {
  if (value === null) w.nil();
  else if (typeof value === 'number') w.number(value);
  else if (typeof value === 'string') w.strPresized(value);
  else if (typeof value === 'boolean') w.bool(value);
  else throw new Error(`cannot encode option value of type ${typeof value}`);
}

// ---------------------------------------------------------------------------------------------
// Decoding

/** Decodes one log entry. Throws {@link CommandDecodeError} only when the envelope itself is broken. */
export function decodeBatch(bytes: Uint8Array): DecodedBatch {
  const r = new MsgpackReader(bytes);
  try {
    const entry = Tuple.open(r, 'entry');
    if (entry.length !== 2) throw new CommandDecodeError('entry must be [timeMs, commands]');
    const timeMs = entry.num('entry time');
    if (!Number.isFinite(timeMs)) throw new CommandDecodeError('entry time must be a number');
    const list = entry.list('entry commands');
    const commands = new Array<Command>(list.length);
    for (let i = 0; i < list.length; i++) commands[i] = readCommandOrInvalid(r);
    if (!r.done) throw new CommandDecodeError(`${r.remaining} trailing bytes after the entry`);
    return { timeMs, commands };
  } catch (error) {
    throw asDecodeError(error);
  }
}

/** Decodes a single command encoded by {@link encodeCommand}; malformed input becomes `{ op: 'invalid' }`. */
export function decodeCommand(bytes: Uint8Array): Command {
  const r = new MsgpackReader(bytes);
  try {
    const command = readCommandOrInvalid(r);
    if (!r.done) return { op: 'invalid', reason: `${r.remaining} trailing bytes after the command` };
    return command;
  } catch (error) {
    if (!(error instanceof FlotillaError)) throw error;
    return { op: 'invalid', reason: error.message };
  }
}

/**
 * A failure to read the envelope (a shape problem there, or bytes that are not msgpack) as a
 * CommandDecodeError; anything else is a bug and is thrown as it is.
 */
function asDecodeError(error: unknown): CommandDecodeError {
  if (error instanceof CommandDecodeError) return error;
  if (isShapeProblem(error))
    return new CommandDecodeError(`entry envelope: ${error.message}`, { cause: error });
  if (error instanceof FlotillaError) return new CommandDecodeError(error.message, { cause: error });
  throw error;
}

/**
 * One command at the reader's position. A command of the wrong shape becomes `invalid` and the
 * reader moves past it (its bytes must still be msgpack: anything else breaks the whole entry).
 */
function readCommandOrInvalid(r: MsgpackReader): Command {
  const start = r.pos;
  try {
    return readCommand(r);
  } catch (error) {
    if (!isShapeProblem(error)) throw error;
    r.pos = start;
    r.skip(MAX_SKIP_DEPTH);
    return { op: 'invalid', reason: error.message };
  }
}

function readCommand(r: MsgpackReader): Command {
  const t = Tuple.open(r, 'command');
  if (t.length === 0) shape('command must be a non-empty list');
  const opcode = isNumberByte(t.next('opcode').peek()) ? r.number('opcode') : readOpcodeOfOtherType(r);
  const command = readFields(t, opcode);
  t.end();
  return command;
}

/** An opcode that is not a small integer: read it to name it in the error. */
function readOpcodeOfOtherType(r: MsgpackReader): never {
  const value = r.any('opcode', MAX_SKIP_DEPTH);
  return shape(`unknown opcode ${String(value)}`);
}

function readFields(t: Tuple, opcode: number): Command {
  switch (opcode) {
    case Opcode.tick:
      return { op: 'tick' };
    case Opcode.createQueue:
      return { op: 'createQueue', queue: t.str('queue'), options: readOptions(t.list('options')) };
    case Opcode.updateQueue:
      return { op: 'updateQueue', queue: t.str('queue'), changes: readPatch(t.next('changes')) };
    case Opcode.deleteQueue:
      return { op: 'deleteQueue', queue: t.str('queue') };
    case Opcode.purgeQueue:
      return { op: 'purgeQueue', queue: t.str('queue') };
    case Opcode.publish:
      return { op: 'publish', queue: t.str('queue'), messages: readMessages(t.list('messages')) };
    case Opcode.deliver:
      return {
        op: 'deliver',
        queue: t.str('queue'),
        consumerId: t.str('consumerId'),
        max: t.num('max'),
        leaseMs: t.optNum('leaseMs'),
      };
    default:
      return readSettleFields(t, opcode);
  }
}

function readSettleFields(t: Tuple, opcode: number): Command {
  switch (opcode) {
    case Opcode.ack:
      return { op: 'ack', items: readRefs(t.list('items')) };
    case Opcode.nack:
      return readNack(t);
    case Opcode.extend:
      return { op: 'extend', items: readRefs(t.list('items')), ms: t.num('ms') };
    case Opcode.release:
      return readRelease(t);
    case Opcode.releaseAllExcept:
      return { op: 'releaseAllExcept', ownerPrefix: t.str('ownerPrefix') };
    case Opcode.redrive:
      return { op: 'redrive', dlq: t.str('dlq'), target: t.optStr('target'), max: t.optNum('max') };
    default:
      return shape(`unknown opcode ${opcode}`);
  }
}

function readNack(t: Tuple): Command {
  const items = readRefs(t.list('items'));
  const delayMs = t.optNum('delayMs');
  return readFlag(t, 'deadLetter')
    ? { op: 'nack', items, delayMs, deadLetter: true }
    : { op: 'nack', items, delayMs };
}

function readRelease(t: Tuple): Command {
  const list = t.list('consumerIds');
  const consumerIds: string[] = [];
  while (list.left > 0) consumerIds.push(list.str('consumerId'));
  return readFlag(t, 'failed')
    ? { op: 'release', consumerIds, failed: true }
    : { op: 'release', consumerIds };
}

function readMessages(list: Tuple): PublishMessage[] {
  const messages = new Array<PublishMessage>(list.length);
  const fields = new Tuple(list.r, 0);
  for (let i = 0; i < list.length; i++) {
    list.next('message');
    messages[i] = readMessage(fields.reopen('message'));
  }
  return messages;
}

function readMessage(f: Tuple): PublishMessage {
  if (f.length === 0) shape('message body must be bytes');
  const body = f.next('body').bin('message body');
  const message: PublishMessage = { body };
  if (f.present()) message.headers = readHeaderMap(f.r);
  const key = f.optStr('idempotencyKey');
  if (key !== null) message.idempotencyKey = key;
  const delayMs = f.optNum('delayMs');
  if (delayMs !== null) message.delayMs = delayMs;
  const ttlMs = f.optNum('ttlMs');
  if (ttlMs !== null) message.ttlMs = ttlMs;
  const group = f.optStr('group');
  if (group !== null) message.group = group;
  const priority = f.optNum('priority');
  if (priority !== null) message.priority = priority;
  const format = f.optNum('format');
  if (format !== null) message.format = format;
  f.end();
  return message;
}

/** Headers at the next field of `t`: absent or nil is null, else a map of strings to strings. */
export function readHeaders(t: Tuple): Headers | null {
  return t.present() ? readHeaderMap(t.r) : null;
}

function readHeaderMap(r: MsgpackReader): Headers {
  const count = r.mapHeader('headers');
  const headers: Record<string, string> = {};
  for (let i = 0; i < count; i++) {
    const key = r.str('header name');
    const value = r.str('header value');
    // defineProperty, so that a key like "__proto__" stays an ordinary own property.
    Object.defineProperty(headers, key, { value, enumerable: true, writable: true, configurable: true });
  }
  return headers;
}

function readRefs(flat: Tuple): DeliveryRef[] {
  if (flat.length % 3 !== 0) shape('items must be (queue, seq, deliveryId) triples');
  const refs: DeliveryRef[] = [];
  while (flat.left > 0) {
    refs.push({ queue: flat.str('queue'), seq: flat.num('seq'), deliveryId: flat.num('deliveryId') });
  }
  return refs;
}

/** The 13-field options tuple written by {@link writeOptions}. */
export function readOptions(f: Tuple): QueueOptions {
  if (f.length !== 13) shape('options must have 13 fields');
  return {
    visibilityTimeoutMs: f.num('visibilityTimeoutMs'),
    maxDeliveries: f.num('maxDeliveries'),
    deadLetterQueue: f.optStr('deadLetterQueue'),
    retry: {
      backoff: f.str('retry.backoff') as QueueOptions['retry']['backoff'],
      delayMs: f.num('retry.delayMs'),
      maxDelayMs: f.num('retry.maxDelayMs'),
    },
    deliveryDelayMs: f.num('deliveryDelayMs'),
    messageTtlMs: f.num('messageTtlMs'),
    maxMessages: f.num('maxMessages'),
    maxBytes: f.num('maxBytes'),
    overflow: f.str('overflow') as QueueOptions['overflow'],
    dedupWindowMs: f.num('dedupWindowMs'),
    priorityLevels: f.num('priorityLevels'),
  };
}

const PATCH_FIELDS = new Set([
  'visibilityTimeoutMs',
  'maxDeliveries',
  'deadLetterQueue',
  'deliveryDelayMs',
  'messageTtlMs',
  'maxMessages',
  'maxBytes',
  'overflow',
  'dedupWindowMs',
  'priorityLevels',
]);
const RETRY_FIELDS = new Set(['backoff', 'delayMs', 'maxDelayMs']);

function isNumberByte(byte: number): boolean {
  return byte <= 0x7f || byte >= 0xe0 || (byte >= 0xca && byte <= 0xd3);
}

function isMap(byte: number): boolean {
  return (byte >= 0x80 && byte <= 0x8f) || byte === 0xde || byte === 0xdf;
}

function readPatch(r: MsgpackReader): QueueOptionsPatch {
  if (!isMap(r.peek())) shape('changes must be a map');
  const count = r.mapHeader('changes');
  const patch: Record<string, unknown> = {};
  for (let i = 0; i < count; i++) {
    const key = r.str('option name');
    if (key === 'retry') patch.retry = readRetryPatch(r);
    else if (PATCH_FIELDS.has(key)) patch[key] = readScalar(r, key);
    else shape(`unknown option ${key}`);
  }
  return patch as QueueOptionsPatch;
}

function readRetryPatch(r: MsgpackReader): Record<string, unknown> {
  if (!isMap(r.peek())) shape('retry must be a map');
  const count = r.mapHeader('retry');
  const retry: Record<string, unknown> = {};
  for (let i = 0; i < count; i++) {
    const key = r.str('retry option name');
    if (!RETRY_FIELDS.has(key)) shape(`unknown retry option ${key}`);
    const value = readScalar(r, `retry.${key}`);
    if (typeof value !== 'string' && typeof value !== 'number') shape(`retry.${key} must be a scalar`);
    retry[key] = value;
  }
  return retry;
}

/** nil, a boolean, a number or a string; containers and bytes are refused. */
function readScalar(r: MsgpackReader, field: string): null | boolean | number | string {
  const byte = r.peek();
  if (byte === 0xc0) {
    r.pos++;
    return null;
  }
  if (byte === 0xc2 || byte === 0xc3) return r.bool(field);
  if ((byte >= 0xa0 && byte <= 0xbf) || (byte >= 0xd9 && byte <= 0xdb)) return r.str(field);
  if (isNumberByte(byte)) return r.number(field);
  return shape(`${field} must be a scalar`);
}
