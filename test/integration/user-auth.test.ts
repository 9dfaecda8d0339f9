import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { startHerald, type TestHerald } from '../helpers/herald';
import { RawClient, authFor, nextEvent, pusherJs, roundTrip, serverSdk } from '../helpers/clients';
import type { AppOptions } from '../../server/options/Options';

function signinAuth(app: AppOptions, socketId: string, userData: string): string {
  return `${app.key}:${createHmac('sha256', app.secret).update(`${socketId}::user::${userData}`).digest('hex')}`;
}

async function signedIn(h: TestHerald, user: Record<string, unknown>): Promise<RawClient> {
  const c = await RawClient.connect(h);
  const userData = JSON.stringify(user);
  c.send({ event: 'pusher:signin', data: { auth: signinAuth(h.app, c.socketId, userData), user_data: userData } });
  const ok = await c.next('pusher:signin_success');
  assert.equal((ok.data as { user_data: string }).user_data, userData);
  return c;
}

test('pusher-js signin, then sendToUser reaches every socket of that user only', async (t) => {
  const h = await startHerald();
  t.after(() => h.stop());
  const u1a = pusherJs(h, { user: { id: 'u1' } });
  const u1b = pusherJs(h, { user: { id: 'u1' } });
  const u2 = pusherJs(h, { user: { id: 'u2' } });
  // pusher-js subscribes #server-to-user-{id} by itself after signin_success; wait for that reply.
  const userChannelReady = (c: typeof u1a, id: string) =>
    new Promise<void>((resolve) => {
      const onMessage = (m: { event: string; channel?: string }) => {
        if (m.event === 'pusher_internal:subscription_succeeded' && m.channel === `#server-to-user-${id}`) {
          c.connection.unbind('message', onMessage);
          resolve();
        }
      };
      c.connection.bind('message', onMessage);
    });
  const ready = [userChannelReady(u1a, 'u1'), userChannelReady(u1b, 'u1'), userChannelReady(u2, 'u2')];
  for (const c of [u1a, u1b, u2]) c.signin();
  await Promise.all(ready);
  const gotA = nextEvent(u1a.user, 'notice');
  const gotB = nextEvent(u1b.user, 'notice');
  const seenByU2: unknown[] = [];
  u2.user.bind('notice', (d: unknown) => seenByU2.push(d));
  await serverSdk(h).sendToUser('u1', 'notice', { text: 'hi u1' });
  assert.deepEqual(await gotA, { text: 'hi u1' });
  assert.deepEqual(await gotB, { text: 'hi u1' });
  // Messages on one socket arrive in order: once u2 has its own notice, u1's would have come before it.
  const control = nextEvent(u2.user, 'notice');
  await serverSdk(h).sendToUser('u2', 'notice', { text: 'for u2' });
  await control;
  assert.deepEqual(seenByU2, [{ text: 'for u2' }]);
});

test('only the signed-in user may subscribe to its #server-to-user channel', async (t) => {
  const h = await startHerald();
  t.after(() => h.stop());
  const anon = await RawClient.connect(h);
  t.after(() => anon.close());
  anon.send({ event: 'pusher:subscribe', data: { channel: '#server-to-user-alice' } });
  assert.equal(((await anon.next('pusher:subscription_error')).data as { status: number }).status, 403);
  const bob = await signedIn(h, { id: 'bob' });
  t.after(() => bob.close());
  bob.send({ event: 'pusher:subscribe', data: { channel: '#server-to-user-alice' } });
  assert.equal(((await bob.next('pusher:subscription_error')).data as { status: number }).status, 403);
  bob.send({ event: 'pusher:subscribe', data: { channel: '#server-to-user-bob' } });
  await bob.next('pusher_internal:subscription_succeeded');
});

test('signin is refused for a bad signature, a missing id, or a second identity', async (t) => {
  const h = await startHerald();
  t.after(() => h.stop());
  const c = await RawClient.connect(h);
  t.after(() => c.close());
  const send = (userData: string, auth = signinAuth(h.app, c.socketId, userData)) => c.send({ event: 'pusher:signin', data: { auth, user_data: userData } });
  send('{"id":"a"}', `${h.app.key}:${'1'.repeat(64)}`);
  assert.match(((await c.next('pusher:error')).data as { message: string }).message, /Invalid signin/);
  send('{"name":"no id"}');
  assert.match(((await c.next('pusher:error')).data as { message: string }).message, /User id/);
  send('{"id":""}');
  await c.next('pusher:error');
  send('{"id":"a"}');
  await c.next('pusher:signin_success');
  send('{"id":"b"}');
  assert.match(((await c.next('pusher:error')).data as { message: string }).message, /another user/);
  send('{"id":"a"}');
  await c.next('pusher:signin_success');
});

