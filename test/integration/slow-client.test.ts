/**
 * A client that stops reading must not grow the server's memory without bound: once more than
 * `maxSendBufferBytes` wait to be sent to it, it is dropped (recorded as 4100), and every other subscriber
 * of the same channel still gets every event.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { RawClient, serverSdk } from '../helpers/clients';
import { startHerald } from '../helpers/herald';

const LIMIT = 256 * 1024;
const CHANNEL = 'firehose';

void test('a client that stops reading is dropped past maxSendBufferBytes; the others get everything', { timeout: 60_000 }, async (t) => {
  const h = await startHerald({ options: { maxSendBufferBytes: LIMIT } });
  const closes: number[] = [];
  h.server.gateway.observe({ connectionClosed: (_conn, code) => closes.push(code) });
  const sdk = serverSdk(h);
  const slow = await RawClient.connect(h);
  const healthy = await RawClient.connect(h);
  t.after(async () => {
    slow.close();
    healthy.close();
    await h.stop();
  });
  for (const c of [slow, healthy]) {
    c.send({ event: 'pusher:subscribe', data: { channel: CHANNEL } });
    await c.next('pusher_internal:subscription_succeeded', 5000, CHANNEL);
  }
  let received = 0;
  healthy.ws.on('message', (d: Buffer) => {
    if (d.includes('"event":"bulk"')) received++;
  });
  // The slow client stops reading: first the kernel's buffers fill (several MB on loopback), then Herald's.
  (slow.ws as unknown as { _socket: Socket })._socket.pause();
  const slowId = slow.socketId;
  const stillThere = () => h.server.gateway.registry.all().some((c) => c.socketId === slowId);

  const data = 'x'.repeat(9000);
  let sent = 0;
  for (let round = 0; round < 600 && stillThere(); round++) {
    const batch = Array.from({ length: 10 }, () => ({ channel: CHANNEL, name: 'bulk', data }));
    const r = await sdk.triggerBatch(batch);
    assert.equal(r.status, 200);
    sent += batch.length;
  }
  assert.equal(stillThere(), false, `the slow client was dropped (after ${sent} events)`);
  assert.ok(closes.includes(4100), `teardown recorded 4100 (got ${closes.join(',')})`);

  // The healthy subscriber is untouched and gets every event; the server still answers.
  const deadline = Date.now() + 20_000;
  while (received < sent && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(received, sent);
  assert.equal(healthy.ws.readyState, healthy.ws.OPEN);
  const after = await sdk.trigger(CHANNEL, 'bulk', { after: true });
  assert.equal(after.status, 200);
});
