/**
 * Proves that a request's final error never claims "nothing was applied" after one of its attempts
 * may have been: when an attempt ends with a maybe-applied code (a lost connection) and a retry then
 * fails with a definite one (QUEUE_NOT_FOUND, NOT_LEADER, UNAVAILABLE, LEASE_EXPIRED...), the call
 * rejects with a maybe-applied code, the last attempt's error as `cause` and every attempt in
 * `details.attempts`. Covers publish (within one frame and across a frame's resends), publishBatch,
 * ack, nack, extend and updateQueue; and checks that definite failures stay definite when no
 * attempt was uncertain, and that LEASE_EXPIRED on an ack stays definite (it proves the ack was not
 * applied).
 */

import { describe, expect, it } from 'vitest';
import { FlotillaError } from './index.js';
import type { RecordedRequest, RequestAction } from './testing/fake-server.js';
import { connectTo, startCluster } from './testing/harness.js';
import { settle, waitFor } from './testing/wait.js';

function errorOf(outcome: { ok: true; value: unknown } | { ok: false; error: unknown }): FlotillaError {
  if (outcome.ok) throw new Error(`expected a rejection, got ${JSON.stringify(outcome.value)}`);
  expect(outcome.error).toBeInstanceOf(FlotillaError);
  return outcome.error as FlotillaError;
}

/** The codes listed in `details.attempts`. */
function attemptCodes(error: FlotillaError): string[] {
  const attempts = error.details.attempts;
  expect(Array.isArray(attempts)).toBe(true);
  return (attempts as Array<{ code: string }>).map((attempt) => attempt.code);
}

function causeOf(error: FlotillaError): FlotillaError {
  expect(error.cause).toBeInstanceOf(FlotillaError);
  return error.cause as FlotillaError;
}

/**
 * An interceptor for `op` requests that takes each one's action from `script` in turn (the first
 * request gets script[0]...), and serves them normally once the script runs out.
 */
function scripted(
  op: string,
  script: Array<RequestAction | ((recorded: RecordedRequest) => RequestAction)>,
): (recorded: RecordedRequest) => RequestAction {
  let next = 0;
  return (recorded) => {
    if (recorded.request.op !== op || next >= script.length) return undefined;
    const step = script[next++];
    return typeof step === 'function' ? step(recorded) : step;
  };
}

const refuse = (code: FlotillaError['code'], message = 'refused by the test'): RequestAction => ({
  kind: 'error',
  error: new FlotillaError(code, message),
});

