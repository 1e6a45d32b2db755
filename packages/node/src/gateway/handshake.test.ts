/**
 * Proves the connection lifecycle over real WebSockets on loopback: hello is answered with a
 * welcome naming the node, the leader and the limits; requests before hello and a second hello
 * are PROTOCOL_ERRORs; an unsupported version is refused and the connection closed; with tokens
 * configured, a missing or unknown token gets UNAUTHORIZED and a 1008 close, and a token without
 * the permission gets FORBIDDEN for that request only.
 */
import { DEFAULT_LIMITS, encodeRequest, welcomeLimits } from '@flotilla/shared';
import { afterEach, describe, expect, it } from 'vitest';
import { TokenAuthenticator } from '../auth/tokens.js';
import { LocalLog } from '../broker/testing/local-log.js';
import { bytes, startBroker, type TestBroker, TestClient } from './testing/harness.js';

const brokers: TestBroker[] = [];
afterEach(async () => {
  for (const broker of brokers.splice(0)) await broker.close();
});

async function broker(options: Parameters<typeof startBroker>[0] = {}) {
  const b = await startBroker(options);
  brokers.push(b);
  return b;
}

const auth = TokenAuthenticator.fromJson({
  tokens: [
    {
      name: 'publisher',
      token: 'publisher-token',
      permissions: [{ queues: 'orders*', actions: ['publish'] }],
    },
    {
      name: 'admin',
      token: 'admin-token-1',
      permissions: [{ queues: '*', actions: ['publish', 'consume', 'manage'] }],
    },
  ],
});

describe('hello', () => {
  it('welcomes with the node id, the leader and the limits', async () => {
    const { url } = await broker({ log: new LocalLog({ nodeId: 'n7', address: 'n7.example:7400' }) });
    const client = await TestClient.open(url);
    const welcome = await client.ok('hello', { version: 1, token: null, name: 'tester' });
    expect(welcome).toEqual({
      protocolVersion: 1,
      nodeId: 'n7',
      leaderId: 'n7',
      leaderUrl: 'ws://n7.example:7400/client',
      serverVersion: '0.1.0',
      limits: welcomeLimits(DEFAULT_LIMITS),
    });
    client.close();
  });

  it('names no leader during an election', async () => {
    const { url } = await broker({ log: new LocalLog({ leaderTerm: null }) });
    const client = await TestClient.open(url);
    expect(await client.ok('hello', { version: 1 })).toMatchObject({ leaderId: null, leaderUrl: null });
    client.close();
  });

  it('answers requests before hello with PROTOCOL_ERROR and does nothing', async () => {
    const { url, runtime } = await broker();
    const client = await TestClient.open(url);
    const refused = await client.error('createQueue', { name: 'q', options: {} });
    expect(refused.error.code).toBe('PROTOCOL_ERROR');
    await client.ok('hello', { version: 1 });
    expect(runtime.state.queueNames()).toEqual([]);
    expect((await client.error('hello', { version: 1 })).error.code).toBe('PROTOCOL_ERROR');
    client.close();
  });

  it('refuses an unsupported protocol version with its range and closes', async () => {
    const { url } = await broker();
    const client = await TestClient.open(url);
    const refused = await client.error('hello', { version: 2 });
    expect(refused.error.code).toBe('UNSUPPORTED_VERSION');
    expect(refused.error.details).toMatchObject({ minVersion: 1, maxVersion: 1 });
    expect((await client.closed).code).toBe(1002);
  });

  it('closes a connection that never says hello', async () => {
    const { url } = await broker({ settings: { helloTimeoutMs: 50 } });
    const client = await TestClient.open(url);
    expect((await client.closed).code).toBe(1008);
  });
});

describe('authentication', () => {
  it('refuses a missing token with UNAUTHORIZED and closes with 1008', async () => {
    const { url } = await broker({ authenticator: auth });
    const client = await TestClient.open(url);
    const refused = await client.error('hello', { version: 1 });
    expect(refused.error.code).toBe('UNAUTHORIZED');
    expect((await client.closed).code).toBe(1008);
  });

  it('refuses an unknown token the same way', async () => {
    const { url } = await broker({ authenticator: auth });
    const client = await TestClient.open(url);
    expect((await client.error('hello', { version: 1, token: 'wrong-token' })).error.code).toBe(
      'UNAUTHORIZED',
    );
    expect((await client.closed).code).toBe(1008);
  });

  it('answers FORBIDDEN per op and queue, and serves what the token allows', async () => {
    const { url } = await broker({ authenticator: auth });
    const admin = await TestClient.connect(url, 'admin-token-1');
    await admin.ok('createQueue', { name: 'orders', options: {} });
    await admin.ok('createQueue', { name: 'audit', options: {} });
    const publisher = await TestClient.connect(url, 'publisher-token');
    expect(
      (await publisher.ok('publish', { queue: 'orders', messages: [{ body: bytes('x') }] })).seqs,
    ).toEqual([1]);
    const forbidden = [
      await publisher.error('publish', { queue: 'audit', messages: [{ body: bytes('x') }] }),
      await publisher.error('subscribe', { queue: 'orders', prefetch: 1 }),
      await publisher.error('receive', { queue: 'orders', max: 1, waitMs: 0 }),
      await publisher.error('deleteQueue', { name: 'orders' }),
      await publisher.error('purgeQueue', { name: 'orders' }),
      await publisher.error('peek', { queue: 'orders', max: 1 }),
      await publisher.error('queueStats', { name: 'audit' }),
    ];
    expect(forbidden.map((r) => r.error.code)).toEqual(Array(forbidden.length).fill('FORBIDDEN'));
    // Items of an ack it may not settle fail per item; the connection stays usable.
    const outcome = await publisher.ok('ack', { items: [{ queue: 'orders', seq: 1, deliveryId: 1 }] });
    expect(outcome).toEqual({ failed: [{ index: 0, code: 'FORBIDDEN' }] });
    expect((await publisher.ok('listQueues', {})).map((s) => s.name)).toEqual(['orders']);
    expect((await publisher.ok('queueStats', { name: 'orders' })).depth).toBe(1);
    publisher.close();
    admin.close();
  });

  it('keeps the connection of a token holder open after a refusal', async () => {
    const { url } = await broker({ authenticator: auth });
    const publisher = await TestClient.connect(url, 'publisher-token');
    const id = 99;
    publisher.sendRaw(encodeRequest(id, 'createQueue', { name: 'orders', options: {} }));
    const reply = await publisher.reply(id);
    expect(reply.kind === 'error' && reply.error.code).toBe('FORBIDDEN');
    expect(publisher.ws.readyState).toBe(publisher.ws.OPEN);
    publisher.close();
  });
});
