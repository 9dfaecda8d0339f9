import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startHerald } from '../helpers/herald';
import { RawClient, roundTrip, serverSdk } from '../helpers/clients';

test('malformed frames get pusher:error 4200; the socket and its neighbours carry on', async (t) => {
  const h = await startHerald();
  t.after(() => h.stop());
  const bad = await RawClient.connect(h);
  t.after(() => bad.close());
  const good = await RawClient.connect(h);
  t.after(() => good.close());
  for (const c of [bad, good]) {
    c.send({ event: 'pusher:subscribe', data: { channel: 'shared' } });
    await c.next('pusher_internal:subscription_succeeded');
  }
  const frames = ['{', 'null', '[1,2]', '"str"', '{"data":{}}', '{"event":42}', '{"event":"x","channel":{}}', '{"event":"pusher:whatever"}', '{"event":"no-prefix"}', '\u0000\u0001'];
  for (const f of frames) {
    bad.send(f);
    const err = (await bad.next('pusher:error')).data as { code: number; message: string };
    assert.equal(err.code, 4200, f);
    assert.ok(err.message.length > 0);
  }
  bad.ws.send(Buffer.from([1, 2, 3]), { binary: true });
  assert.match(((await bad.next('pusher:error')).data as { message: string }).message, /Binary frames/);
  // Odd but harmless: subscribe without data, unsubscribe from nothing.
  bad.send({ event: 'pusher:subscribe' });
  await bad.next('pusher:subscription_error');
  bad.send({ event: 'pusher:unsubscribe', data: { channel: 'never-joined' } });
  bad.send({ event: 'pusher:unsubscribe', data: 'garbage' });
  await roundTrip(bad);
  await serverSdk(h).trigger('shared', 'still-here', { ok: true });
  assert.deepEqual((await bad.next('still-here')).data, { ok: true });
  assert.deepEqual((await good.next('still-here')).data, { ok: true });
  assert.equal(good.pending().length, 0, 'the neighbour saw none of it');
});

test('an oversized frame closes only that socket, with 1009', async (t) => {
  const h = await startHerald({ options: { maxMessageBytes: 2048 } });
  t.after(() => h.stop());
  const big = await RawClient.connect(h);
  const other = await RawClient.connect(h);
  t.after(() => other.close());
  big.send({ event: 'client-x', channel: 'private-y', data: 'z'.repeat(4096) });
  assert.equal((await big.closed).code, 1009);
  await roundTrip(other);
});

test('a socket that vanishes mid-subscribe leaves no state behind', async (t) => {
  const h = await startHerald({ apps: [{ maxConnections: 50 }] });
  t.after(() => h.stop());
  const sdk = serverSdk(h);
  const doomed: RawClient[] = [];
  for (let i = 0; i < 20; i++) {
    const c = await RawClient.connect(h);
    c.send({ event: 'pusher:subscribe', data: { channel: `churn-${i % 3}` } });
    doomed.push(c);
  }
  for (const c of doomed) c.ws.terminate();
  await Promise.all(doomed.map((c) => c.closed));
  // Teardown runs after each socket's queued work; poll the REST view until it settles.
  for (let i = 0; ; i++) {
    const channels = (await (await sdk.get({ path: '/channels' })).json()) as { channels: Record<string, unknown> };
    if (Object.keys(channels.channels).length === 0) break;
    assert.ok(i < 200, `channels still occupied: ${JSON.stringify(channels)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.equal(await h.server.gateway.state.connectionCount(h.app.id), 0);
  assert.equal(h.server.gateway.registry.size, 0);
});
