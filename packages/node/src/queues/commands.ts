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
 * machine answers with INVALID_ARGUMENT; only an entry whose envelope is broken throws
 * {@link CommandDecodeError} (every replica sees the same bytes, so the driver can treat that
 * entry as empty and stay in agreement).
 */
import type { QueueOptions } from '@flotilla/shared';
import { CodecError, type Decoded, decodeValue, MsgMap, MsgWriter } from './codec.js';
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

/** Encodes one log entry: the leader's time and the commands it carries. */
export function encodeBatch(
  timeMs: number,
  commands: readonly Command[],
  writer = new MsgWriter(),
): Uint8Array {
  writer.array(2);
  writer.number(timeMs);
  writer.array(commands.length);
  for (const command of commands) writeCommand(writer, command);
  return writer.finish();
}

/** Encodes a single command on its own (e.g. to size it before batching). */
export function encodeCommand(command: Command, writer = new MsgWriter()): Uint8Array {
  writeCommand(writer, command);
  return writer.finish();
}

export function writeCommand(w: MsgWriter, c: Command): void {
  switch (c.op) {
    case 'tick':
      w.array(1);
      w.number(Opcode.tick);
      return;
    case 'createQueue':
      w.array(3);
      w.number(Opcode.createQueue);
      w.str(c.queue);
      writeOptions(w, c.options);
      return;
    case 'updateQueue':
      w.array(3);
      w.number(Opcode.updateQueue);
      w.str(c.queue);
      writePatch(w, c.changes);
      return;
    case 'deleteQueue':
    case 'purgeQueue':
      w.array(2);
      w.number(Opcode[c.op]);
      w.str(c.queue);
      return;
    case 'publish':
      writePublish(w, c.queue, c.messages);
      return;
    default:
      writeDeliveryCommand(w, c);
  }
}

function writeDeliveryCommand(w: MsgWriter, c: Command): void {
  switch (c.op) {
    case 'deliver':
      w.array(c.leaseMs == null ? 4 : 5);
      w.number(Opcode.deliver);
      w.str(c.queue);
      w.str(c.consumerId);
      w.number(c.max);
      if (c.leaseMs != null) w.number(c.leaseMs);
      return;
    case 'ack':
      w.array(2);
      w.number(Opcode.ack);
      writeRefs(w, c.items);
      return;
    case 'nack':
      w.array(c.delayMs == null ? 2 : 3);
      w.number(Opcode.nack);
      writeRefs(w, c.items);
      if (c.delayMs != null) w.number(c.delayMs);
      return;
    case 'extend':
      w.array(3);
      w.number(Opcode.extend);
      writeRefs(w, c.items);
      w.number(c.ms);
      return;
    default:
      writeAdminCommand(w, c);
  }
}

function writeAdminCommand(w: MsgWriter, c: Command): void {
  switch (c.op) {
    case 'release':
      w.array(c.failed === true ? 3 : 2);
      w.number(Opcode.release);
      w.array(c.consumerIds.length);
      for (const id of c.consumerIds) w.str(id);
      if (c.failed === true) w.bool(true);
      return;
    case 'releaseAllExcept':
      w.array(2);
      w.number(Opcode.releaseAllExcept);
      w.str(c.ownerPrefix);
      return;
    case 'redrive':
      w.array(4);
      w.number(Opcode.redrive);
      w.str(c.dlq);
      w.optStr(c.target);
      w.optNumber(c.max);
      return;
    default:
      throw new Error(`cannot encode command op ${c.op}`);
  }
}

