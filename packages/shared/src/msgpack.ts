/**
 * A small msgpack writer and reader, browser-safe (Uint8Array, TextEncoder, no Buffer).
 *
 * The frame codec drives them call by call (write an array header, a uint, a bin...) so frames are
 * encoded without building intermediate arrays, and decoded and validated in one pass without
 * building a generic tree first. The reader is built for hostile input: every declared length is
 * checked against the bytes left before anything is allocated, nesting depth is capped, invalid
 * UTF-8 and unknown type bytes are refused, and `bin` values come back as zero-copy views of the
 * frame. Type mismatches raise INVALID_ARGUMENT naming the field; broken encoding raises
 * PROTOCOL_ERROR, and when the input merely ends too early its details say how long it would have
 * to be (`neededBytes`), so a reader of a stream can wait for the rest (see `truncatedInputBytes`).
 *
 * The broker's queue log entries and snapshots use the same writer and reader; they write strings
 * with `strPresized`, the header form those formats have always had (see there).
 */

import { FlotillaError } from './errors.js';

const TWO_POW_32 = 0x1_0000_0000;
/** Objects nested deeper than this in a value handed to the writer are refused (also guards cycles). */
const MAX_ENCODE_DEPTH = 64;
/** Strings up to this many UTF-8 bytes are decoded by hand: faster than TextDecoder for short strings. */
const SHORT_STRING_BYTES = 32;
/** Timestamp extension type (msgpack spec); the only extension Flotilla understands, and only in free-form values. */
const EXT_TIMESTAMP = -1;

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8', { fatal: true });

function protocolError(message: string, offset: number): FlotillaError {
  return new FlotillaError('PROTOCOL_ERROR', `malformed msgpack at byte ${offset}: ${message}`, { offset });
}

/** The input ends before a value does: `neededBytes` is the input length that value needs at least. */
function truncated(message: string, offset: number, neededBytes: number): FlotillaError {
  return new FlotillaError('PROTOCOL_ERROR', `malformed msgpack at byte ${offset}: ${message}`, {
    offset,
    neededBytes,
  });
}

/**
 * For an error raised because the input ended inside a value: the input length that value needs
 * at least (counted from the reader's start of the bytes). Null for any other error.
 */
export function truncatedInputBytes(error: unknown): number | null {
  if (!(error instanceof FlotillaError) || error.code !== 'PROTOCOL_ERROR') return null;
  const needed = error.details.neededBytes;
  return typeof needed === 'number' ? needed : null;
}

function fieldError(field: string, message: string): FlotillaError {
  return new FlotillaError('INVALID_ARGUMENT', `${field}: ${message}`, { field });
}

/** Appends msgpack values to a growable buffer; `finish()` returns a copy of what was written. */
export class MsgpackWriter {
  private buf: Uint8Array;
  private view: DataView;
  private pos = 0;

  constructor(initialBytes = 64 * 1024) {
    this.buf = new Uint8Array(initialBytes);
    this.view = new DataView(this.buf.buffer);
  }

  reset(): void {
    this.pos = 0;
  }

  /** Bytes written since the last reset. */
  get length(): number {
    return this.pos;
  }

  /** A copy of the written bytes (the internal buffer is reused, and sockets may hold on to what they send). */
  finish(): Uint8Array {
    const out = this.buf.slice(0, this.pos);
    this.pos = 0;
    return out;
  }

  private ensure(extraBytes: number): void {
    const needed = this.pos + extraBytes;
    if (needed <= this.buf.length) return;
    const grown = new Uint8Array(Math.max(needed, this.buf.length * 2));
    grown.set(this.buf.subarray(0, this.pos));
    this.buf = grown;
    this.view = new DataView(grown.buffer);
  }

  nil(): void {
    this.ensure(1);
    this.buf[this.pos++] = 0xc0;
  }

  bool(value: boolean): void {
    this.ensure(1);
    this.buf[this.pos++] = value ? 0xc3 : 0xc2;
  }

