/**
 * The msgpack subset used by queue commands and snapshots: nil, booleans, numbers, UTF-8
 * strings, bin, arrays and maps. The writer is driven call by call so commands are encoded without
 * building intermediate trees; the reader turns bytes into plain values with `bin` values as
 * zero-copy views of the input (a body decoded from a log entry keeps that entry's buffer alive).
 *
 * The reader is written for hostile bytes: every declared length is checked against what is left
 * before anything is allocated, nesting depth is capped, and invalid UTF-8 or unknown type bytes
 * raise {@link CodecError}. Maps decode to {@link MsgMap} (key/value pairs in wire order), so no
 * key can reach an object prototype and the caller decides what a valid key is.
 */

/** Raised for bytes that are not valid msgpack of the supported subset. */
export class CodecError extends Error {
  constructor(
    message: string,
    readonly offset: number,
    /**
     * Set when the input ended inside a value: the input length (from the start of the bytes
     * decoded) needed at least before that value can decode. Null for bytes that are wrong.
     */
    readonly neededBytes: number | null = null,
  ) {
    super(`malformed msgpack at byte ${offset}: ${message}`);
    this.name = 'CodecError';
  }
}

/** A decoded msgpack map: pairs in wire order. */
export class MsgMap {
  constructor(readonly entries: [unknown, unknown][]) {}
}

export type Decoded = null | boolean | number | string | Uint8Array | Decoded[] | MsgMap;

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8', { fatal: true });
const TWO_POW_32 = 0x1_0000_0000;
/** Arrays/maps nested deeper than this are refused; our own formats nest at most 6 deep. */
const MAX_DEPTH = 32;

export class MsgWriter {
  private buf: Uint8Array;
  private view: DataView;
  private pos = 0;

  constructor(initialBytes = 4096) {
    this.buf = new Uint8Array(initialBytes);
    this.view = new DataView(this.buf.buffer);
  }

  get length(): number {
    return this.pos;
  }

  /** A copy of the bytes written so far (exact size); the writer is reset. */
  finish(): Uint8Array {
    const out = this.buf.slice(0, this.pos);
    this.pos = 0;
    return out;
  }

  nil(): void {
    this.ensure(1);
    this.buf[this.pos++] = 0xc0;
  }

  bool(value: boolean): void {
    this.ensure(1);
    this.buf[this.pos++] = value ? 0xc3 : 0xc2;
  }

  /** Safe integers in the smallest int format; anything else as float64. */
  number(value: number): void {
    if (!Number.isSafeInteger(value)) this.float64(value);
    else if (value >= 0) this.uint(value);
    else this.negativeInt(value);
  }

  str(value: string): void {
    // Worst case 3 bytes per UTF-16 unit; write after a 5-byte header slot, then fix the header.
    const maxBytes = value.length * 3;
    this.ensure(5 + maxBytes);
    const start = this.pos;
    const headerBytes = maxBytes < 32 ? 1 : maxBytes < 256 ? 2 : maxBytes < 65536 ? 3 : 5;
    const { written } = textEncoder.encodeInto(value, this.buf.subarray(start + headerBytes));
    this.pos = start;
    this.strHeader(written, headerBytes);
    this.pos = start + headerBytes + written;
  }

  bin(value: Uint8Array): void {
    const n = value.byteLength;
    this.ensure(5 + n);
    if (n < 256) {
      this.buf[this.pos++] = 0xc4;
      this.buf[this.pos++] = n;
    } else if (n < 65536) {
      this.buf[this.pos++] = 0xc5;
      this.view.setUint16(this.pos, n);
      this.pos += 2;
    } else {
      this.buf[this.pos++] = 0xc6;
      this.view.setUint32(this.pos, n);
      this.pos += 4;
    }
    this.buf.set(value, this.pos);
    this.pos += n;
  }

  array(length: number): void {
    this.containerHeader(length, 0x90, 0xdc, 0xdd);
  }

  map(length: number): void {
    this.containerHeader(length, 0x80, 0xde, 0xdf);
  }

  /** A nullable string: nil for null/undefined. */
  optStr(value: string | null | undefined): void {
    if (value == null) this.nil();
    else this.str(value);
  }

  /** A nullable number: nil for null/undefined. */
  optNumber(value: number | null | undefined): void {
    if (value == null) this.nil();
    else this.number(value);
  }

