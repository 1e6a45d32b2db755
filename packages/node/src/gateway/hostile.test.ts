/**
 * Proves that nothing a client sends can hurt the node: garbage bytes, truncated msgpack, frames
 * over maxPayload, text frames, unknown ops and wrong field types each get the error or close
 * code docs/protocol.md names, random bytes never crash the server, and other sessions keep being
 * served throughout. Also proves the limits: sessions per node, requests in flight per session,
 * subscriptions per session, and send-buffer backpressure against a client that stops reading.
 */
import type { Socket } from 'node:net';
import { DEFAULT_LIMITS, encodeMsgpack, encodeRequest } from '@flotilla/shared';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { bytes, startBroker, type TestBroker, TestClient, waitFor } from './testing/harness.js';

const brokers: TestBroker[] = [];
afterEach(async () => {
  for (const broker of brokers.splice(0)) await broker.close();
});

async function broker(options: Parameters<typeof startBroker>[0] = {}) {
  const b = await startBroker(options);
  brokers.push(b);
  const bystander = await TestClient.connect(b.url);
  await bystander.ok('createQueue', { name: 'q', options: {} });
  return { ...b, bystander };
}

/** The bystander's session still works end to end. */
async function stillServing(bystander: TestClient): Promise<void> {
  const { seqs } = await bystander.ok('publish', { queue: 'q', messages: [{ body: bytes('alive') }] });
  expect(seqs.length).toBe(1);
}

describe('broken frames', () => {
  it('answers garbage with PROTOCOL_ERROR (id 0) and closes with 1002', async () => {
    const { url, bystander } = await broker();
    const client = await TestClient.connect(url);
    client.sendRaw(new Uint8Array([0xc1, 0xff, 0x00]));
    const closed = await client.closed;
    expect(closed.code).toBe(1002);
    expect(client.replies.get(0)).toMatchObject({ kind: 'error', id: 0, error: { code: 'PROTOCOL_ERROR' } });
    await stillServing(bystander);
  });

  it('closes on a frame that is not a request array, and on a text frame', async () => {
    const { url, bystander } = await broker();
    const notArray = await TestClient.connect(url);
    notArray.sendRaw(encodeMsgpack({ op: 'publish' }));
    expect((await notArray.closed).code).toBe(1002);
    const textFrame = await TestClient.connect(url);
    textFrame.sendRaw('[0, 1, 8]');
    expect((await textFrame.closed).code).toBe(1002);
    await stillServing(bystander);
  });

  it('answers msgpack truncated after the id by id and keeps the connection; before it, closes', async () => {
    const { url, bystander } = await broker();
    const client = await TestClient.connect(url);
    const whole = encodeRequest(1007, 'publish', { queue: 'q', messages: [{ body: bytes('hello world') }] });
    client.sendRaw(whole.slice(0, whole.length - 4));
    const reply = await client.reply(1007);
    expect(reply).toMatchObject({ kind: 'error', error: { code: 'PROTOCOL_ERROR' } });
    await client.ok('listQueues', {});
    client.sendRaw(whole.slice(0, 2));
    expect((await client.closed).code).toBe(1002);
    await stillServing(bystander);
  });

  it('refuses a frame over maxPayload with close 1009 before reading it', async () => {
    const limits = { ...DEFAULT_LIMITS, maxFrameBytes: 64 * 1024, maxMessageBytes: 32 * 1024 };
    const { url, bystander } = await broker({ limits });
    const client = await TestClient.connect(url);
    client.sendRaw(
      encodeRequest(1, 'publish', { queue: 'q', messages: [{ body: new Uint8Array(100_000) }] }),
    );
    expect((await client.closed).code).toBe(1009);
    await stillServing(bystander);
  });

  it('answers an unknown op with UNKNOWN_OP and wrong field types with INVALID_ARGUMENT naming the field', async () => {
    const { url, bystander } = await broker();
    const client = await TestClient.connect(url);
    client.sendRaw(encodeMsgpack([0, 1003, 99, 'x']));
    expect(await client.reply(1003)).toMatchObject({ kind: 'error', error: { code: 'UNKNOWN_OP' } });
    client.sendRaw(encodeMsgpack([0, 1004, 8, 'q', [['not bytes']]]));
    expect(await client.reply(1004)).toMatchObject({
      kind: 'error',
      error: { code: 'INVALID_ARGUMENT', details: { field: 'messages[0].body' } },
    });
    client.sendRaw(encodeMsgpack([0, 1005, 9, 'q', 'ten']));
    expect(await client.reply(1005)).toMatchObject({
      error: { code: 'INVALID_ARGUMENT', details: { field: 'prefetch' } },
    });
    client.sendRaw(encodeMsgpack([0, 1006, 13, ['q', 1]]));
    expect(await client.reply(1006)).toMatchObject({
      error: { code: 'INVALID_ARGUMENT', details: { field: 'items' } },
    });
    const oversizeBody = await client.error('publish', {
      queue: 'q',
      messages: [{ body: new Uint8Array(DEFAULT_LIMITS.maxMessageBytes + 1) }],
    });
    expect(oversizeBody.error).toMatchObject({ code: 'MESSAGE_TOO_LARGE', field: 'messages[0].body' });
    await client.ok('listQueues', {});
    expect(client.garbage).toEqual([]);
    await stillServing(bystander);
  });

  it('survives random bytes on many connections', async () => {
    const { url, bystander } = await broker();
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 0, maxLength: 64 }), async (frame) => {
        const client = await TestClient.connect(url);
        client.sendRaw(frame);
        client.sendRaw(encodeRequest(4242, 'cluster', {}));
        await Promise.race([client.closed, client.reply(4242)]);
        client.close();
      }),
      { numRuns: 60 },
    );
    await stillServing(bystander);
  });
});

