/**
 * Output formatting, kept pure so tests can pin it: tables (cli-table3, no colours so output is
 * the same on a terminal and in a pipe), human numbers, sizes and durations, and messages shown as
 * a line of text or as one JSON object.
 */

import type { DeadLetterInfo, MessageView } from '@flotilla/client';
import { BodyFormat, decodeBody } from '@flotilla/shared';
import Table from 'cli-table3';

/** A table with a header row; cells are printed as given (numbers formatted by the caller). */
export function renderTable(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const table = new Table({ head: [...head], style: { head: [], border: [], compact: true } });
  for (const row of rows) table.push([...row]);
  return table.toString();
}

/** Two columns, one fact per row: for stats of one thing. */
export function renderFacts(facts: readonly (readonly [string, string])[]): string {
  const table = new Table({ style: { head: [], border: [], compact: true } });
  for (const [key, value] of facts) table.push([key, value]);
  return table.toString();
}

/** `1234567` → `1,234,567`. */
export function formatCount(value: number): string {
  return value.toLocaleString('en-US', { maximumFractionDigits: 0 });
}

/** A rate with a sensible number of digits: `12,345`, `98.7`, `0.52`. */
export function formatRate(value: number): string {
  if (!Number.isFinite(value)) return '-';
  const digits = value >= 100 ? 0 : value >= 10 ? 1 : 2;
  return value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

const BYTE_STEPS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'] as const;

/** `1536` → `1.5 KiB`. */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let step = 0;
  while (value >= 1024 && step < BYTE_STEPS.length - 1) {
    value /= 1024;
    step++;
  }
  const text = step === 0 ? String(value) : value.toFixed(value >= 100 ? 0 : 1);
  return `${text} ${BYTE_STEPS[step]}`;
}

/** `850` → `850 ms`, `1500` → `1.5 s`, `61000` → `1 m 1 s`, `300000` → `5 m`: at most two units. */
export function formatDurationMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${Number((ms / 1000).toFixed(ms < 10_000 ? 2 : 1))} s`;
  const units: [string, number][] = [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ];
  const parts: [number, string][] = [];
  let rest = Math.round(ms);
  for (const [name, size] of units) {
    const count = Math.floor(rest / size);
    rest -= count * size;
    if (count > 0 || parts.length > 0) parts.push([count, name]);
    if (parts.length === 2) break;
  }
  if (parts.length === 2 && parts[1]![0] === 0) parts.pop();
  return parts.map(([count, name]) => `${count} ${name}`).join(' ');
}

/** A millisecond option for display: `0` means off for many of them. */
export function formatOptionalMs(ms: number, zero = 'off'): string {
  return ms === 0 ? zero : formatDurationMs(ms);
}

/** JSON for `--json`: two-space indented when a person reads it, one line in a pipe. */
export function toJson(value: unknown, pretty: boolean): string {
  return JSON.stringify(value, null, pretty ? 2 : undefined);
}

// ---------------------------------------------------------------------------------------------
// Messages

/** How a body is shown: as text, as a JSON-compatible value, or as opaque bytes. */
export type BodyView =
  | { kind: 'text'; text: string }
  | { kind: 'value'; value: unknown }
  | { kind: 'bytes'; bytes: Uint8Array };

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Printable text: no control characters other than tab, newline and carriage return. */
function isPrintable(text: string): boolean {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point.
  return !/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/.test(text);
}

/** Decides how to show a body: strings as text, msgpack/JSON as values, bytes as text only if printable UTF-8. */
export function viewBody(bytes: Uint8Array, format: BodyFormat): BodyView {
  try {
    if (format === BodyFormat.Utf8) return { kind: 'text', text: decodeBody(bytes, format) as string };
    if (format === BodyFormat.Msgpack || format === BodyFormat.Json) {
      return { kind: 'value', value: jsonSafe(decodeBody(bytes, format)) };
    }
    const text = strictUtf8.decode(bytes);
    if (text.length > 0 && isPrintable(text)) return { kind: 'text', text };
  } catch {
    // Not decodable as announced: show the raw bytes rather than fail the whole listing.
  }
  return { kind: 'bytes', bytes };
}

/** A decoded msgpack value as something JSON.stringify keeps: bytes become base64, bigints strings. */
export function jsonSafe(value: unknown): unknown {
  if (value instanceof Uint8Array) return { base64: Buffer.from(value).toString('base64') };
  if (typeof value === 'bigint') return value.toString();
  if (Array.isArray(value)) return value.map(jsonSafe);
  if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [String(k), jsonSafe(v)]));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, jsonSafe(v)]));
  }
  return value;
}

const HEX_PREVIEW_BYTES = 32;

/** `<1,024 bytes> 00ff10...`: size and the first bytes in hex. */
export function describeBytes(bytes: Uint8Array): string {
  const preview = Buffer.from(bytes.subarray(0, HEX_PREVIEW_BYTES)).toString('hex');
  const more = bytes.length > HEX_PREVIEW_BYTES ? '...' : '';
  return `<${formatCount(bytes.length)} bytes> ${preview}${more}`;
}

/**
 * Text made safe for one terminal line: backslash, newlines and every other control character
 * (escape sequences included) are written as escapes, so a message cannot redraw the screen.
 */
export function escapeControl(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: escaping control characters is the point.
  return text.replace(/[\\\u0000-\u0008\u000a-\u001f\u007f-\u009f]/g, (c) => {
    if (c === '\\') return '\\\\';
    if (c === '\n') return '\\n';
    if (c === '\r') return '\\r';
    return `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
  });
}