test('a signed-in connection joins presence without channel_data, as its signed-in user', async (t) => {
  const h = await startHerald();
  t.after(() => h.stop());
  const c = await signedIn(h, { id: 'carol', user_info: { name: 'Carol' } });
  t.after(() => c.close());
  c.send({ event: 'pusher:subscribe', data: { channel: 'presence-lobby', auth: authFor(h.app, c.socketId, 'presence-lobby') } });
  const ok = await c.next('pusher_internal:subscription_succeeded');
  assert.deepEqual(ok.data, { presence: { ids: ['carol'], hash: { carol: { name: 'Carol' } }, count: 1 } });
  // Without signin, channel_data is required.
  const anon = await RawClient.connect(h);
  t.after(() => anon.close());
  anon.send({ event: 'pusher:subscribe', data: { channel: 'presence-lobby', auth: authFor(h.app, anon.socketId, 'presence-lobby') } });
  assert.match(((await anon.next('pusher:subscription_error')).data as { error: string }).error, /channel_data is required/);

  // pusher-js does the same when the auth response has no channel_data.
  const sdk = serverSdk(h);
  const pj = pusherJs(h, {
    user: { id: 'dave', user_info: { name: 'Dave' } },
    extra: { channelAuthorization: { customHandler: (p: { socketId: string; channelName: string }, cb: (e: null, d: unknown) => void) => cb(null, sdk.authorizeChannel(p.socketId, p.channelName)) } },
  });
  pj.signin();
  const ch = pj.subscribe('presence-lobby') as unknown as { members: { me: { id: string }; count: number } };
  await nextEvent(ch, 'pusher:subscription_succeeded');
  assert.equal(ch.members.me.id, 'dave');
  assert.equal(ch.members.count, 2);
});

test('watchlist: initial online/offline, then changes as users come and go', async (t) => {
  const h = await startHerald({ apps: [{ watchlist: true }] });
  t.after(() => h.stop());
  const friend = await signedIn(h, { id: 'friend' });
  const watcher = await signedIn(h, { id: 'me', watchlist: ['friend', 'stranger'] });
  t.after(() => watcher.close());
  const initial = await watcher.next('pusher_internal:watchlist_events');
  assert.deepEqual(initial.data, { events: [{ name: 'online', user_ids: ['friend'] }, { name: 'offline', user_ids: ['stranger'] }] });
  const stranger = await signedIn(h, { id: 'stranger' });
  assert.deepEqual((await watcher.next('pusher_internal:watchlist_events')).data, { events: [{ name: 'online', user_ids: ['stranger'] }] });
  // A second socket of the same user is no news.
  const stranger2 = await signedIn(h, { id: 'stranger' });
  friend.close();
  assert.deepEqual((await watcher.next('pusher_internal:watchlist_events')).data, { events: [{ name: 'offline', user_ids: ['friend'] }] });
  stranger.close();
  await stranger.closed;
  await roundTrip(watcher);
  stranger2.close();
  assert.deepEqual((await watcher.next('pusher_internal:watchlist_events')).data, { events: [{ name: 'offline', user_ids: ['stranger'] }] });

  // pusher-js reads them through user.watchlist.
  const pj = pusherJs(h, { user: { id: 'pj', watchlist: ['me'] } });
  const online = nextEvent<{ name: string; user_ids: string[] }>(pj.user.watchlist, 'online');
  pj.signin();
  assert.deepEqual(await online, { name: 'online', user_ids: ['me'] });
});

test('a watchlist over 100 ids gets 4302; the first 100 are used and signin succeeds', async (t) => {
  const h = await startHerald({ apps: [{ watchlist: true }] });
  t.after(() => h.stop());
  const ids = Array.from({ length: 101 }, (_, i) => `w${i}`);
  const c = await signedIn(h, { id: 'big', watchlist: ids });
  t.after(() => c.close());
  assert.equal(((await c.next('pusher:error')).data as { code: number }).code, 4302);
  const ev = (await c.next('pusher_internal:watchlist_events')).data as { events: { user_ids: string[] }[] };
  assert.equal(ev.events[0].user_ids.length, 100);
});

test('terminate_connections closes only the signed-in sockets of that user, with 4009', async (t) => {
  const h = await startHerald();
  t.after(() => h.stop());
  const a1 = await signedIn(h, { id: 'target' });
  const a2 = await signedIn(h, { id: 'target' });
  const other = await signedIn(h, { id: 'bystander' });
  t.after(() => other.close());
  // A presence member named like the user but not signed in is not touched.
  const lookalike = await RawClient.connect(h);
  t.after(() => lookalike.close());
  const cd = JSON.stringify({ user_id: 'target' });
  lookalike.send({ event: 'pusher:subscribe', data: { channel: 'presence-t', auth: authFor(h.app, lookalike.socketId, 'presence-t', cd), channel_data: cd } });
  await lookalike.next('pusher_internal:subscription_succeeded');

  const res = await serverSdk(h).terminateUserConnections('target');
  assert.equal(res.status, 200);
  assert.equal((await a1.closed).code, 4009);
  assert.equal((await a2.closed).code, 4009);
  await roundTrip(other);
  await roundTrip(lookalike);
});