describe('limits', () => {
  it('refuses a connection beyond maxSessions with OVERLOADED and close 1013', async () => {
    const { url, bystander } = await broker({ settings: { maxSessions: 2 } });
    const second = await TestClient.connect(url);
    const third = await TestClient.open(url);
    expect((await third.closed).code).toBe(1013);
    expect(third.replies.get(0)).toMatchObject({ kind: 'error', error: { code: 'OVERLOADED' } });
    second.close();
    await second.closed;
    await stillServing(bystander);
  });

  it('answers OVERLOADED past maxPendingRequests and still answers the others', async () => {
    const { url, log } = await broker({ settings: { maxPendingRequests: 2 } });
    const client = await TestClient.connect(url);
    log.holdCommits();
    const ids = [1, 2, 3].map((i) =>
      client.send('publish', { queue: 'q', messages: [{ body: bytes(`m${i}`) }] }),
    );
    expect(await client.reply(ids[2]!)).toMatchObject({ kind: 'error', error: { code: 'OVERLOADED' } });
    log.releaseCommits();
    expect((await client.reply(ids[0]!)).kind).toBe('result');
    expect((await client.reply(ids[1]!)).kind).toBe('result');
  });

  it('answers OVERLOADED past maxSubscriptionsPerSession', async () => {
    const { url } = await broker({ settings: { maxSubscriptionsPerSession: 1 } });
    const client = await TestClient.connect(url);
    await client.ok('subscribe', { queue: 'q', prefetch: 1 });
    expect((await client.error('subscribe', { queue: 'q', prefetch: 1 })).error.code).toBe('OVERLOADED');
  });

  it('stops pushing to a client that does not read, and resumes when it does', async () => {
    const { url, gateway, runtime, bystander } = await broker({
      settings: { sendBufferHighBytes: 256 * 1024 },
    });
    const slow = await TestClient.connect(url);
    const subId = await slow.ok('subscribe', { queue: 'q', prefetch: 10_000 });
    const socket = (slow.ws as unknown as { _socket: Socket })._socket;
    socket.pause();
    const body = new Uint8Array(64 * 1024);
    for (let batch = 0; batch < 6; batch++) {
      await bystander.ok('publish', { queue: 'q', messages: Array.from({ length: 50 }, () => ({ body })) });
    }
    await waitFor(() => gateway.congestedSessions === 1, 'congestion noticed', 10_000);
    await waitFor(() => runtime.pendingCommands === 0, 'deliveries in flight applied');
    const leasedAtCongestion = runtime.state.stats('q')!.inFlight;
    expect(leasedAtCongestion).toBeLessThan(300);
    await bystander.ok('publish', { queue: 'q', messages: [{ body }] });
    await waitFor(() => runtime.pendingCommands === 0, 'publish applied');
    expect(runtime.state.stats('q')!.inFlight).toBe(leasedAtCongestion);
    socket.resume();
    await waitFor(() => slow.delivered(subId).length === 301, 'every message once the client reads', 10_000);
  });
});
