/**
 * Message bodies: the SDK turns strings and values into bytes plus a format flag, and the receiver
 * turns them back. Bytes stay bytes (no copy); strings are UTF-8; anything else is msgpack.
 */

import { FlotillaError } from './errors.js';
import { BodyFormat } from './frames.js';
import { decodeMsgpack, encodeMsgpack } from './msgpack.js';

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8', { fatal: true });

export interface EncodedBody {
  body: Uint8Array;
  format: BodyFormat;
}

/** Uint8Array → Bytes (the same array, not copied); string → Utf8; any other value → Msgpack. */
export function encodeBody(value: unknown): EncodedBody {
  if (value instanceof Uint8Array) return { body: value, format: BodyFormat.Bytes };
  if (typeof value === 'string') return { body: textEncoder.encode(value), format: BodyFormat.Utf8 };
  return { body: encodeMsgpack(value), format: BodyFormat.Msgpack };
}

/**
 * Turns a received body back into a value according to its format. Throws PROTOCOL_ERROR if the
 * bytes do not match the format (invalid UTF-8, broken msgpack or JSON).
 */
export function decodeBody(body: Uint8Array, format: BodyFormat): unknown {
  try {
    switch (format) {
      case BodyFormat.Bytes:
        return body;
      case BodyFormat.Utf8:
        return textDecoder.decode(body);
      case BodyFormat.Msgpack:
        return decodeMsgpack(body);
      case BodyFormat.Json:
        return JSON.parse(textDecoder.decode(body));
      default:
        throw new FlotillaError('PROTOCOL_ERROR', `unknown body format ${String(format)}`);
    }
  } catch (cause) {
    if (cause instanceof FlotillaError) throw cause;
    throw new FlotillaError(
      'PROTOCOL_ERROR',
      `body does not match its format ${format}`,
      { format },
      { cause },
    );
  }
}