  /** Any number: integers in the safe range get the smallest int format, the rest float64. */
  number(value: number): void {
    if (Number.isSafeInteger(value)) this.int(value);
    else this.float64(value);
  }

  float64(value: number): void {
    this.ensure(9);
    this.buf[this.pos] = 0xcb;
    this.view.setFloat64(this.pos + 1, value);
    this.pos += 9;
  }

  /** A safe integer in its smallest encoding. */
  int(value: number): void {
    if (value < 0 && Number.isSafeInteger(value)) this.negativeInt(value);
    else this.uint(value);
  }

  /**
   * A non-negative safe integer in its smallest encoding. Anything else (a fraction, a negative,
   * NaN from a caller's bug) is written as what it is, so the receiver refuses it rather than
   * getting a silently truncated value.
   */
  uint(value: number): void {
    if (!(value >= 0 && Number.isSafeInteger(value))) {
      this.number(value);
      return;
    }
    this.ensure(9);
    const buf = this.buf;
    let p = this.pos;
    if (value < 0x80) {
      buf[p++] = value;
    } else if (value < 0x100) {
      buf[p++] = 0xcc;
      buf[p++] = value;
    } else if (value < 0x10000) {
      buf[p++] = 0xcd;
      buf[p++] = value >>> 8;
      buf[p++] = value & 0xff;
    } else if (value < TWO_POW_32) {
      buf[p++] = 0xce;
      this.view.setUint32(p, value);
      p += 4;
    } else {
      buf[p++] = 0xcf;
      this.view.setUint32(p, Math.floor(value / TWO_POW_32));
      this.view.setUint32(p + 4, value >>> 0);
      p += 8;
    }
    this.pos = p;
  }

  private negativeInt(value: number): void {
    this.ensure(9);
    const buf = this.buf;
    let p = this.pos;
    if (value >= -32) {
      buf[p++] = value & 0xff;
    } else if (value >= -0x80) {
      buf[p++] = 0xd0;
      this.view.setInt8(p++, value);
    } else if (value >= -0x8000) {
      buf[p++] = 0xd1;
      this.view.setInt16(p, value);
      p += 2;
    } else if (value >= -0x8000_0000) {
      buf[p++] = 0xd2;
      this.view.setInt32(p, value);
      p += 4;
    } else {
      const high = Math.floor(value / TWO_POW_32);
      buf[p++] = 0xd3;
      this.view.setInt32(p, high);
      this.view.setUint32(p + 4, value - high * TWO_POW_32);
      p += 8;
    }
    this.pos = p;
  }

  str(value: string): void {
    const length = value.length;
    if (length < 32 && this.asciiStr(value)) return;
    // UTF-8 takes at most 3 bytes per UTF-16 unit; reserve the header for that bound, then shrink.
    const maxBytes = length * 3;
    const headerBytes = maxBytes < 32 ? 1 : maxBytes < 0x100 ? 2 : maxBytes < 0x10000 ? 3 : 5;
    this.ensure(headerBytes + maxBytes);
    const start = this.pos;
    const { written } = textEncoder.encodeInto(value, this.buf.subarray(start + headerBytes));
    this.strHeader(written);
    const actualHeaderBytes = this.pos - start;
    if (actualHeaderBytes !== headerBytes) {
      this.buf.copyWithin(this.pos, start + headerBytes, start + headerBytes + written);
    }
    this.pos += written;
  }

  /** Writes a pure-ASCII fixstr (< 32 bytes) byte by byte; returns false (writing nothing) if it is not ASCII. */
  private asciiStr(value: string): boolean {
    const length = value.length;
    this.ensure(1 + length);
    const buf = this.buf;
    const start = this.pos + 1;
    for (let i = 0; i < length; i++) {
      const code = value.charCodeAt(i);
      if (code >= 0x80) return false;
      buf[start + i] = code;
    }
    buf[this.pos] = 0xa0 | length;
    this.pos = start + length;
    return true;
  }

