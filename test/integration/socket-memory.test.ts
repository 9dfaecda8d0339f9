import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { startHerald } from '../helpers/herald';
import { RawClient, roundTrip } from '../helpers/clients';
import { collectUntilGone } from '../helpers/garbage';

// Memory per idle connection is a headline figure (bench/ idle-memory). @fastify/websocket keeps each
// upgrade's IncomingMessage alive for the socket's lifetime (through the socket's ServerResponse and a
// per-socket error listener holding the fastify request and reply) unless websocket-plugin.ts lets go:
// about 3 KB per connection.
test('an open socket keeps nothing of its upgrade request alive', async (t) => {
  const h = await startHerald();
  t.after(() => h.stop());
  const requests: WeakRef<IncomingMessage>[] = [];
  h.server.http.server.prependListener('upgrade', (req: IncomingMessage) => requests.push(new WeakRef(req)));

  const clients = await Promise.all([RawClient.connect(h), RawClient.connect(h)]);
  t.after(() => clients.forEach((c) => c.close()));
  for (const c of clients) {
    c.send({ event: 'pusher:subscribe', data: { channel: 'kept' } });
    await c.next('pusher_internal:subscription_succeeded');
    await roundTrip(c);
  }
  assert.equal(requests.length, 2);
  await collectUntilGone(requests, 3);
  assert.deepEqual(
    requests.map((r) => r.deref() === undefined),
    [true, true],
    'the upgrade requests were collected while their sockets stay open',
  );
  assert.equal(h.server.gateway.registry.size, 2, 'both sockets are still connected');
});
