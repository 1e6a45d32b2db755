/**
 * Proves the pure formatting: sizes, durations and rates for people, tables, and how a message is
 * shown (text when it is text, JSON for structured bodies, size and hex for bytes) in both the
 * human line and the JSON object of `consume --json` / `peek --json`.
 */

import { MessageView } from '@flotilla/client';
import { BodyFormat, type DeliveredMessage, encodeMsgpack } from '@flotilla/shared';
import { describe, expect, it } from 'vitest';
import {
  describeBytes,
  escapeControl,
  formatBytes,
  formatCount,
  formatDurationMs,
  formatMessageLine,
  formatRate,
  jsonSafe,
  messageToJson,
  renderFacts,
  renderTable,
  toJson,
  viewBody,
} from './format.js';

const utf8 = (text: string) => new TextEncoder().encode(text);

function message(overrides: Partial<DeliveredMessage> = {}): MessageView {
  return new MessageView({
    queue: 'q',
    seq: 7,
    deliveryId: 3,
    body: utf8('hello'),
    format: BodyFormat.Utf8,
    headers: null,
    group: null,
    priority: 0,
    deliveryCount: 2,
    publishedAtMs: Date.UTC(2026, 0, 2, 3, 4, 5),
    leaseDeadlineMs: 0,
    ...overrides,
  });
}

describe('numbers for people', () => {
  it('formats sizes in binary units', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(5 * 1024 ** 2)).toBe('5.0 MiB');
    expect(formatBytes(300 * 1024 ** 3)).toBe('300 GiB');
  });

  it('formats durations with at most two units, dropping a trailing zero unit', () => {
    expect(formatDurationMs(0)).toBe('0 ms');
    expect(formatDurationMs(850)).toBe('850 ms');
    expect(formatDurationMs(1000)).toBe('1 s');
    expect(formatDurationMs(1234)).toBe('1.23 s');
    expect(formatDurationMs(30_000)).toBe('30 s');
    expect(formatDurationMs(61_000)).toBe('1 m 1 s');
    expect(formatDurationMs(300_000)).toBe('5 m');
    expect(formatDurationMs(3_600_000 + 120_000 + 5000)).toBe('1 h 2 m');
    expect(formatDurationMs(7 * 86_400_000)).toBe('7 d');
  });

  it('formats counts and rates', () => {
    expect(formatCount(1234567)).toBe('1,234,567');
    expect(formatRate(12345.6)).toBe('12,346');
    expect(formatRate(98.76)).toBe('98.8');
    expect(formatRate(0.523)).toBe('0.52');
    expect(formatRate(Number.POSITIVE_INFINITY)).toBe('-');
  });
});

describe('tables and JSON', () => {
  it('draws a table with a header row and no colour codes', () => {
    const text = renderTable(['a', 'bb'], [['1', '22']]);
    expect(text).toBe(['┌───┬────┐', '│ a │ bb │', '├───┼────┤', '│ 1 │ 22 │', '└───┴────┘'].join('\n'));
    expect(renderFacts([['key', 'value']])).toBe(
      ['┌─────┬───────┐', '│ key │ value │', '└─────┴───────┘'].join('\n'),
    );
  });

  it('indents JSON only for a terminal', () => {
    expect(toJson({ a: 1 }, false)).toBe('{"a":1}');
    expect(toJson({ a: 1 }, true)).toBe('{\n  "a": 1\n}');
  });
});