  /**
   * A string whose header width follows from its UTF-16 length alone (room for 3 UTF-8 bytes per
   * unit): fixstr up to 10 units, str8 up to 85, str16 up to 21,845, then str32, even when the
   * UTF-8 bytes would fit a smaller header. Any msgpack reader reads it like `str`. The queue log
   * entries and snapshots have been written this way from the start, and a snapshot's bytes are
   * the input of the state digest that replicas compare, so they keep this form byte for byte.
   */
  strPresized(value: string): void {
    const length = value.length;
    const maxBytes = length * 3;
    const headerBytes = maxBytes < 32 ? 1 : maxBytes < 0x100 ? 2 : maxBytes < 0x10000 ? 3 : 5;
    this.ensure(headerBytes + maxBytes);
    const start = this.pos;
    const written = length < 32 ? this.asciiInto(value, start + headerBytes) : -1;
    const byteLength =
      written >= 0 ? written : textEncoder.encodeInto(value, this.buf.subarray(start + headerBytes)).written;
    this.presizedHeader(byteLength, headerBytes);
    this.pos = start + headerBytes + byteLength;
  }

  /** Copies a pure-ASCII string to `at` byte by byte and returns its length, or -1 if it is not ASCII. */
  private asciiInto(value: string, at: number): number {
    const buf = this.buf;
    for (let i = 0; i < value.length; i++) {
      const code = value.charCodeAt(i);
      if (code >= 0x80) return -1;
      buf[at + i] = code;
    }
    return value.length;
  }

  /** Writes a string header of exactly `headerBytes` bytes at the current position. */
  private presizedHeader(byteLength: number, headerBytes: number): void {
    const buf = this.buf;
    const p = this.pos;
    if (headerBytes === 1) {
      buf[p] = 0xa0 | byteLength;
    } else if (headerBytes === 2) {
      buf[p] = 0xd9;
      buf[p + 1] = byteLength;
    } else if (headerBytes === 3) {
      buf[p] = 0xda;
      this.view.setUint16(p + 1, byteLength);
    } else {
      buf[p] = 0xdb;
      this.view.setUint32(p + 1, byteLength);
    }
  }

  private strHeader(byteLength: number): void {
    this.lengthHeader(byteLength, 0xa0, 32, 0xd9, 0xda, 0xdb);
  }

  bin(value: Uint8Array): void {
    const length = value.byteLength;
    this.ensure(5 + length);
    this.lengthHeader(length, -1, 0, 0xc4, 0xc5, 0xc6);
    this.buf.set(value, this.pos);
    this.pos += length;
  }

  arrayHeader(length: number): void {
    this.ensure(5);
    this.lengthHeader(length, 0x90, 16, -1, 0xdc, 0xdd);
  }

  mapHeader(length: number): void {
    this.ensure(5);
    this.lengthHeader(length, 0x80, 16, -1, 0xde, 0xdf);
  }

  /** Writes a length header: fix form below `fixLimit`, else the 8-, 16- or 32-bit form (-1 = none). */
  private lengthHeader(length: number, fix: number, fixLimit: number, b8: number, b16: number, b32: number) {
    const buf = this.buf;
    let p = this.pos;
    if (length < fixLimit) {
      buf[p++] = fix | length;
    } else if (b8 >= 0 && length < 0x100) {
      buf[p++] = b8;
      buf[p++] = length;
    } else if (length < 0x10000) {
      buf[p++] = b16;
      buf[p++] = length >>> 8;
      buf[p++] = length & 0xff;
    } else {
      buf[p++] = b32;
      this.view.setUint32(p, length);
      p += 4;
    }
    this.pos = p;
  }

