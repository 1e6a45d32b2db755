/**
 * Hostile input against a real 3-node cluster running with `--auth-tokens` (issue 4): garbage
 * bytes, truncated msgpack, a text frame, an oversize frame, an oversize body, an unknown op, wrong
 * field types, a request before hello, a second hello, random bytes, unauthenticated and forbidden
 * requests (WebSocket and HTTP), bad HTTP API input (path encoding, JSON, an oversize body), and
 * peers connecting to `/cluster` with the wrong secret or with garbage. Each gets the error code or
 * close code docs/protocol.md names, and after every case a well-behaved SDK client is still served
 * end to end by the node under attack (the leader), which neither restarts nor loses its
 * leadership.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type FlotillaClient } from '@flotilla/client';
import { DEFAULT_LIMITS, encodeMsgpack, encodeRequest } from '@flotilla/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import {
  decodePeerFrame,
  dialerProof,
  encodeAuth,
  newNonce,
  CloseCode as PeerCloseCode,
} from '../../packages/node/src/cluster/transport/index.js';
import { bytes, TestClient } from '../../packages/node/src/gateway/testing/harness.js';
import { type ClusterNode, TestCluster } from '../support/cluster.js';
import { waitFor } from '../support/wait.js';

const ADMIN_TOKEN = `admin-${randomBytes(8).toString('hex')}`;
const PUBLISHER_TOKEN = `publisher-${randomBytes(8).toString('hex')}`;
const TOKENS = {
  tokens: [
    {
      name: 'admin',
      token: ADMIN_TOKEN,
      permissions: [{ queues: '*', actions: ['publish', 'consume', 'manage'] }],
    },
    { name: 'publisher', token: PUBLISHER_TOKEN, permissions: [{ queues: 'jobs*', actions: ['publish'] }] },
  ],
};

describe('hostile input against a real cluster with authentication', () => {
  let cluster: TestCluster;
  let bystander: FlotillaClient;
  let target: ClusterNode;
  let termBefore: number;

  /** The attacked node's cluster view, read with the admin token (the API needs one). */
  async function statusOf(
    node: ClusterNode,
  ): Promise<{ role: string; term: number; leaderId: string | null }> {
    const res = await fetch(`${node.httpUrl}/api/cluster`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    if (!res.ok) throw new Error(`/api/cluster on ${node.id}: HTTP ${res.status}`);
    return (await res.json()) as { role: string; term: number; leaderId: string | null };
  }

  /** The well-behaved client is still served by the attacked leader: publish, receive, ack. */
  async function stillServing(): Promise<void> {
    const body = `alive-${randomBytes(4).toString('hex')}`;
    await bystander.publish('jobs', body);
    const [message] = await bystander.receive<string>('jobs', { max: 1, waitMs: 5_000 });
    expect(message?.body).toBe(body);
    await message!.ack();
    expect(bystander.nodeId).toBe(target.id);
    expect(target.process).not.toBeNull();
    expect(await statusOf(target)).toMatchObject({ role: 'leader', term: termBefore });
  }

  /** A raw protocol client on the attacked node, welcomed with the admin token. */
  function welcomed(): Promise<TestClient> {
    return TestClient.connect(target.url, ADMIN_TOKEN);
  }

  beforeAll(async () => {
    const root = mkdtempSync(join(tmpdir(), 'flotilla-hostile-'));
    const tokensFile = join(root, 'tokens.json');
    writeFileSync(tokensFile, JSON.stringify(TOKENS));
    cluster = await TestCluster.start({ size: 3, root, args: ['--auth-tokens', tokensFile] });
  });

  afterAll(async () => {
    await bystander?.close({ drain: false });
    await cluster?.stop();
  });

  it('starts with a leader and serves a client that has a token', async () => {
    bystander = await connect({ servers: cluster.urls(), token: ADMIN_TOKEN, name: 'bystander' });
    await bystander.createQueue('jobs');
    const leaderId = (await bystander.cluster()).leaderId;
    target = cluster.node(leaderId!);
    termBefore = (await statusOf(target)).term;
    await stillServing();
  });

  it('answers garbage bytes with PROTOCOL_ERROR (id 0) and closes 1002; a text frame closes 1002', async () => {
    const garbage = await welcomed();
    garbage.sendRaw(new Uint8Array([0xc1, 0xff, 0x00, 0x13]));
    expect((await garbage.closed).code).toBe(1002);
    expect(garbage.replies.get(0)).toMatchObject({ kind: 'error', id: 0, error: { code: 'PROTOCOL_ERROR' } });

    const text = await welcomed();
    text.sendRaw('[0, 1, 8, "jobs"]');
    expect((await text.closed).code).toBe(1002);
    await stillServing();
  });

  it('answers msgpack cut after the id by id and stays open; cut before the id, closes 1002', async () => {
    const client = await welcomed();
    const whole = encodeRequest(77, 'publish', {
      queue: 'jobs',
      messages: [{ body: bytes('truncated body') }],
    });
    client.sendRaw(whole.slice(0, whole.length - 5));
    expect(await client.reply(77)).toMatchObject({ kind: 'error', error: { code: 'PROTOCOL_ERROR' } });
    expect((await client.ok('queueStats', { name: 'jobs' })).publishedCount).toBeGreaterThan(0);
    client.sendRaw(whole.slice(0, 2));
    expect((await client.closed).code).toBe(1002);
    expect(client.garbage).toEqual([]);
    await stillServing();
  });

  it('closes 1009 on a frame over maxFrameBytes, and refuses a body over maxMessageBytes', async () => {
    const oversize = await welcomed();
    const huge = new Uint8Array(DEFAULT_LIMITS.maxFrameBytes + 1024);
    oversize.sendRaw(encodeRequest(5, 'publish', { queue: 'jobs', messages: [{ body: huge }] }));
    expect((await oversize.closed).code).toBe(1009);

    const client = await welcomed();
    const reply = await client.error('publish', {
      queue: 'jobs',
      messages: [{ body: new Uint8Array(DEFAULT_LIMITS.maxMessageBytes + 1) }],
    });
    expect(reply.error).toMatchObject({ code: 'MESSAGE_TOO_LARGE', field: 'messages[0].body' });
    client.close();
    await stillServing();
  });

  it('answers an unknown op with UNKNOWN_OP and wrong field types with INVALID_ARGUMENT naming the field', async () => {
    const client = await welcomed();
    client.sendRaw(encodeMsgpack([0, 11, 250, 'x']));
    expect(await client.reply(11)).toMatchObject({ kind: 'error', error: { code: 'UNKNOWN_OP' } });
    const cases: [unknown[], string][] = [
      [[0, 12, 8, 42, [[bytes('x')]]], 'queue'],
      [[0, 13, 8, 'jobs', [['not bytes']]], 'messages[0].body'],
      [[0, 14, 8, 'jobs', [[bytes('x'), 0, null, null, -5]]], 'messages[0].delayMs'],
      [[0, 15, 9, 'jobs', 'ten'], 'prefetch'],
      [[0, 16, 13, ['jobs', 1]], 'items'],
      [[0, 17, 2, 'bad name!', {}], 'name'],
      [[0, 18, 2, 'fine', { visibilityTimeoutMs: 'soon' }], 'options.visibilityTimeoutMs'],
      [[0, 19, 12, 'jobs', 1], 'arguments'],
    ];
    for (const [frame, field] of cases) {
      client.sendRaw(encodeMsgpack(frame));
      const reply = await client.reply(frame[1] as number);
      expect(reply, `frame ${JSON.stringify(frame)}`).toMatchObject({
        kind: 'error',
        error: { code: 'INVALID_ARGUMENT', details: { field } },
      });
    }
    // Nothing was created or stored by the refused requests, and the connection still works.
    const names = (await client.ok('listQueues', {})).map((q) => q.name);
    expect(names).toEqual(['jobs']);
    expect(client.garbage).toEqual([]);
    client.close();
    await stillServing();
  });

  it('answers requests before hello with PROTOCOL_ERROR, and a second hello too', async () => {
    const early = await TestClient.open(target.url);
    const before = await early.request('publish', { queue: 'jobs', messages: [{ body: bytes('sneaky') }] });
    expect(before).toMatchObject({ kind: 'error', error: { code: 'PROTOCOL_ERROR' } });
    await early.ok('hello', { version: 1, token: ADMIN_TOKEN, name: 'late' });
    const again = await early.request('hello', { version: 1, token: ADMIN_TOKEN, name: 'again' });
    expect(again).toMatchObject({ kind: 'error', error: { code: 'PROTOCOL_ERROR' } });
    const peek = await early.ok('peek', { queue: 'jobs', max: 100 });
    expect(peek.map((m) => new TextDecoder().decode(m.body))).not.toContain('sneaky');
    early.close();
    await stillServing();
  });

  it('survives random bytes on fresh and welcomed connections', async () => {
    for (let i = 0; i < 40; i++) {
      const client = i % 2 === 0 ? await TestClient.open(target.url) : await welcomed();
      client.sendRaw(randomBytes(1 + ((i * 7) % 64)));
      client.sendRaw(encodeRequest(4242, 'cluster', {}));
      await Promise.race([client.closed, client.reply(4242)]);
      client.close();
    }
    await stillServing();
  });

  it('refuses a missing or unknown token with UNAUTHORIZED and close 1008, over WebSocket and HTTP', async () => {
    for (const token of [null, 'not-a-known-token']) {
      const client = await TestClient.open(target.url);
      const reply = await client.request('hello', { version: 1, token, name: 'intruder' });
      expect(reply).toMatchObject({ kind: 'error', error: { code: 'UNAUTHORIZED' } });
      expect((await client.closed).code).toBe(1008);
    }
    await expect(connect({ servers: [target.url], token: 'not-a-known-token' })).rejects.toMatchObject({
      code: 'UNAUTHORIZED',
    });
    const noToken: Record<string, string> = {};
    for (const headers of [noToken, { authorization: 'Bearer not-a-known-token' }]) {
      const res = await fetch(`${target.httpUrl}/api/queues`, { headers });
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ code: 'UNAUTHORIZED' });
    }
    await stillServing();
  });

  it('answers FORBIDDEN to a token without the permission, and lets it do what it may', async () => {
    const client = await TestClient.connect(target.url, PUBLISHER_TOKEN);
    const { seqs } = await client.ok('publish', { queue: 'jobs', messages: [{ body: bytes('allowed') }] });
    expect(seqs).toHaveLength(1);
    const denied = [
      client.error('publish', { queue: 'other', messages: [{ body: bytes('no') }] }),
      client.error('createQueue', { name: 'jobs-new', options: {} }),
      client.error('receive', { queue: 'jobs', max: 1, waitMs: 0 }),
      client.error('subscribe', { queue: 'jobs', prefetch: 1 }),
      client.error('purgeQueue', { name: 'jobs' }),
      client.error('deleteQueue', { name: 'jobs' }),
    ];
    for (const reply of await Promise.all(denied)) expect(reply.error.code).toBe('FORBIDDEN');
    const purge = await fetch(`${target.httpUrl}/api/queues/jobs/purge`, {
      method: 'POST',
      headers: { authorization: `Bearer ${PUBLISHER_TOKEN}` },
    });
    expect(purge.status).toBe(403);
    client.close();
    // The denied requests changed nothing: the allowed message is still there, then consumed.
    const [message] = await bystander.receive('jobs', { max: 1, waitMs: 5_000 });
    expect(new TextDecoder().decode(message?.bytes)).toBe('allowed');
    await message!.ack();
    expect((await bystander.listQueues()).map((q) => q.name)).toEqual(['jobs']);
    await stillServing();
  });

  it('answers bad HTTP API input with INVALID_ARGUMENT: bad path encoding, bad JSON, an oversize body', async () => {
    const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
    const badPath = await fetch(`${target.httpUrl}/api/queues/%ZZ`, { headers: auth });
    expect(badPath.status).toBe(400);
    expect(await badPath.json()).toMatchObject({ code: 'INVALID_ARGUMENT' });
    const badJson = await fetch(`${target.httpUrl}/api/queues/jobs/redrive`, {
      method: 'POST',
      headers: auth,
      body: '{"max":',
    });
    expect(badJson.status).toBe(400);
    const oversize = await httpPost(
      `${target.httpUrl}/api/queues/jobs/redrive`,
      auth,
      'x'.repeat(1024 * 1024),
    );
    expect(oversize.status).toBe(400);
    expect(JSON.parse(oversize.body)).toMatchObject({ code: 'INVALID_ARGUMENT' });
    await stillServing();
  });

  it('closes a peer link whose AUTH is made with the wrong secret (4001), or is garbage (4002)', async () => {
    const wrongSecret = await peerHandshake(target, (serverNonce, serverId) =>
      encodeAuth(
        'n9',
        '127.0.0.1:1',
        newNonce(),
        dialerProof('wrong-secret', serverNonce, 'n9', serverId, '127.0.0.1:1'),
      ),
    );
    expect(wrongSecret.code).toBe(PeerCloseCode.AuthenticationFailed);
    expect(wrongSecret.framesAfterAuth).toBe(0);

    // A member's id with a made-up proof is refused the same way.
    const impostor = cluster.nodes.find((n) => n.id !== target.id)!;
    const spoofed = await peerHandshake(target, (serverNonce, serverId) =>
      encodeAuth(
        impostor.id,
        `127.0.0.1:${impostor.port}`,
        newNonce(),
        dialerProof(
          `${cluster.secret}-not`,
          serverNonce,
          impostor.id,
          serverId,
          `127.0.0.1:${impostor.port}`,
        ),
      ),
    );
    expect(spoofed.code).toBe(PeerCloseCode.AuthenticationFailed);

    const garbage = await peerHandshake(target, () => new Uint8Array([0xc1, 0x00, 0xff]));
    expect(garbage.code).toBe(PeerCloseCode.ProtocolError);
    await stillServing();
    // The real peers were not disturbed: every node still names the same leader in the same term.
    for (const node of cluster.nodes) {
      expect(await statusOf(node)).toMatchObject({ leaderId: target.id, term: termBefore });
    }
  });

  it('left every node running, without a fatal log line', async () => {
    for (const node of cluster.nodes) {
      expect(node.process, `${node.id} is running`).not.toBeNull();
      const fatal = readFileSync(node.logFile, 'utf8')
        .split('\n')
        .filter((line) => line.includes('"level":60'));
      expect(fatal, `${node.id} log`).toEqual([]);
    }
  });
});

