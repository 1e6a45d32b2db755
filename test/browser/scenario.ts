/**
 * What the browser page does, through the SDK's public API only: connect, create a queue, publish
 * bytes, a string and a value, consume them with the async iterator, and check a typed error.
 * Bundled by the browser test with `@flotilla/client` left external: the page's import map points
 * it at the SDK bundle under test.
 */

import { connect, FlotillaError } from '@flotilla/client';

/** The outcome the test compares. */
export interface ScenarioResult {
  seqs: number[];
  bodies: unknown[];
  nodeId: string | null;
  typedError: string;
  status: string;
}

export async function run(servers: string[]): Promise<ScenarioResult> {
  const client = await connect({ servers, name: 'browser-test' });
  await client.createQueue('browser');
  const receipts = await Promise.all([
    client.publish('browser', new Uint8Array([1, 2, 3])),
    client.publish('browser', 'hello from the page'),
    client.publish('browser', { n: 1, list: ['a'] }, { headers: { via: 'chromium' } }),
  ]);
  const bodies: unknown[] = [];
  for await (const message of client.messages('browser', { prefetch: 2 })) {
    bodies.push(message.body instanceof Uint8Array ? Array.from(message.body) : message.body);
    await message.ack();
    if (bodies.length === 3) break;
  }
  let typedError = '';
  try {
    await client.queueStats('missing');
  } catch (error) {
    typedError = `${error instanceof FlotillaError}:${(error as FlotillaError).code}`;
  }
  const nodeId = client.nodeId;
  await client.close();
  return { seqs: receipts.map((r) => r.seq), bodies, nodeId, typedError, status: client.status };
}