  /** Writes any msgpack-encodable value: maps skip undefined members; Date becomes a timestamp. */
  any(value: unknown, depth = 0): void {
    const type = typeof value;
    if (value === null || value === undefined) this.nil();
    else if (type === 'number') this.number(value as number);
    else if (type === 'string') this.str(value as string);
    else if (type === 'boolean') this.bool(value as boolean);
    else if (type === 'object') this.object(value as object, depth);
    else if (type === 'bigint') this.bigint(value as bigint);
    else throw fieldError('value', `cannot encode a ${type} as msgpack`);
  }

  private bigint(value: bigint): void {
    if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw fieldError('value', `bigint ${value} is outside the safe integer range`);
    }
    this.int(Number(value));
  }

  private object(value: object, depth: number): void {
    if (depth >= MAX_ENCODE_DEPTH) throw fieldError('value', `nested deeper than ${MAX_ENCODE_DEPTH} levels`);
    if (value instanceof Uint8Array) {
      this.bin(value);
      return;
    }
    if (value instanceof ArrayBuffer) {
      this.bin(new Uint8Array(value));
      return;
    }
    if (Array.isArray(value)) {
      this.arrayHeader(value.length);
      for (const item of value) this.any(item, depth + 1);
      return;
    }
    if (value instanceof Date) {
      this.timestamp(value);
      return;
    }
    if (value instanceof Map) {
      this.mapHeader(value.size);
      for (const [key, item] of value) {
        this.any(key, depth + 1);
        this.any(item, depth + 1);
      }
      return;
    }
    this.plainObject(value as Record<string, unknown>, depth);
  }

  private plainObject(value: Record<string, unknown>, depth: number): void {
    const keys = Object.keys(value);
    let count = 0;
    for (const key of keys) if (value[key] !== undefined) count++;
    this.mapHeader(count);
    for (const key of keys) {
      const item = value[key];
      if (item === undefined) continue;
      this.str(key);
      this.any(item, depth + 1);
    }
  }

  /** timestamp 96: ext8, 12 bytes of (nanoseconds uint32, seconds int64). */
  private timestamp(date: Date): void {
    const ms = date.getTime();
    if (!Number.isFinite(ms)) throw fieldError('value', 'cannot encode an invalid Date');
    const seconds = Math.floor(ms / 1000);
    const nanos = (ms - seconds * 1000) * 1_000_000;
    this.ensure(15);
    const buf = this.buf;
    buf[this.pos++] = 0xc7;
    buf[this.pos++] = 12;
    buf[this.pos++] = EXT_TIMESTAMP & 0xff;
    this.view.setUint32(this.pos, nanos);
    const high = Math.floor(seconds / TWO_POW_32);
    this.view.setInt32(this.pos + 4, high);
    this.view.setUint32(this.pos + 8, seconds - high * TWO_POW_32);
    this.pos += 12;
  }
}

/** Sets a property; a '__proto__' key becomes an own property, never the object's prototype. */
export function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') {
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    target[key] = value;
  }
}

/**
 * Short strings repeat a lot (queue names in ack items, header names, group ids): a small
 * direct-mapped cache of recently decoded ASCII strings, compared byte by byte, saves building
 * the same string again. Slots own fixed buffers, so a miss allocates nothing but the string.
 */
const STRING_CACHE_SLOTS = 64;
const cachedBytes = Array.from({ length: STRING_CACHE_SLOTS }, () => new Uint8Array(SHORT_STRING_BYTES));
const cachedLengths = new Int32Array(STRING_CACHE_SLOTS).fill(-1);
const cachedStrings: string[] = new Array<string>(STRING_CACHE_SLOTS).fill('');

/**
 * Up to this many characters, V8 builds a flat string from a concatenation; longer ones become a
 * chain of pieces that is slow to hash and compare (measured: a Map of 200k distinct 30-character
 * keys took 5 times longer), so those are made in one call instead.
 */
const FLAT_CONCAT_CHARS = 12;

function concatChars(codes: Uint8Array, length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += String.fromCharCode(codes[i]!);
  return out;
}

function charsAtOnce(codes: Uint8Array, length: number): string {
  return String.fromCharCode.apply(null, codes.subarray(0, length) as unknown as number[]);
}

