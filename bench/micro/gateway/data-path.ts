/**
 * Benchmark of the gateway and queue runtime alone: one broker process on a LocalLog (no disk, no
 * replication, commit on the next turn) and one protocol client in the same process, over real
 * WebSockets on loopback. It measures what this layer costs per message, the part of the data
 * path that the Raft driver and the WAL do not do:
 *   publish: W messages unconfirmed at most, frames of F messages, 1 KiB bodies;
 *   consume: a push subscription with prefetch P, acking each delivery frame in one ack.
 * Run: `npx tsx bench/micro/gateway/data-path.ts [messages] [window] [frame]`.
 * Client and broker share one core here, so the figures are a floor for the real split.
 */
import { decodeServerFrame, encodeRequest, type Push, type Reply } from '@flotilla/shared';
import WebSocket from 'ws';
import { startBroker } from '../../../packages/node/src/gateway/testing/harness.js';

const total = Number(process.argv[2] ?? 200_000);
const windowMessages = Number(process.argv[3] ?? 1000);
const frameMessages = Number(process.argv[4] ?? 100);
const body = new Uint8Array(1024).fill(7);

async function main(): Promise<void> {
  const broker = await startBroker();
  const ws = new WebSocket(broker.url, { perMessageDeflate: false });
  await new Promise((resolve) => ws.once('open', resolve));
  let nextId = 1;
  const waiting = new Map<number, (reply: Reply) => void>();
  let onPush: (push: Push) => void = () => {};
  ws.on('message', (data) => {
    const frame = decodeServerFrame(new Uint8Array(data as Buffer));
    if (!frame.ok) throw frame.error;
    const value = frame.value;
    if (value.kind === 'result' || value.kind === 'error') {
      waiting.get(value.id)?.(value);
      waiting.delete(value.id);
    } else onPush(value);
  });
  const call = (op: Parameters<typeof encodeRequest>[1], params: never) =>
    new Promise<Reply>((resolve) => {
      const id = nextId++;
      waiting.set(id, resolve);
      ws.send(encodeRequest(id, op, params));
    });
  await call('hello', { version: 1 } as never);
  await call('createQueue', { name: 'bench', options: {} } as never);

  // Publish with at most `windowMessages` unconfirmed, in frames of `frameMessages`.
  const publishStart = process.hrtime.bigint();
  await new Promise<void>((resolve) => {
    let sent = 0;
    let confirmed = 0;
    const pump = () => {
      while (sent < total && sent - confirmed < windowMessages) {
        const n = Math.min(frameMessages, total - sent, windowMessages - (sent - confirmed));
        const messages = Array.from({ length: n }, () => ({ body }));
        sent += n;
        call('publish', { queue: 'bench', messages } as never).then((reply) => {
          if (reply.kind === 'error') throw reply.error;
          confirmed += n;
          if (confirmed === total) resolve();
          else pump();
        });
      }
    };
    pump();
  });
  const publishSeconds = Number(process.hrtime.bigint() - publishStart) / 1e9;

  // Consume with a push subscription, acking each delivery frame as a whole.
  const consumeStart = process.hrtime.bigint();
  await new Promise<void>((resolve) => {
    let acked = 0;
    onPush = (push) => {
      if (push.kind !== 'deliver') return;
      const items = push.messages.map((m) => ({ queue: 'bench', seq: m.seq, deliveryId: m.deliveryId }));
      call('ack', { items } as never).then(() => {
        acked += items.length;
        if (acked === total) resolve();
      });
    };
    call('subscribe', { queue: 'bench', prefetch: windowMessages } as never);
  });
  const consumeSeconds = Number(process.hrtime.bigint() - consumeStart) / 1e9;

  const entries = broker.log.lastIndex;
  process.stdout.write(
    `${JSON.stringify({
      messages: total,
      window: windowMessages,
      frame: frameMessages,
      publishPerSecond: Math.round(total / publishSeconds),
      consumeAckPerSecond: Math.round(total / consumeSeconds),
      logEntries: entries,
    })}\n`,
  );
  ws.close();
  await broker.close();
}

main().catch((error) => {
  process.stderr.write(`${String(error)}\n`);
  process.exit(1);
});