describe('publish after an attempt of unknown outcome', () => {
  it('reports a lost first attempt, not the retry QUEUE_NOT_FOUND', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q');
    cluster.interceptor = scripted('publish', [{ kind: 'drop' }, refuse('QUEUE_NOT_FOUND', 'no queue q')]);
    const error = errorOf(await settle(client.publish('q', 'x')));
    expect(error.code).toBe('CONNECTION_LOST');
    expect(error.maybeApplied).toBe(true);
    expect(causeOf(error).code).toBe('QUEUE_NOT_FOUND');
    expect(attemptCodes(error)).toEqual(['CONNECTION_LOST', 'QUEUE_NOT_FOUND']);
    expect(error.details.sent).toBe(true);
    expect(cluster.requestsOf('publish')).toHaveLength(2);
  });

  it('reports a lost first attempt when the retry meets NOT_LEADER and the new leader refuses', async () => {
    const cluster = await startCluster({ nodeIds: ['n1', 'n2'], leaderId: 'n1' });
    const client = await connectTo(cluster);
    await client.createQueue('q');
    cluster.interceptor = scripted('publish', [
      { kind: 'drop' },
      () => {
        // The retry reaches n1 just after it lost leadership: it answers NOT_LEADER naming n2.
        cluster.setLeader('n2');
        return undefined;
      },
      refuse('QUEUE_NOT_FOUND'),
    ]);
    const error = errorOf(await settle(client.publish('q', 'x')));
    expect(error.code).toBe('CONNECTION_LOST');
    expect(causeOf(error).code).toBe('QUEUE_NOT_FOUND');
    expect(attemptCodes(error)).toEqual(['CONNECTION_LOST', 'NOT_LEADER', 'QUEUE_NOT_FOUND']);
    expect(cluster.requestsOf('publish').map((r) => r.nodeId)).toEqual(['n1', 'n1', 'n2']);
  });

  it('times out with the last UNAVAILABLE as its cause and every attempt listed', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster, { requestTimeoutMs: 300 });
    await client.createQueue('q');
    let publishes = 0;
    cluster.interceptor = ({ request }) => {
      if (request.op !== 'publish') return undefined;
      publishes++;
      return publishes === 1 ? { kind: 'drop' } : refuse('UNAVAILABLE', 'no quorum');
    };
    const error = errorOf(await settle(client.publish('q', 'x')));
    expect(error.code).toBe('TIMEOUT');
    expect(error.maybeApplied).toBe(true);
    expect(causeOf(error).code).toBe('UNAVAILABLE');
    const codes = attemptCodes(error);
    expect(codes[0]).toBe('CONNECTION_LOST');
    expect(codes.slice(1, -1).every((code) => code === 'UNAVAILABLE')).toBe(true);
    expect(codes.length).toBeGreaterThanOrEqual(3);
    expect(codes.at(-1)).toBe('TIMEOUT');
  });

  it('keeps a definite code when no attempt may have been applied', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q');
    cluster.interceptor = scripted('publish', [refuse('UNAVAILABLE'), refuse('QUEUE_NOT_FOUND')]);
    const error = errorOf(await settle(client.publish('q', 'x')));
    expect(error.code).toBe('QUEUE_NOT_FOUND');
    expect(error.maybeApplied).toBe(false);
    expect(error.details.attempts).toBeUndefined();
  });

  it('reports a message refused by index after a lost attempt as of unknown outcome, and stores the rest', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q');
    const badPriority = new FlotillaError('INVALID_ARGUMENT', 'priority above the levels', {
      field: 'messages[1].priority',
    });
    cluster.interceptor = scripted('publish', [{ kind: 'drop' }, { kind: 'error', error: badPriority }]);
    const outcomes = await Promise.all(['a', 'b', 'c'].map((body) => settle(client.publish('q', body))));
    const error = errorOf(outcomes[1]!);
    expect(error.code).toBe('CONNECTION_LOST');
    expect(causeOf(error)).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'priority' });
    expect(attemptCodes(error)).toEqual(['CONNECTION_LOST', 'INVALID_ARGUMENT']);
    expect(outcomes[0]!.ok && outcomes[2]!.ok).toBe(true);
    expect(cluster.requestsOf('publish').map((r) => r.request.params.messages.length)).toEqual([3, 3, 2]);
  });

  it('remembers a lost attempt across the resends of one frame', async () => {
    // The frame is sent once, lost, refused for one message, then the rest is refused as a whole:
    // that last refusal comes from a new transport call that saw no lost attempt itself.
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q');
    const badPriority = new FlotillaError('INVALID_ARGUMENT', 'priority above the levels', {
      field: 'messages[0].priority',
    });
    cluster.interceptor = scripted('publish', [
      { kind: 'drop' },
      { kind: 'error', error: badPriority },
      refuse('QUEUE_NOT_FOUND'),
    ]);
    const outcomes = await Promise.all(['a', 'b'].map((body) => settle(client.publish('q', body))));
    const error = errorOf(outcomes[1]!);
    expect(error.code).toBe('CONNECTION_LOST');
    expect(causeOf(error).code).toBe('QUEUE_NOT_FOUND');
    expect(attemptCodes(error)).toEqual(['CONNECTION_LOST', 'INVALID_ARGUMENT', 'QUEUE_NOT_FOUND']);
    expect(errorOf(outcomes[0]!).code).toBe('CONNECTION_LOST');
  });

  it('gives publishBatch a maybe-applied code when any entry may have been stored', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster, { maxBatchMessages: 1 });
    await client.createQueue('q');
    const badPriority = new FlotillaError('INVALID_ARGUMENT', 'priority above the levels', {
      field: 'messages[0].priority',
    });
    let secondFrameSeen = 0;
    cluster.interceptor = ({ request }) => {
      if (request.op !== 'publish') return undefined;
      const body = new TextDecoder().decode(request.params.messages[0]!.body);
      if (body === 'first') return { kind: 'error', error: badPriority };
      secondFrameSeen++;
      return secondFrameSeen === 1 ? { kind: 'drop' } : refuse('QUEUE_NOT_FOUND');
    };
    const error = errorOf(await settle(client.publishBatch('q', [{ body: 'first' }, { body: 'second' }])));
    expect(error.code).toBe('CONNECTION_LOST');
    expect(error.details.failed).toEqual([0, 1]);
    expect(error.details.idempotencyKeys).toHaveLength(2);
  });
});