/** Decodes a pure-ASCII string of at most SHORT_STRING_BYTES bytes, or returns null if it is not ASCII. */
function shortAsciiString(b: Uint8Array, start: number, length: number): string | null {
  if (length === 0) return '';
  const slot = (length * 7 + b[start]! + b[start + length - 1]! * 3) & (STRING_CACHE_SLOTS - 1);
  const known = cachedBytes[slot]!;
  if (cachedLengths[slot] === length) {
    // Back to front: distinct keys of one client share a prefix and differ at the end.
    let same = true;
    for (let i = length - 1; i >= 0; i--) {
      if (known[i] !== b[start + i]) {
        same = false;
        break;
      }
    }
    if (same) return cachedStrings[slot]!;
  }
  cachedLengths[slot] = -1; // the slot's bytes change below: never let it match half-written
  for (let i = 0; i < length; i++) {
    const code = b[start + i]!;
    if (code >= 0x80) return null;
    known[i] = code;
  }
  const out = length <= FLAT_CONCAT_CHARS ? concatChars(known, length) : charsAtOnce(known, length);
  cachedLengths[slot] = length;
  cachedStrings[slot] = out;
  return out;
}

/** What a type byte announces, for error messages. */
function describeType(byte: number): string {
  if (byte < 0x80 || byte >= 0xe0 || (byte >= 0xcc && byte <= 0xd3)) return 'integer';
  if (byte <= 0x8f || byte === 0xde || byte === 0xdf) return 'map';
  if (byte <= 0x9f || byte === 0xdc || byte === 0xdd) return 'array';
  if (byte <= 0xbf || (byte >= 0xd9 && byte <= 0xdb)) return 'string';
  if (byte === 0xc0) return 'nil';
  if (byte === 0xc2 || byte === 0xc3) return 'boolean';
  if (byte >= 0xc4 && byte <= 0xc6) return 'binary';
  if (byte === 0xca || byte === 0xcb) return 'float';
  return 'extension';
}

/**
 * Reads msgpack values from one frame. Every read names the field it reads so type errors say
 * which field was wrong; structural errors (truncation, bad type bytes) are PROTOCOL_ERROR.
 */
export class MsgpackReader {
  readonly bytes: Uint8Array;
  pos: number;
  /** UTF-8 byte length of the last string read (for budgets over several strings, e.g. headers). */
  lastStringBytes = 0;
  private view: DataView | null = null;

  constructor(bytes: Uint8Array, start = 0) {
    this.bytes = bytes;
    this.pos = start;
  }

  get remaining(): number {
    return this.bytes.length - this.pos;
  }

  get done(): boolean {
    return this.pos >= this.bytes.length;
  }

  private dataView(): DataView {
    if (this.view === null) {
      this.view = new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
    }
    return this.view;
  }

  private need(byteCount: number): void {
    if (this.pos + byteCount > this.bytes.length) {
      throw truncated(`needs ${byteCount} more bytes, frame ends`, this.pos, this.pos + byteCount);
    }
  }

  private u8(): number {
    if (this.pos >= this.bytes.length) throw this.endsEarly();
    return this.bytes[this.pos++]!;
  }

  private endsEarly(): FlotillaError {
    return truncated('frame ends where a value should start', this.pos, this.pos + 1);
  }

  private u16(): number {
    this.need(2);
    const b = this.bytes;
    const value = (b[this.pos]! << 8) | b[this.pos + 1]!;
    this.pos += 2;
    return value;
  }