function writePublish(w: MsgWriter, queue: string, messages: readonly PublishMessage[]): void {
  w.array(3);
  w.number(Opcode.publish);
  w.str(queue);
  w.array(messages.length);
  for (const m of messages) {
    // Format 0 (bytes) is the default: leaving it out keeps such entries as they were before formats.
    const format = m.format === 0 ? null : m.format;
    const fields = [m.headers, m.idempotencyKey, m.delayMs, m.ttlMs, m.group, m.priority, format];
    let count = fields.length;
    while (count > 0 && fields[count - 1] == null) count--;
    w.array(1 + count);
    w.bin(m.body);
    if (count > 0) writeHeaders(w, m.headers ?? null);
    if (count > 1) w.optStr(m.idempotencyKey);
    if (count > 2) w.optNumber(m.delayMs);
    if (count > 3) w.optNumber(m.ttlMs);
    if (count > 4) w.optStr(m.group);
    if (count > 5) w.optNumber(m.priority);
    if (count > 6) w.optNumber(format);
  }
}

export function writeHeaders(w: MsgWriter, headers: Headers | null): void {
  if (headers === null) {
    w.nil();
    return;
  }
  const keys = Object.keys(headers);
  w.map(keys.length);
  for (const key of keys) {
    w.str(key);
    w.str(headers[key] as string);
  }
}

function writeRefs(w: MsgWriter, refs: readonly DeliveryRef[]): void {
  w.array(refs.length * 3);
  for (const ref of refs) {
    w.str(ref.queue);
    w.number(ref.seq);
    w.number(ref.deliveryId);
  }
}

/** Options as a fixed positional tuple (also the snapshot's format). */
export function writeOptions(w: MsgWriter, o: QueueOptions): void {
  w.array(13);
  w.number(o.visibilityTimeoutMs);
  w.number(o.maxDeliveries);
  w.optStr(o.deadLetterQueue);
  w.str(o.retry.backoff);
  w.number(o.retry.delayMs);
  w.number(o.retry.maxDelayMs);
  w.number(o.deliveryDelayMs);
  w.number(o.messageTtlMs);
  w.number(o.maxMessages);
  w.number(o.maxBytes);
  w.str(o.overflow);
  w.number(o.dedupWindowMs);
  w.number(o.priorityLevels);
}

/** A patch as a map of the fields it sets (`retry` as a nested map). */
function writePatch(w: MsgWriter, patch: QueueOptionsPatch): void {
  const entries = Object.entries(patch).filter(([, value]) => value !== undefined);
  w.map(entries.length);
  for (const [key, value] of entries) {
    w.str(key);
    if (key === 'retry') {
      const retry = Object.entries(value as object).filter(([, v]) => v !== undefined);
      w.map(retry.length);
      for (const [k, v] of retry) {
        w.str(k);
        writeScalar(w, v);
      }
    } else {
      writeScalar(w, value);
    }
  }
}

function writeScalar(w: MsgWriter, value: unknown): void {
  if (value === null) w.nil();
  else if (typeof value === 'number') w.number(value);
  else if (typeof value === 'string') w.str(value);
  else if (typeof value === 'boolean') w.bool(value);
  else throw new Error(`cannot encode option value of type ${typeof value}`);
}

// ---------------------------------------------------------------------------------------------
// Decoding

/** Decodes one log entry. Throws {@link CommandDecodeError} only when the envelope itself is broken. */
export function decodeBatch(bytes: Uint8Array): DecodedBatch {
  let value: Decoded;
  try {
    value = decodeValue(bytes);
  } catch (error) {
    if (error instanceof CodecError) throw new CommandDecodeError(error.message, { cause: error });
    throw error;
  }
  if (!Array.isArray(value) || value.length !== 2)
    throw new CommandDecodeError('entry must be [timeMs, commands]');
  const [timeMs, commands] = value;
  if (typeof timeMs !== 'number' || !Number.isFinite(timeMs))
    throw new CommandDecodeError('entry time must be a number');
  if (!Array.isArray(commands)) throw new CommandDecodeError('entry commands must be a list');
  return { timeMs, commands: commands.map(readCommand) };
}

/** Decodes a single command encoded by {@link encodeCommand}; malformed input becomes `{ op: 'invalid' }`. */
export function decodeCommand(bytes: Uint8Array): Command {
  try {
    return readCommand(decodeValue(bytes));
  } catch (error) {
    if (error instanceof CodecError) return { op: 'invalid', reason: error.message };
    throw error;
  }
}