describe('settlements after an attempt of unknown outcome', () => {
  it('reports an ack frame refused on retry as of unknown outcome', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q');
    await client.publish('q', 'x');
    const [message] = await client.receive('q');
    cluster.interceptor = scripted('ack', [{ kind: 'drop' }, refuse('QUEUE_NOT_FOUND')]);
    const error = errorOf(await settle(message!.ack()));
    expect(error.code).toBe('CONNECTION_LOST');
    expect(causeOf(error).code).toBe('QUEUE_NOT_FOUND');
    expect(attemptCodes(error)).toEqual(['CONNECTION_LOST', 'QUEUE_NOT_FOUND']);
  });

  it('reports a nack whose retry finds the message delivered again as of unknown outcome', async () => {
    // The first nack is applied but its reply is lost; the message is leased again before the
    // retry arrives, which the state machine answers with LEASE_EXPIRED.
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q');
    await client.publish('q', 'x');
    const [message] = await client.receive('q');
    cluster.interceptor = scripted('nack', [{ kind: 'hold' }]);
    const pending = settle(message!.nack({ delayMs: 0 }));
    await waitFor(() => cluster.heldCount === 1, 'the first nack to be applied and its reply held');
    const otherConsumer = 999_999;
    cluster.broker.receive(otherConsumer, 'q', 1, 0, undefined, () => {});
    cluster.dropConnections();
    const error = errorOf(await pending);
    expect(error.code).toBe('CONNECTION_LOST');
    expect(causeOf(error).code).toBe('LEASE_EXPIRED');
    expect(attemptCodes(error)).toEqual(['CONNECTION_LOST', 'LEASE_EXPIRED']);
    expect(cluster.requestsOf('nack')).toHaveLength(2);
  });

  it('keeps LEASE_EXPIRED on an ack after a lost attempt: an applied ack would have succeeded', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q');
    await client.publish('q', 'x');
    const [message] = await client.receive('q');
    cluster.interceptor = scripted('ack', [{ kind: 'ignore' }]);
    const pending = settle(message!.ack());
    await waitFor(() => cluster.requestsOf('ack').length === 1, 'the first ack (never applied)');
    cluster.broker.expireLeases();
    cluster.broker.receive(999_999, 'q', 1, 0, undefined, () => {});
    cluster.dropConnections();
    const error = errorOf(await pending);
    expect(error.code).toBe('LEASE_EXPIRED');
    expect(error.details.attempts).toBeUndefined();
    expect(cluster.requestsOf('ack')).toHaveLength(2);
  });

  it('reports an extend whose retry finds the lease gone as of unknown outcome', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q');
    await client.publish('q', 'x');
    const [message] = await client.receive('q');
    // Dropping the connection releases its leases: the retry is told LEASE_EXPIRED.
    cluster.interceptor = scripted('extend', [{ kind: 'drop' }]);
    const error = errorOf(await settle(message!.extend(60_000)));
    expect(error.code).toBe('CONNECTION_LOST');
    expect(causeOf(error).code).toBe('LEASE_EXPIRED');
    expect(attemptCodes(error)).toEqual(['CONNECTION_LOST', 'LEASE_EXPIRED']);
  });
});

describe('other idempotent requests after an attempt of unknown outcome', () => {
  it('reports updateQueue refused on retry as of unknown outcome', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q');
    cluster.interceptor = scripted('updateQueue', [{ kind: 'drop' }, refuse('QUEUE_NOT_FOUND')]);
    const error = errorOf(await settle(client.updateQueue('q', { maxDeliveries: 3 })));
    expect(error.code).toBe('CONNECTION_LOST');
    expect(causeOf(error).code).toBe('QUEUE_NOT_FOUND');
    expect(attemptCodes(error)).toEqual(['CONNECTION_LOST', 'QUEUE_NOT_FOUND']);
  });

  it('reports the client closing with UNAUTHORIZED after a lost attempt as of unknown outcome', async () => {
    const cluster = await startCluster({ tokens: ['s3cret'] });
    const client = await connectTo(cluster, { token: 's3cret' });
    await client.createQueue('q');
    cluster.interceptor = scripted('queueStats', [{ kind: 'ignore' }]);
    const pending = settle(client.queueStats('q'));
    await waitFor(() => cluster.requestsOf('queueStats').length === 1, 'the first attempt');
    cluster.tokens = ['rotated'];
    cluster.dropConnections();
    const error = errorOf(await pending);
    expect(error.code).toBe('CONNECTION_LOST');
    expect(causeOf(error).code).toBe('UNAUTHORIZED');
    expect(attemptCodes(error)).toEqual(['CONNECTION_LOST', 'UNAUTHORIZED']);
    expect((await client.closed())?.code).toBe('UNAUTHORIZED');
  });
});