  private u32(): number {
    this.need(4);
    const b = this.bytes;
    const p = this.pos;
    const value = b[p]! * 0x100_0000 + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!);
    this.pos += 4;
    return value;
  }

  /** The next type byte without consuming it. */
  peek(): number {
    if (this.pos >= this.bytes.length) throw this.endsEarly();
    return this.bytes[this.pos]!;
  }

  /** Consumes a nil if one is next; lets optional fields be written as nil. */
  nil(): boolean {
    if (this.pos < this.bytes.length && this.bytes[this.pos] === 0xc0) {
      this.pos++;
      return true;
    }
    return false;
  }

  private mismatch(field: string, expected: string, byte: number): FlotillaError {
    if (byte === 0xc1) return protocolError('0xc1 is not a msgpack type', this.pos - 1);
    return fieldError(field, `expected ${expected}, got ${describeType(byte)}`);
  }

  /** A container length, checked against the bytes left (each element takes at least one byte). */
  private checkedLength(length: number, bytesPerItem: number): number {
    if (length * bytesPerItem > this.bytes.length - this.pos) {
      const message = `declares ${length} elements but only ${this.remaining} bytes remain`;
      throw truncated(message, this.pos, this.pos + length * bytesPerItem);
    }
    return length;
  }

  arrayHeader(field: string): number {
    const byte = this.u8();
    if (byte >= 0x90 && byte <= 0x9f) return this.checkedLength(byte & 0x0f, 1);
    if (byte === 0xdc) return this.checkedLength(this.u16(), 1);
    if (byte === 0xdd) return this.checkedLength(this.u32(), 1);
    throw this.mismatch(field, 'array', byte);
  }

  mapHeader(field: string): number {
    const byte = this.u8();
    if (byte >= 0x80 && byte <= 0x8f) return this.checkedLength(byte & 0x0f, 2);
    if (byte === 0xde) return this.checkedLength(this.u16(), 2);
    if (byte === 0xdf) return this.checkedLength(this.u32(), 2);
    throw this.mismatch(field, 'map', byte);
  }

  bool(field: string): boolean {
    const byte = this.u8();
    if (byte === 0xc3) return true;
    if (byte === 0xc2) return false;
    throw this.mismatch(field, 'boolean', byte);
  }

  /** Any number (integer or float). NaN and infinities are returned as is: callers range-check. */
  number(field: string): number {
    const byte = this.u8();
    if (byte < 0x80) return byte;
    if (byte >= 0xe0) return byte - 0x100;
    switch (byte) {
      case 0xcc:
        return this.u8();
      case 0xcd:
        return this.u16();
      case 0xce:
        return this.u32();
      case 0xcf:
        return this.u64(field);
      case 0xd0:
        return (this.u8() << 24) >> 24;
      case 0xd1:
        return (this.u16() << 16) >> 16;
      case 0xd2:
        return this.u32() | 0;
      case 0xd3:
        return this.i64(field);
      case 0xca:
        this.need(4);
        this.pos += 4;
        return this.dataView().getFloat32(this.pos - 4);
      case 0xcb:
        this.need(8);
        this.pos += 8;
        return this.dataView().getFloat64(this.pos - 8);
      default:
        throw this.mismatch(field, 'number', byte);
    }
  }

  private u64(field: string): number {
    const high = this.u32();
    const low = this.u32();
    if (high >= 0x20_0000) throw fieldError(field, 'integer exceeds 2^53 - 1');
    return high * TWO_POW_32 + low;
  }

  private i64(field: string): number {
    const high = this.u32() | 0;
    const low = this.u32();
    const value = high * TWO_POW_32 + low;
    if (!Number.isSafeInteger(value)) throw fieldError(field, 'integer outside the safe range');
    return value;
  }

  /** An integer in [min, max]; integral floats are accepted, fractions, NaN and infinities are not. */
  int(field: string, min: number, max: number): number {
    const value = this.number(field);
    if (!Number.isInteger(value)) throw fieldError(field, `expected an integer, got ${value}`);
    if (value < min || value > max) throw fieldError(field, `${value} is outside ${min}..${max}`);
    return value;
  }

  /** A string of at most `maxBytes` UTF-8 bytes (checked before decoding). */
  str(field: string, maxBytes: number = Number.MAX_SAFE_INTEGER): string {
    const byte = this.u8();
    let length: number;
    if (byte >= 0xa0 && byte <= 0xbf) length = byte & 0x1f;
    else if (byte === 0xd9) length = this.u8();
    else if (byte === 0xda) length = this.u16();
    else if (byte === 0xdb) length = this.u32();
    else throw this.mismatch(field, 'string', byte);
    this.need(length);
    if (length > maxBytes) throw fieldError(field, `longer than ${maxBytes} bytes (${length})`);
    this.lastStringBytes = length;
    return this.utf8(length);
  }

  private utf8(length: number): string {
    const start = this.pos;
    const end = start + length;
    this.pos = end;
    if (length <= SHORT_STRING_BYTES) {
      const short = shortAsciiString(this.bytes, start, length);
      if (short !== null) return short;
    }
    try {
      return textDecoder.decode(this.bytes.subarray(start, end));
    } catch (cause) {
      throw new FlotillaError(
        'PROTOCOL_ERROR',
        `invalid UTF-8 in string at byte ${start}`,
        { offset: start },
        { cause },
      );
    }
  }

  /** A byte string, as a view of the frame (zero-copy), of at most `maxBytes` bytes. */
  bin(
    field: string,
    maxBytes: number = Number.MAX_SAFE_INTEGER,
    tooLarge: FlotillaError['code'] = 'INVALID_ARGUMENT',
  ) {
    const byte = this.u8();
    let length: number;
    if (byte === 0xc4) length = this.u8();
    else if (byte === 0xc5) length = this.u16();
    else if (byte === 0xc6) length = this.u32();
    else throw this.mismatch(field, 'binary', byte);
    this.need(length);
    if (length > maxBytes) {
      throw new FlotillaError(tooLarge, `${field}: longer than ${maxBytes} bytes (${length})`, { field });
    }
    const start = this.pos;
    this.pos += length;
    return this.bytes.subarray(start, start + length);
  }

  /**
   * Any value: maps become plain objects (keys must be strings or numbers), bin stays a view,
   * timestamps become Dates; other extensions are refused. `depth` counts enclosing containers.
   */
  any(field: string, maxDepth: number, depth = 0): unknown {
    const byte = this.peek();
    if (byte <= 0x7f || byte >= 0xe0 || (byte >= 0xca && byte <= 0xd3)) return this.number(field);
    if (byte === 0xc0) {
      this.pos++;
      return null;
    }
    if (byte === 0xc2 || byte === 0xc3) return this.bool(field);
    if ((byte >= 0xa0 && byte <= 0xbf) || (byte >= 0xd9 && byte <= 0xdb)) return this.str(field);
    if (byte >= 0xc4 && byte <= 0xc6) return this.bin(field);
    if ((byte >= 0x90 && byte <= 0x9f) || byte === 0xdc || byte === 0xdd) {
      return this.anyArray(field, maxDepth, depth);
    }
    if ((byte >= 0x80 && byte <= 0x8f) || byte === 0xde || byte === 0xdf) {
      return this.anyMap(field, maxDepth, depth);
    }
    if (byte === 0xc1) throw protocolError('0xc1 is not a msgpack type', this.pos);
    return this.extension();
  }

  private enter(maxDepth: number, depth: number): void {
    if (depth >= maxDepth) throw protocolError(`nested deeper than ${maxDepth} levels`, this.pos);
  }

  private anyArray(field: string, maxDepth: number, depth: number): unknown[] {
    this.enter(maxDepth, depth);
    const length = this.arrayHeader(field);
    const out = new Array<unknown>(length);
    for (let i = 0; i < length; i++) out[i] = this.any(field, maxDepth, depth + 1);
    return out;
  }

  private anyMap(field: string, maxDepth: number, depth: number): Record<string, unknown> {
    this.enter(maxDepth, depth);
    const length = this.mapHeader(field);
    const out: Record<string, unknown> = {};
    for (let i = 0; i < length; i++) {
      const keyByte = this.peek();
      const key = describeType(keyByte) === 'integer' ? String(this.number(field)) : this.mapKey();
      const value = this.any(field, maxDepth, depth + 1);
      setOwn(out, key, value);
    }
    return out;
  }

  private mapKey(): string {
    const offset = this.pos;
    const byte = this.peek();
    if ((byte >= 0xa0 && byte <= 0xbf) || (byte >= 0xd9 && byte <= 0xdb)) return this.str('key');
    throw protocolError(`map keys must be strings or integers, got ${describeType(byte)}`, offset);
  }

  private extension(): Date {
    const offset = this.pos;
    const byte = this.u8();
    let length: number;
    if (byte === 0xd6) length = 4;
    else if (byte === 0xd7) length = 8;
    else if (byte === 0xc7) length = this.u8();
    else throw protocolError(`unsupported extension 0x${byte.toString(16)}`, offset);
    const type = (this.u8() << 24) >> 24;
    this.need(length);
    if (type !== EXT_TIMESTAMP) throw protocolError(`unsupported extension type ${type}`, offset);
    return this.timestamp(length, offset);
  }

  private timestamp(length: number, offset: number): Date {
    const view = this.dataView();
    const p = this.pos;
    let seconds: number;
    let nanos: number;
    if (length === 4) {
      nanos = 0;
      seconds = view.getUint32(p);
    } else if (length === 8) {
      const high = view.getUint32(p);
      nanos = high >>> 2;
      seconds = (high & 0x3) * TWO_POW_32 + view.getUint32(p + 4);
    } else if (length === 12) {
      nanos = view.getUint32(p);
      seconds = view.getInt32(p + 4) * TWO_POW_32 + view.getUint32(p + 8);
    } else {
      throw protocolError(`timestamp of ${length} bytes`, offset);
    }
    this.pos += length;
    if (nanos >= 1e9) throw protocolError('timestamp nanoseconds out of range', offset);
    return new Date(seconds * 1000 + Math.floor(nanos / 1e6));
  }

  /** Skips one value of any type (used to measure and to step over fields). */
  skip(maxDepth: number): void {
    this.any('value', maxDepth);
  }
}