/** The body as one line of text for people. */
export function bodyText(view: BodyView): string {
  if (view.kind === 'text') return escapeControl(view.text);
  if (view.kind === 'value') return JSON.stringify(view.value);
  return describeBytes(view.bytes);
}

/** Where a dead-lettered message came from, for people: `emails#17 max-deliveries after 5 deliveries`. */
export function describeDeadLetter(history: DeadLetterInfo): string {
  const deliveries = `${history.deliveryCount} ${history.deliveryCount === 1 ? 'delivery' : 'deliveries'}`;
  return `${history.queue}#${history.seq} ${escapeControl(history.reason)} after ${deliveries}`;
}

/** One message as one human line: `#seq  delivery N  [from q#s reason ...]  [group g]  [priority p]  body`. */
export function formatMessageLine(message: MessageView): string {
  const parts = [`#${message.seq}`, `delivery ${message.deliveryCount}`];
  if (message.deadLetter !== null) parts.push(`from ${describeDeadLetter(message.deadLetter)}`);
  // Group and headers come from publishers as much as the body does: escaped alike.
  if (message.group !== null) parts.push(`group ${escapeControl(message.group)}`);
  if (message.priority !== 0) parts.push(`priority ${message.priority}`);
  if (message.headers !== null) {
    parts.push(
      Object.entries(message.headers)
        .map(([key, value]) => `${escapeControl(key)}=${escapeControl(value)}`)
        .join(' '),
    );
  }
  parts.push(bodyText(viewBody(message.bytes, message.format)));
  return parts.join('  ');
}

/** The JSON shape of a message (`--json` on consume and peek): one object per line. */
export interface MessageJson {
  queue: string;
  seq: number;
  deliveryCount: number;
  priority: number;
  group: string | null;
  headers: Record<string, string> | null;
  publishedAt: string;
  size: number;
  /** How `body` is to be read: a string (`text`), a JSON value (`json`), or base64 of raw bytes. */
  encoding: 'text' | 'json' | 'base64';
  body: unknown;
  /**
   * For a message that arrived by dead-lettering: where it came from, how many times it was
   * delivered there, why and when it was moved. Null otherwise.
   */
  deadLetter: {
    queue: string;
    seq: number;
    deliveryCount: number;
    reason: string;
    deadLetteredAt: string;
  } | null;
}

export function messageToJson(message: MessageView): MessageJson {
  const view = viewBody(message.bytes, message.format);
  const encoded =
    view.kind === 'text'
      ? { encoding: 'text' as const, body: view.text }
      : view.kind === 'value'
        ? { encoding: 'json' as const, body: view.value }
        : { encoding: 'base64' as const, body: Buffer.from(view.bytes).toString('base64') };
  return {
    queue: message.queue,
    seq: message.seq,
    deliveryCount: message.deliveryCount,
    priority: message.priority,
    group: message.group,
    headers: message.headers,
    publishedAt: new Date(message.publishedAtMs).toISOString(),
    size: message.bytes.length,
    ...encoded,
    deadLetter: deadLetterJson(message.deadLetter),
  };
}

function deadLetterJson(history: DeadLetterInfo | null): MessageJson['deadLetter'] {
  if (history === null) return null;
  const { queue, seq, deliveryCount, reason, timeMs } = history;
  return { queue, seq, deliveryCount, reason, deadLetteredAt: new Date(timeMs).toISOString() };
}