  private containerHeader(length: number, fix: number, b16: number, b32: number): void {
    this.ensure(5);
    if (length < 16) {
      this.buf[this.pos++] = fix | length;
    } else if (length < 65536) {
      this.buf[this.pos++] = b16;
      this.view.setUint16(this.pos, length);
      this.pos += 2;
    } else {
      this.buf[this.pos++] = b32;
      this.view.setUint32(this.pos, length);
      this.pos += 4;
    }
  }

  /** Writes a string header of exactly `headerBytes` bytes (fixstr/str8/str16/str32). */
  private strHeader(n: number, headerBytes: number): void {
    if (headerBytes === 1) {
      this.buf[this.pos++] = 0xa0 | n;
    } else if (headerBytes === 2) {
      this.buf[this.pos++] = 0xd9;
      this.buf[this.pos++] = n;
    } else if (headerBytes === 3) {
      this.buf[this.pos++] = 0xda;
      this.view.setUint16(this.pos, n);
      this.pos += 2;
    } else {
      this.buf[this.pos++] = 0xdb;
      this.view.setUint32(this.pos, n);
      this.pos += 4;
    }
  }

  private uint(value: number): void {
    this.ensure(9);
    if (value < 128) {
      this.buf[this.pos++] = value;
    } else if (value < 256) {
      this.buf[this.pos++] = 0xcc;
      this.buf[this.pos++] = value;
    } else if (value < 65536) {
      this.buf[this.pos++] = 0xcd;
      this.view.setUint16(this.pos, value);
      this.pos += 2;
    } else if (value < TWO_POW_32) {
      this.buf[this.pos++] = 0xce;
      this.view.setUint32(this.pos, value);
      this.pos += 4;
    } else {
      this.buf[this.pos++] = 0xcf;
      this.view.setUint32(this.pos, Math.floor(value / TWO_POW_32));
      this.view.setUint32(this.pos + 4, value >>> 0);
      this.pos += 8;
    }
  }

  private negativeInt(value: number): void {
    this.ensure(9);
    if (value >= -32) {
      this.buf[this.pos++] = value & 0xff;
    } else if (value >= -128) {
      this.buf[this.pos++] = 0xd0;
      this.view.setInt8(this.pos++, value);
    } else if (value >= -32768) {
      this.buf[this.pos++] = 0xd1;
      this.view.setInt16(this.pos, value);
      this.pos += 2;
    } else if (value >= -0x8000_0000) {
      this.buf[this.pos++] = 0xd2;
      this.view.setInt32(this.pos, value);
      this.pos += 4;
    } else {
      this.buf[this.pos++] = 0xd3;
      this.view.setBigInt64(this.pos, BigInt(value));
      this.pos += 8;
    }
  }

  private float64(value: number): void {
    this.ensure(9);
    this.buf[this.pos++] = 0xcb;
    this.view.setFloat64(this.pos, value);
    this.pos += 8;
  }

  private ensure(extraBytes: number): void {
    const needed = this.pos + extraBytes;
    if (needed <= this.buf.length) return;
    const grown = new Uint8Array(Math.max(needed, this.buf.length * 2));
    grown.set(this.buf.subarray(0, this.pos));
    this.buf = grown;
    this.view = new DataView(grown.buffer, grown.byteOffset, grown.byteLength);
  }
}

/** Decodes exactly one value filling all of `bytes`; throws {@link CodecError} otherwise. */
export function decodeValue(bytes: Uint8Array): Decoded {
  const reader = new MsgReader(bytes);
  const value = reader.value(0);
  if (reader.offset !== bytes.byteLength) {
    throw new CodecError(`${bytes.byteLength - reader.offset} trailing bytes`, reader.offset);
  }
  return value;
}

/** Where decoding a stream piece stopped: the start of an incomplete last value, if any. */
export interface PartialDecode {
  /** Bytes consumed by whole values; the rest is the start of a value cut off by the end. */
  consumedBytes: number;
  /** Bytes the cut-off value needs at least (counted from its start); 0 when nothing is left over. */
  neededBytes: number;
}

/**
 * Decodes a piece of a stream of concatenated values, calling `onValue` for each whole value in
 * order, and stops at a value the end of `bytes` cuts off, reporting where it starts so the caller
 * can prepend it to the next piece. Bytes that are wrong (not merely cut off) raise CodecError.
 */
export function decodeWhole(bytes: Uint8Array, onValue: (value: Decoded) => void): PartialDecode {
  const reader = new MsgReader(bytes);
  while (reader.offset < bytes.byteLength) {
    const start = reader.offset;
    let value: Decoded;
    try {
      value = reader.value(0);
    } catch (error) {
      if (!(error instanceof CodecError) || error.neededBytes === null) throw error;
      return { consumedBytes: start, neededBytes: error.neededBytes - start };
    }
    onValue(value);
  }
  return { consumedBytes: bytes.byteLength, neededBytes: 0 };
}