let sharedWriter: MsgpackWriter | null = new MsgpackWriter();

/**
 * Runs `write` against a writer and returns the bytes. Reuses one writer; a re-entrant call (a
 * getter that encodes while being encoded) gets a fresh one instead of corrupting the shared one.
 */
export function withWriter(write: (writer: MsgpackWriter) => void): Uint8Array {
  const writer = sharedWriter ?? new MsgpackWriter(1024);
  sharedWriter = null;
  try {
    writer.reset();
    write(writer);
    return writer.finish();
  } finally {
    if (sharedWriter === null) sharedWriter = writer;
  }
}

/** Encodes any msgpack-encodable value (see MsgpackWriter.any). Throws INVALID_ARGUMENT for what cannot be encoded. */
export function encodeMsgpack(value: unknown): Uint8Array {
  return withWriter((writer) => writer.any(value));
}

/**
 * Decodes exactly one msgpack value filling all of `bytes`. Throws FlotillaError PROTOCOL_ERROR
 * for malformed input (truncated, trailing bytes, too deep, bad UTF-8, unknown extensions).
 */
export function decodeMsgpack(bytes: Uint8Array, maxDepth: number = MAX_ENCODE_DEPTH): unknown {
  const reader = new MsgpackReader(bytes);
  let value: unknown;
  try {
    value = reader.any('value', maxDepth);
  } catch (error) {
    // The only value-level refusal here is an integer beyond 2^53: unsupported input, reported as such.
    if (error instanceof FlotillaError && error.code !== 'PROTOCOL_ERROR') {
      throw new FlotillaError('PROTOCOL_ERROR', error.message, { offset: reader.pos }, { cause: error });
    }
    throw error;
  }
  if (!reader.done) throw protocolError(`${reader.remaining} trailing bytes after the value`, reader.pos);
  return value;
}