/** Raised inside the readers for a field of the wrong type; caught per command. */
class ShapeError extends Error {}

function shape(message: string): never {
  throw new ShapeError(message);
}

function readCommand(value: Decoded): Command {
  try {
    if (!Array.isArray(value) || value.length === 0) return shape('command must be a non-empty list');
    return readFields(value);
  } catch (error) {
    if (error instanceof ShapeError) return { op: 'invalid', reason: error.message };
    throw error;
  }
}

function readFields(f: Decoded[]): Command {
  switch (f[0]) {
    case Opcode.tick:
      return { op: 'tick' };
    case Opcode.createQueue:
      return { op: 'createQueue', queue: str(f[1], 'queue'), options: readOptions(f[2]) };
    case Opcode.updateQueue:
      return { op: 'updateQueue', queue: str(f[1], 'queue'), changes: readPatch(f[2]) };
    case Opcode.deleteQueue:
      return { op: 'deleteQueue', queue: str(f[1], 'queue') };
    case Opcode.purgeQueue:
      return { op: 'purgeQueue', queue: str(f[1], 'queue') };
    case Opcode.publish:
      return { op: 'publish', queue: str(f[1], 'queue'), messages: list(f[2], 'messages').map(readMessage) };
    case Opcode.deliver:
      return {
        op: 'deliver',
        queue: str(f[1], 'queue'),
        consumerId: str(f[2], 'consumerId'),
        max: num(f[3], 'max'),
        leaseMs: optNum(f[4], 'leaseMs'),
      };
    default:
      return readSettleFields(f);
  }
}

function readSettleFields(f: Decoded[]): Command {
  switch (f[0]) {
    case Opcode.ack:
      return { op: 'ack', items: readRefs(f[1]) };
    case Opcode.nack:
      return { op: 'nack', items: readRefs(f[1]), delayMs: optNum(f[2], 'delayMs') };
    case Opcode.extend:
      return { op: 'extend', items: readRefs(f[1]), ms: num(f[2], 'ms') };
    case Opcode.release:
      return readRelease(f);
    case Opcode.releaseAllExcept:
      return { op: 'releaseAllExcept', ownerPrefix: str(f[1], 'ownerPrefix') };
    case Opcode.redrive:
      return {
        op: 'redrive',
        dlq: str(f[1], 'dlq'),
        target: optStr(f[2], 'target'),
        max: optNum(f[3], 'max'),
      };
    default:
      return shape(`unknown opcode ${String(f[0])}`);
  }
}

function readRelease(f: Decoded[]): Command {
  const consumerIds = list(f[1], 'consumerIds').map((id) => str(id, 'consumerId'));
  const failed = f[2];
  if (failed === undefined || failed === null || failed === false) return { op: 'release', consumerIds };
  if (failed !== true) return shape('failed must be a boolean');
  return { op: 'release', consumerIds, failed: true };
}

function readMessage(value: Decoded): PublishMessage {
  const f = list(value, 'message');
  const body = f[0];
  if (!(body instanceof Uint8Array)) return shape('message body must be bytes');
  const message: PublishMessage = { body };
  const headers = readHeaders(f[1]);
  if (headers !== null) message.headers = headers;
  const key = optStr(f[2], 'idempotencyKey');
  if (key !== null) message.idempotencyKey = key;
  const delayMs = optNum(f[3], 'delayMs');
  if (delayMs !== null) message.delayMs = delayMs;
  const ttlMs = optNum(f[4], 'ttlMs');
  if (ttlMs !== null) message.ttlMs = ttlMs;
  const group = optStr(f[5], 'group');
  if (group !== null) message.group = group;
  const priority = optNum(f[6], 'priority');
  if (priority !== null) message.priority = priority;
  const format = optNum(f[7], 'format');
  if (format !== null) message.format = format;
  return message;
}

