/**
 * What the queue formats (log entries in commands.ts, snapshots in snapshot.ts) share on top of
 * the wire protocol's msgpack writer and reader (`@flotilla/shared`): positional arrays read field
 * by field, and the few writing shorthands they use. Both formats are arrays of positional fields
 * where trailing optional fields may be left out and fields a newer writer appends are skipped.
 *
 * Errors while reading come in two kinds, kept apart because the formats treat them differently:
 * a field of the wrong shape (a {@link ShapeError}, or the reader's INVALID_ARGUMENT for a type
 * mismatch) and bytes that are not msgpack at all (the reader's PROTOCOL_ERROR).
 */
import { FlotillaError, type MsgpackReader, type MsgpackWriter } from '@flotilla/shared';

/** Arrays and maps nested deeper than this are refused when skipped; our formats nest at most 6 deep. */
export const MAX_SKIP_DEPTH = 32;

/** A field of the wrong shape (missing, wrong type, out of its set of values). */
export class ShapeError extends Error {
  override readonly name = 'ShapeError';
}

export function shape(message: string): never {
  throw new ShapeError(message);
}

/** True for a field-level problem (as opposed to broken msgpack): the value is readable but wrong. */
export function isShapeProblem(error: unknown): error is ShapeError | FlotillaError {
  return error instanceof ShapeError || (error instanceof FlotillaError && error.code === 'INVALID_ARGUMENT');
}

/**
 * A positional msgpack array being read front to back. Fields past the end read as absent;
 * `end()` skips the fields nobody asked for, so a newer writer may append some.
 */
export class Tuple {
  private index = 0;

  constructor(
    readonly r: MsgpackReader,
    private size: number,
  ) {}

  /** Reads an array header; anything else is a shape problem naming `field`. */
  static open(r: MsgpackReader, field: string): Tuple {
    return new Tuple(r, readArrayHeader(r, field));
  }

  /** Elements in the array. */
  get length(): number {
    return this.size;
  }

  /**
   * Makes this tuple read the next array of the reader instead (reused for the elements of a list,
   * which are read one after the other: one object for a whole publish, not one per message).
   */
  reopen(field: string): this {
    this.size = readArrayHeader(this.r, field);
    this.index = 0;
    return this;
  }

  /** Fields not read yet. */
  get left(): number {
    return this.length - this.index;
  }

  /** Moves to the next field: false (consuming it) when it is absent or nil. */
  present(): boolean {
    if (this.index >= this.length) return false;
    this.index++;
    return !this.r.nil();
  }

  /** Moves to the next field, which must be there (it may still be nil: callers read it next). */
  private required(field: string, what: string): void {
    if (this.index >= this.length) shape(`${field} must be ${what}`);
    this.index++;
  }

  str(field: string): string {
    this.required(field, 'a string');
    return this.r.str(field);
  }

  optStr(field: string): string | null {
    return this.present() ? this.r.str(field) : null;
  }

  num(field: string): number {
    this.required(field, 'a number');
    return this.r.number(field);
  }

  optNum(field: string): number | null {
    return this.present() ? this.r.number(field) : null;
  }

  /** A nested array: its header (the caller reads its elements). */
  list(field: string): Tuple {
    this.required(field, 'a list');
    return Tuple.open(this.r, field);
  }

  /** The next field, for readers that need to look at it themselves (it must be there). */
  next(field: string): MsgpackReader {
    this.required(field, 'present');
    return this.r;
  }

  /** Skips the fields not read (appended by a newer writer). */
  end(): void {
    while (this.index < this.length) {
      this.r.skip(MAX_SKIP_DEPTH);
      this.index++;
    }
  }
}

function readArrayHeader(r: MsgpackReader, field: string): number {
  const byte = r.peek();
  if (!((byte >= 0x90 && byte <= 0x9f) || byte === 0xdc || byte === 0xdd)) shape(`${field} must be a list`);
  return r.arrayHeader(field);
}

/** Reads a boolean that may be absent or nil (false), else must be a boolean. */
export function readFlag(t: Tuple, field: string): boolean {
  if (!t.present()) return false;
  const byte = t.r.peek();
  if (byte !== 0xc2 && byte !== 0xc3) shape(`${field} must be a boolean`);
  return t.r.bool(field);
}

/** A nullable string: nil for null/undefined. Strings use the queue formats' header form. */
export function writeOptStr(w: MsgpackWriter, value: string | null | undefined): void {
  if (value == null) w.nil();
  else w.strPresized(value);
}

/** A nullable number: nil for null/undefined. */
export function writeOptNumber(w: MsgpackWriter, value: number | null | undefined): void {
  if (value == null) w.nil();
  else w.number(value);
}
