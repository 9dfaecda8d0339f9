import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startHerald, type TestHerald } from '../helpers/herald';
import { RawClient, authFor, nextEvent, pusherJs, roundTrip } from '../helpers/clients';

async function joined(h: TestHerald, channel: string, userId?: string): Promise<RawClient> {
  const c = await RawClient.connect(h);
  if (channel.startsWith('presence-')) {
    const channelData = JSON.stringify({ user_id: userId ?? c.socketId });
    c.send({ event: 'pusher:subscribe', data: { channel, auth: authFor(h.app, c.socketId, channel, channelData), channel_data: channelData } });
  } else {
    c.send({ event: 'pusher:subscribe', data: { channel, auth: channel.startsWith('private-') ? authFor(h.app, c.socketId, channel) : undefined } });
  }
  await c.next('pusher_internal:subscription_succeeded', 5000, channel);
  return c;
}

const errorOf = async (c: RawClient) => (await c.next('pusher:error')).data as { code: number | null; message: string };

test('pusher-js client events reach the other members, never the sender', async (t) => {
  const h = await startHerald({ apps: [{ clientEvents: true }] });
  t.after(() => h.stop());
  const a = pusherJs(h);
  const b = pusherJs(h);
  const chA = a.subscribe('private-chat');
  const chB = b.subscribe('private-chat');
  await Promise.all([nextEvent(chA, 'pusher:subscription_succeeded'), nextEvent(chB, 'pusher:subscription_succeeded')]);
  let echoed = false;
  chA.bind('client-typing', () => (echoed = true));
  const got = nextEvent<{ who: string }>(chB, 'client-typing');
  assert.equal(chA.trigger('client-typing', { who: 'a' }), true);
  assert.deepEqual(await got, { who: 'a' });
  // A round trip from the sender after the event: had an echo been sent, it would have arrived first.
  const again = nextEvent(chB, 'client-typing');
  chA.trigger('client-typing', { who: 'a2' });
  await again;
  assert.equal(echoed, false);
});

test('on presence channels the sender user_id is added by the server', async (t) => {
  const h = await startHerald({ apps: [{ clientEvents: true }] });
  t.after(() => h.stop());
  const a = await joined(h, 'presence-game', 'player-1');
  t.after(() => a.close());
  const b = await joined(h, 'presence-game', 'player-2');
  t.after(() => b.close());
  // A client cannot spoof user_id: the server's value is the one that arrives.
  a.send({ event: 'client-move', channel: 'presence-game', data: { x: 1 }, user_id: 'player-2' });
  const m = await b.next('client-move');
  assert.equal(m.user_id, 'player-1');
  assert.deepEqual(m.data, { x: 1 });
  // String data is passed through as the same string.
  a.send({ event: 'client-say', channel: 'presence-game', data: 'hi' });
  assert.equal((await b.next('client-say')).data, 'hi');
});

test('client events are refused with pusher:error without closing the socket', async (t) => {
  const h = await startHerald({ apps: [{ clientEvents: true, maxEventBytes: 100 }, { clientEvents: false }] });
  t.after(() => h.stop());
  const c = await joined(h, 'private-x');
  t.after(() => c.close());
  const pub = await joined(h, 'public-x');
  t.after(() => pub.close());

  pub.send({ event: 'client-e', channel: 'public-x', data: {} });
  assert.match((await errorOf(pub)).message, /only supported on private and presence/);
  c.send({ event: 'client-e', channel: 'private-other', data: {} });
  assert.match((await errorOf(c)).message, /not subscribed/);
  c.send({ event: 'client-e', data: {} });
  assert.match((await errorOf(c)).message, /only supported/);
  c.send({ event: `client-${'x'.repeat(200)}`, channel: 'private-x', data: {} });
  assert.match((await errorOf(c)).message, /client- and be at most/);
  c.send({ event: 'client-e', channel: 'private-x', data: 'y'.repeat(101) });
  assert.match((await errorOf(c)).message, /too large/);

  const off = await RawClient.connect(h, { key: h.apps[1].key });
  t.after(() => off.close());
  off.send({ event: 'pusher:subscribe', data: { channel: 'private-x', auth: authFor(h.apps[1], off.socketId, 'private-x') } });
  await off.next('pusher_internal:subscription_succeeded');
  off.send({ event: 'client-e', channel: 'private-x', data: {} });
  assert.match((await errorOf(off)).message, /not enabled/);
  await roundTrip(c);
  assert.equal(c.ws.readyState, c.ws.OPEN);
});

test('more than maxClientEventsPerSecond gets 4301 and the socket stays open', async (t) => {
  const h = await startHerald({ apps: [{ clientEvents: true, maxClientEventsPerSecond: 3 }] });
  t.after(() => h.stop());
  const a = await joined(h, 'private-fast');
  t.after(() => a.close());
  const b = await joined(h, 'private-fast');
  t.after(() => b.close());
  for (let i = 0; i < 10; i++) a.send({ event: 'client-n', channel: 'private-fast', data: { i } });
  const err = await errorOf(a);
  assert.equal(err.code, 4301);
  await roundTrip(a);
  await roundTrip(b);
  const delivered = b.pending().filter((m) => m.event === 'client-n').length;
  // Three per second: ten sent at once fall in at most two one-second windows.
  assert.ok(delivered >= 3 && delivered <= 6, `delivered ${delivered}`);
  assert.equal(a.ws.readyState, a.ws.OPEN);
});