/**
 * Dials `/cluster` like a peer: waits for the node's HELLO, answers with `auth(nonce, serverId)`,
 * and resolves with the close code and how many frames came after the answer.
 */
async function peerHandshake(
  node: ClusterNode,
  auth: (serverNonce: Uint8Array, serverId: string) => Uint8Array,
): Promise<{ code: number; framesAfterAuth: number }> {
  const ws = new WebSocket(`ws://127.0.0.1:${node.port}/cluster`, { perMessageDeflate: false });
  let framesAfterAuth = 0;
  let answered = false;
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  ws.on('error', () => {});
  ws.on('message', (data) => {
    if (answered) {
      framesAfterAuth++;
      return;
    }
    const hello = decodePeerFrame(new Uint8Array(data as Buffer));
    if (hello.kind !== 'hello') throw new Error(`expected HELLO from ${node.id}, got ${hello.kind}`);
    answered = true;
    ws.send(auth(hello.nonce, hello.nodeId));
  });
  const code = await waitFor(() => closed, { timeoutMs: 10_000, what: `${node.id} to close the peer link` });
  return { code, framesAfterAuth };
}

/** POSTs `body` and resolves with the answer, even if the node answers before reading it all and closes. */
function httpPost(
  url: string,
  headers: Record<string, string>,
  body: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = request(url, { method: 'POST', headers }, (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    req.end(body);
  });
}