class MsgReader {
  offset = 0;
  private readonly view: DataView;

  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  value(depth: number): Decoded {
    const type = this.u8();
    if (type <= 0x7f) return type;
    if (type >= 0xe0) return type - 0x100;
    if (type >= 0xa0 && type <= 0xbf) return this.string(type & 0x1f);
    if (type >= 0x90 && type <= 0x9f) return this.array(type & 0x0f, depth);
    if (type >= 0x80 && type <= 0x8f) return this.map(type & 0x0f, depth);
    return this.tagged(type, depth);
  }

  private tagged(type: number, depth: number): Decoded {
    switch (type) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
        return this.binary(this.u8());
      case 0xc5:
        return this.binary(this.u16());
      case 0xc6:
        return this.binary(this.u32());
      case 0xca:
        return this.view.getFloat32(this.advance(4));
      case 0xcb:
        return this.view.getFloat64(this.advance(8));
      case 0xcc:
        return this.u8();
      case 0xcd:
        return this.u16();
      case 0xce:
        return this.u32();
      case 0xcf:
        return this.bigint(this.view.getBigUint64(this.advance(8)));
      case 0xd0:
        return this.view.getInt8(this.advance(1));
      case 0xd1:
        return this.view.getInt16(this.advance(2));
      case 0xd2:
        return this.view.getInt32(this.advance(4));
      case 0xd3:
        return this.bigint(this.view.getBigInt64(this.advance(8)));
      case 0xd9:
        return this.string(this.u8());
      case 0xda:
        return this.string(this.u16());
      case 0xdb:
        return this.string(this.u32());
      case 0xdc:
        return this.array(this.u16(), depth);
      case 0xdd:
        return this.array(this.u32(), depth);
      case 0xde:
        return this.map(this.u16(), depth);
      case 0xdf:
        return this.map(this.u32(), depth);
      default:
        throw new CodecError(`unsupported type byte 0x${type.toString(16)}`, this.offset - 1);
    }
  }

  private array(length: number, depth: number): Decoded[] {
    this.checkContainer(length, depth);
    const out: Decoded[] = new Array(length);
    for (let i = 0; i < length; i++) out[i] = this.value(depth + 1);
    return out;
  }

  private map(length: number, depth: number): MsgMap {
    // Each pair needs at least two bytes.
    this.checkContainer(length * 2, depth);
    const entries: [unknown, unknown][] = new Array(length);
    for (let i = 0; i < length; i++) entries[i] = [this.value(depth + 1), this.value(depth + 1)];
    return new MsgMap(entries);
  }

  /** Every element takes at least one byte, so a length beyond the bytes left is a lie. */
  private checkContainer(minBytes: number, depth: number): void {
    if (depth >= MAX_DEPTH) throw new CodecError(`nesting deeper than ${MAX_DEPTH}`, this.offset);
    if (minBytes > this.bytes.byteLength - this.offset) {
      throw new CodecError(
        `container of ${minBytes} elements exceeds remaining bytes`,
        this.offset,
        this.offset + minBytes,
      );
    }
  }

  private string(length: number): string {
    const start = this.advance(length);
    try {
      return textDecoder.decode(this.bytes.subarray(start, start + length));
    } catch {
      throw new CodecError('invalid UTF-8 in string', start);
    }
  }

  private binary(length: number): Uint8Array {
    const start = this.advance(length);
    return this.bytes.subarray(start, start + length);
  }

  private bigint(value: bigint): number {
    const n = Number(value);
    if (!Number.isSafeInteger(n)) throw new CodecError('integer beyond 2^53', this.offset - 8);
    return n;
  }

  private u8(): number {
    return this.view.getUint8(this.advance(1));
  }

  private u16(): number {
    return this.view.getUint16(this.advance(2));
  }

  private u32(): number {
    return this.view.getUint32(this.advance(4));
  }

  /** Moves past `n` bytes, returning where they start; refuses to run past the end. */
  private advance(n: number): number {
    const start = this.offset;
    if (n > this.bytes.byteLength - start) {
      throw new CodecError(`needs ${n} bytes, ${this.bytes.byteLength - start} left`, start, start + n);
    }
    this.offset = start + n;
    return start;
  }
}