export function readHeaders(value: Decoded | undefined): Headers | null {
  if (value === undefined || value === null) return null;
  if (!(value instanceof MsgMap)) return shape('headers must be a map');
  const headers: Record<string, string> = {};
  for (const [key, val] of value.entries) {
    if (typeof key !== 'string' || typeof val !== 'string')
      return shape('headers must map strings to strings');
    // defineProperty, so that a key like "__proto__" stays an ordinary own property.
    Object.defineProperty(headers, key, { value: val, enumerable: true, writable: true, configurable: true });
  }
  return headers;
}

function readRefs(value: Decoded | undefined): DeliveryRef[] {
  const flat = list(value, 'items');
  if (flat.length % 3 !== 0) return shape('items must be (queue, seq, deliveryId) triples');
  const refs: DeliveryRef[] = [];
  for (let i = 0; i < flat.length; i += 3) {
    refs.push({
      queue: str(flat[i], 'queue'),
      seq: num(flat[i + 1], 'seq'),
      deliveryId: num(flat[i + 2], 'deliveryId'),
    });
  }
  return refs;
}

export function readOptions(value: Decoded | undefined): QueueOptions {
  const f = list(value, 'options');
  if (f.length !== 13) return shape('options must have 13 fields');
  return {
    visibilityTimeoutMs: num(f[0], 'visibilityTimeoutMs'),
    maxDeliveries: num(f[1], 'maxDeliveries'),
    deadLetterQueue: optStr(f[2], 'deadLetterQueue'),
    retry: {
      backoff: str(f[3], 'retry.backoff') as QueueOptions['retry']['backoff'],
      delayMs: num(f[4], 'retry.delayMs'),
      maxDelayMs: num(f[5], 'retry.maxDelayMs'),
    },
    deliveryDelayMs: num(f[6], 'deliveryDelayMs'),
    messageTtlMs: num(f[7], 'messageTtlMs'),
    maxMessages: num(f[8], 'maxMessages'),
    maxBytes: num(f[9], 'maxBytes'),
    overflow: str(f[10], 'overflow') as QueueOptions['overflow'],
    dedupWindowMs: num(f[11], 'dedupWindowMs'),
    priorityLevels: num(f[12], 'priorityLevels'),
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

function readPatch(value: Decoded | undefined): QueueOptionsPatch {
  if (!(value instanceof MsgMap)) return shape('changes must be a map');
  const patch: Record<string, unknown> = {};
  for (const [key, val] of value.entries) {
    if (key === 'retry') {
      patch.retry = readRetryPatch(val as Decoded);
    } else if (typeof key === 'string' && PATCH_FIELDS.has(key)) {
      if (val instanceof MsgMap || Array.isArray(val) || val instanceof Uint8Array)
        return shape(`${key} must be a scalar`);
      patch[key] = val;
    } else {
      return shape(`unknown option ${String(key)}`);
    }
  }
  return patch as QueueOptionsPatch;
}

function readRetryPatch(value: Decoded): Record<string, unknown> {
  if (!(value instanceof MsgMap)) return shape('retry must be a map');
  const retry: Record<string, unknown> = {};
  for (const [key, val] of value.entries) {
    if (typeof key !== 'string' || !RETRY_FIELDS.has(key))
      return shape(`unknown retry option ${String(key)}`);
    if (typeof val !== 'string' && typeof val !== 'number') return shape(`retry.${key} must be a scalar`);
    retry[key] = val;
  }
  return retry;
}

function list(value: Decoded | undefined, field: string): Decoded[] {
  return Array.isArray(value) ? value : shape(`${field} must be a list`);
}

function str(value: Decoded | undefined, field: string): string {
  return typeof value === 'string' ? value : shape(`${field} must be a string`);
}

function num(value: Decoded | undefined, field: string): number {
  return typeof value === 'number' ? value : shape(`${field} must be a number`);
}

function optStr(value: Decoded | undefined, field: string): string | null {
  return value === undefined || value === null ? null : str(value, field);
}

function optNum(value: Decoded | undefined, field: string): number | null {
  return value === undefined || value === null ? null : num(value, field);
}