describe('message bodies', () => {
  it('shows UTF-8 bodies as text and structured bodies as values', () => {
    expect(viewBody(utf8('hi'), BodyFormat.Utf8)).toEqual({ kind: 'text', text: 'hi' });
    expect(viewBody(utf8('{"a":[1]}'), BodyFormat.Json)).toEqual({ kind: 'value', value: { a: [1] } });
    expect(viewBody(encodeMsgpack({ n: 1, b: new Uint8Array([1, 2]) }), BodyFormat.Msgpack)).toEqual({
      kind: 'value',
      value: { n: 1, b: { base64: 'AQI=' } },
    });
  });

  it('shows raw bytes as text only when they are printable UTF-8', () => {
    expect(viewBody(utf8('plain text\n'), BodyFormat.Bytes)).toEqual({ kind: 'text', text: 'plain text\n' });
    const binary = new Uint8Array([0, 1, 2, 255]);
    expect(viewBody(binary, BodyFormat.Bytes)).toEqual({ kind: 'bytes', bytes: binary });
    expect(viewBody(new Uint8Array([0x68, 0x00]), BodyFormat.Bytes).kind).toBe('bytes');
    expect(viewBody(new Uint8Array(), BodyFormat.Bytes).kind).toBe('bytes');
  });

  it('falls back to bytes when a body does not decode as its format says', () => {
    expect(viewBody(new Uint8Array([0xff, 0xfe]), BodyFormat.Utf8).kind).toBe('bytes');
    expect(viewBody(utf8('{broken'), BodyFormat.Json).kind).toBe('bytes');
  });

  it('escapes control characters so a body cannot drive the terminal', () => {
    expect(escapeControl('a\u001b[31mb\n\\c\td\u009b')).toBe('a\\x1b[31mb\\n\\\\c\td\\x9b');
    expect(formatMessageLine(message({ body: utf8('\u001b]0;title\u0007') }))).toBe(
      '#7  delivery 2  \\x1b]0;title\\x07',
    );
  });

  it('describes bytes by size and a hex preview of the first 32', () => {
    expect(describeBytes(new Uint8Array([0, 171, 255]))).toBe('<3 bytes> 00abff');
    const long = new Uint8Array(100).fill(1);
    expect(describeBytes(long)).toBe(`<100 bytes> ${'01'.repeat(32)}...`);
  });

  it('makes decoded values JSON-safe', () => {
    expect(jsonSafe({ a: [1n, new Uint8Array([255])], m: new Map([[1, 'x']]) })).toEqual({
      a: ['1', { base64: '/w==' }],
      m: { '1': 'x' },
    });
  });
});

describe('messages', () => {
  const history = {
    queue: 'emails',
    seq: 17,
    deliveryCount: 5,
    reason: 'max-deliveries',
    timeMs: Date.UTC(2026, 0, 2, 3, 5, 0),
  };

  it('says where a dead-lettered message came from, in the line and in JSON', () => {
    expect(formatMessageLine(message({ deadLetter: history, deliveryCount: 1 }))).toBe(
      '#7  delivery 1  from emails#17 max-deliveries after 5 deliveries  hello',
    );
    expect(
      messageToJson(message({ deadLetter: { ...history, reason: 'expired', deliveryCount: 1 } })),
    ).toMatchObject({
      deadLetter: {
        queue: 'emails',
        seq: 17,
        deliveryCount: 1,
        reason: 'expired',
        deadLetteredAt: '2026-01-02T03:05:00.000Z',
      },
    });
  });

  it('prints one human line: seq, delivery count, group, priority, headers, body', () => {
    expect(formatMessageLine(message())).toBe('#7  delivery 2  hello');
    expect(
      formatMessageLine(
        message({ group: 'g', priority: 2, headers: { a: '1', b: '2' }, body: utf8('two\nlines') }),
      ),
    ).toBe('#7  delivery 2  group g  priority 2  a=1 b=2  two\\nlines');
    expect(formatMessageLine(message({ body: new Uint8Array([9, 0]), format: BodyFormat.Bytes }))).toBe(
      '#7  delivery 2  <2 bytes> 0900',
    );
  });

  it('gives one JSON object per message with an encoding saying how to read body', () => {
    expect(messageToJson(message())).toEqual({
      queue: 'q',
      seq: 7,
      deliveryCount: 2,
      priority: 0,
      group: null,
      headers: null,
      publishedAt: '2026-01-02T03:04:05.000Z',
      size: 5,
      encoding: 'text',
      body: 'hello',
      deadLetter: null,
    });
    const json = messageToJson(message({ body: encodeMsgpack([1, 'a']), format: BodyFormat.Msgpack }));
    expect(json).toMatchObject({ encoding: 'json', body: [1, 'a'] });
    const bytes = messageToJson(message({ body: new Uint8Array([0, 255]), format: BodyFormat.Bytes }));
    expect(bytes).toMatchObject({ encoding: 'base64', body: 'AP8=', size: 2 });
  });
});
