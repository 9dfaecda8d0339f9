import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startHerald } from '../helpers/herald';
import { RawClient, authFor, nextEvent, pusherJs, roundTrip, serverSdk } from '../helpers/clients';

type Channel = { bind(e: string, cb: (d: unknown) => void): unknown; members?: { count: number; me: { id: string }; each: (cb: (m: { id: string; info: unknown }) => void) => void } };

test('public channel: pusher triggers, pusher-js receives', async (t) => {
  const h = await startHerald();
  t.after(() => h.stop());
  const client = pusherJs(h);
  t.after(() => client.disconnect());
  const ch = client.subscribe('public-news') as unknown as Channel;
  await nextEvent(ch, 'pusher:subscription_succeeded');
  const got = nextEvent<{ hello: string }>(ch, 'news');
  const res = await serverSdk(h).trigger('public-news', 'news', { hello: 'world' });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), {});
  assert.deepEqual(await got, { hello: 'world' });
});

test('private channel: signed subscription succeeds, bad or foreign signatures are refused', async (t) => {
  const h = await startHerald({ apps: [{}, {}] });
  t.after(() => h.stop());
  const client = pusherJs(h);
  t.after(() => client.disconnect());
  const ch = client.subscribe('private-room') as unknown as Channel;
  await nextEvent(ch, 'pusher:subscription_succeeded');
  const got = nextEvent<string>(ch, 'secret');
  await serverSdk(h).trigger('private-room', 'secret', 'text payload');
  assert.equal(await got, 'text payload');

  const raw = await RawClient.connect(h);
  t.after(() => raw.close());
  const refused = async (auth: string | undefined, channel = 'private-room') => {
    raw.send({ event: 'pusher:subscribe', data: { channel, auth } });
    const m = await raw.next('pusher:subscription_error', 5000, channel);
    return m.data as { type: string; status: number; error: string };
  };
  const bad = await refused(`${h.app.key}:${'0'.repeat(64)}`);
  assert.equal(bad.type, 'AuthError');
  assert.equal(bad.status, 401);
  assert.equal((await refused(undefined)).type, 'AuthError');
  assert.equal((await refused('garbage')).type, 'AuthError');
  // Right signature, wrong key part (Reverb ignores the key part: we don't).
  const good = authFor(h.app, raw.socketId, 'private-room');
  assert.equal((await refused(`other-key:${good.split(':')[1]}`)).type, 'AuthError');
  // Signed for another socket.
  assert.equal((await refused(authFor(h.app, '1.1', 'private-room'))).type, 'AuthError');
  // Signed with another app's secret.
  assert.equal((await refused(authFor({ ...h.apps[1], key: h.app.key }, raw.socketId, 'private-room'))).type, 'AuthError');
  // A refused socket receives nothing from the channel.
  await serverSdk(h).trigger('private-room', 'secret', 'x');
  await roundTrip(raw);
  assert.equal(raw.pending().filter((m) => m.channel === 'private-room').length, 0);
});

test('private-encrypted channel: passed through untouched and decrypted by pusher-js', async (t) => {
  const h = await startHerald();
  t.after(() => h.stop());
  const masterKey = 'nxzvbGF+f8FGhk/jOaZvgMle1tqxzF/VfUZLBLhhaH0=';
  const sdk = serverSdk(h, h.app, { encryptionMasterKeyBase64: masterKey });
  const client = pusherJs(h, {
    extra: {
      channelAuthorization: {
        customHandler: (p: { socketId: string; channelName: string }, cb: (e: Error | null, d: unknown) => void) => cb(null, sdk.authorizeChannel(p.socketId, p.channelName)),
      },
    },
  });
  t.after(() => client.disconnect());
  const ch = client.subscribe('private-encrypted-vault') as unknown as Channel;
  await nextEvent(ch, 'pusher:subscription_succeeded');
  // A raw subscriber sees only ciphertext: the gateway never decrypts.
  const raw = await RawClient.connect(h);
  t.after(() => raw.close());
  raw.send({ event: 'pusher:subscribe', data: { channel: 'private-encrypted-vault', auth: authFor(h.app, raw.socketId, 'private-encrypted-vault') } });
  await raw.next('pusher_internal:subscription_succeeded');
  const got = nextEvent<{ gold: number }>(ch, 'deposit');
  await sdk.trigger('private-encrypted-vault', 'deposit', { gold: 42 });
  assert.deepEqual(await got, { gold: 42 });
  const seen = await raw.next('deposit');
  const data = seen.data as { nonce: string; ciphertext: string };
  assert.ok(data.nonce && data.ciphertext);
  assert.ok(!JSON.stringify(seen).includes('gold'));
});

test('presence: members list, one member per user across sockets, added once, removed after the last', async (t) => {
  const h = await startHerald();
  t.after(() => h.stop());
  const alice = pusherJs(h, { presence: { user_id: 'alice', user_info: { name: 'Alice' } } });
  t.after(() => alice.disconnect());
  const chA = alice.subscribe('presence-room') as unknown as Channel;
  await nextEvent(chA, 'pusher:subscription_succeeded');
  assert.equal(chA.members?.count, 1);
  assert.equal(chA.members?.me.id, 'alice');

  const added: string[] = [];
  const removed: string[] = [];
  chA.bind('pusher:member_added', (m: unknown) => added.push((m as { id: string }).id));
  chA.bind('pusher:member_removed', (m: unknown) => removed.push((m as { id: string }).id));

  const bob1 = pusherJs(h, { presence: { user_id: 'bob', user_info: { name: 'Bob' } } });
  t.after(() => bob1.disconnect());
  const firstAdd = nextEvent<{ id: string; info: { name: string } }>(chA, 'pusher:member_added');
  const chB1 = bob1.subscribe('presence-room') as unknown as Channel;
  const succeeded = (await nextEvent(chB1, 'pusher:subscription_succeeded')) as { count: number };
  assert.equal(succeeded.count, 2);
  assert.deepEqual(await firstAdd, { id: 'bob', info: { name: 'Bob' } });
  const names: string[] = [];
  chB1.members?.each((m) => names.push(m.id));
  assert.deepEqual(names.sort(), ['alice', 'bob']);

  // Bob's second socket: still one member, no second member_added.
  const bob2 = pusherJs(h, { presence: { user_id: 'bob', user_info: { name: 'Bob' } } });
  t.after(() => bob2.disconnect());
  const chB2 = bob2.subscribe('presence-room') as unknown as Channel;
  assert.equal(((await nextEvent(chB2, 'pusher:subscription_succeeded')) as { count: number }).count, 2);
  const users = await (await serverSdk(h).get({ path: '/channels/presence-room/users' })).json();
  assert.deepEqual(users, { users: [{ id: 'alice' }, { id: 'bob' }] });

  // One of Bob's sockets leaves: Bob stays. The second leaves: member_removed, once.
  bob1.disconnect();
  const info = async () => (await (await serverSdk(h).get({ path: '/channels/presence-room', params: { info: 'user_count,subscription_count' } })).json()) as { user_count: number; subscription_count: number };
  for (let i = 0; (await info()).subscription_count !== 2; i++) assert.ok(i < 200, 'bob1 never left');
  assert.equal((await info()).user_count, 2);
  const gone = nextEvent<{ id: string }>(chA, 'pusher:member_removed');
  bob2.disconnect();
  assert.equal((await gone).id, 'bob');
  assert.deepEqual(added, ['bob']);
  assert.deepEqual(removed, ['bob']);
  assert.deepEqual(await info(), { occupied: true, user_count: 1, subscription_count: 1 });
});

test('presence limits: full channel, oversized user_info, bad channel_data', async (t) => {
  const h = await startHerald({ apps: [{ maxPresenceMembers: 2, maxPresenceMemberBytes: 64 }] });
  t.after(() => h.stop());
  const join = async (userId: string, info: unknown = {}) => {
    const c = await RawClient.connect(h);
    t.after(() => c.close());
    const channelData = JSON.stringify({ user_id: userId, user_info: info });
    c.send({ event: 'pusher:subscribe', data: { channel: 'presence-full', auth: authFor(h.app, c.socketId, 'presence-full', channelData), channel_data: channelData } });
    return c.next((m) => m.channel === 'presence-full' && (m.event === 'pusher_internal:subscription_succeeded' || m.event === 'pusher:subscription_error'));
  };
  assert.equal((await join('u1')).event, 'pusher_internal:subscription_succeeded');
  assert.equal((await join('u2')).event, 'pusher_internal:subscription_succeeded');
  const full = await join('u3');
  assert.equal(full.event, 'pusher:subscription_error');
  assert.equal((full.data as { type: string }).type, 'LimitReached');
  // A user already in the channel may add sockets.
  assert.equal((await join('u1')).event, 'pusher_internal:subscription_succeeded');
  const big = await join('u1', { bio: 'x'.repeat(100) });
  assert.equal(big.event, 'pusher:subscription_error');
  assert.equal((big.data as { status: number }).status, 413);

  const c = await RawClient.connect(h);
  t.after(() => c.close());
  for (const channelData of ['not json', '{"user_info":{}}', '{"user_id":""}', JSON.stringify({ user_id: 'x'.repeat(129) })]) {
    c.send({ event: 'pusher:subscribe', data: { channel: 'presence-x', auth: authFor(h.app, c.socketId, 'presence-x', channelData), channel_data: channelData } });
    const m = await c.next('pusher:subscription_error');
    assert.equal((m.data as { status: number }).status, 400, channelData);
  }
});

test('numeric presence user ids are accepted and reported as strings', async (t) => {
  const h = await startHerald();
  t.after(() => h.stop());
  const c = await RawClient.connect(h);
  t.after(() => c.close());
  const channelData = '{"user_id":10,"user_info":{"name":"Mr. Pusher"}}';
  c.send({ event: 'pusher:subscribe', data: { channel: 'presence-n', auth: authFor(h.app, c.socketId, 'presence-n', channelData), channel_data: channelData } });
  const ok = await c.next('pusher_internal:subscription_succeeded');
  assert.deepEqual(ok.data, { presence: { ids: ['10'], hash: { '10': { name: 'Mr. Pusher' } }, count: 1 } });
});

test('cache channels: cache_miss first, then the last event on subscribe; REST info=cache', async (t) => {
  const h = await startHerald({ apps: [{ cacheTtlSeconds: 60 }] });
  t.after(() => h.stop());
  const first = pusherJs(h);
  t.after(() => first.disconnect());
  const ch = first.subscribe('cache-prices') as unknown as Channel;
  await nextEvent(ch, 'pusher:cache_miss');
  const sdk = serverSdk(h);
  let res = await (await sdk.get({ path: '/channels/cache-prices', params: { info: 'cache' } })).json();
  assert.deepEqual(res, { occupied: true, cache: null });
  await sdk.trigger('cache-prices', 'price', { eur: 1 });
  await sdk.trigger('cache-prices', 'price', { eur: 2 });
  const second = pusherJs(h);
  t.after(() => second.disconnect());
  const ch2 = second.subscribe('cache-prices') as unknown as Channel;
  assert.deepEqual(await nextEvent(ch2, 'price'), { eur: 2 });
  res = await (await sdk.get({ path: '/channels/cache-prices', params: { info: 'cache' } })).json();
  assert.equal(res.cache.data, '{"eur":2}');
  assert.ok(res.cache.ttl > 0 && res.cache.ttl <= 60);
  // Every cache prefix caches.
  for (const name of ['private-cache-a', 'presence-cache-a']) {
    await sdk.trigger(name, 'e', 'v');
    assert.equal((await (await sdk.get({ path: `/channels/${name}`, params: { info: 'cache' } })).json()).cache.data, 'v', name);
  }
  const encSdk = serverSdk(h, h.app, { encryptionMasterKeyBase64: 'nxzvbGF+f8FGhk/jOaZvgMle1tqxzF/VfUZLBLhhaH0=' });
  await encSdk.trigger('private-encrypted-cache-a', 'e', 'v');
  const enc = (await (await sdk.get({ path: '/channels/private-encrypted-cache-a', params: { info: 'cache' } })).json()).cache;
  assert.ok(JSON.parse(enc.data as string).ciphertext, 'encrypted cache holds ciphertext');
  assert.equal((await sdk.get({ path: '/channels/public-x', params: { info: 'cache' } }).catch((e: { status: number }) => e)).status, 400);
});

test('subscription_count events when the app enables them', async (t) => {
  const h = await startHerald({ apps: [{ subscriptionCount: true }] });
  t.after(() => h.stop());
  const a = await RawClient.connect(h);
  t.after(() => a.close());
  a.send({ event: 'pusher:subscribe', data: { channel: 'counted' } });
  await a.next('pusher_internal:subscription_succeeded');
  assert.deepEqual((await a.next('pusher_internal:subscription_count')).data, { subscription_count: 1 });
  const b = await RawClient.connect(h);
  b.send({ event: 'pusher:subscribe', data: { channel: 'counted' } });
  assert.deepEqual((await a.next('pusher_internal:subscription_count')).data, { subscription_count: 2 });
  b.close();
  assert.deepEqual((await a.next('pusher_internal:subscription_count')).data, { subscription_count: 1 });

  // pusher-js exposes it as channel.subscriptionCount.
  const client = pusherJs(h);
  t.after(() => client.disconnect());
  const ch = client.subscribe('counted') as unknown as Channel & { subscriptionCount: number };
  await nextEvent(ch, 'pusher:subscription_count');
  assert.equal(ch.subscriptionCount, 2);
});

test('apps without subscriptionCount send no count events', async (t) => {
  const h = await startHerald();
  t.after(() => h.stop());
  const a = await RawClient.connect(h);
  t.after(() => a.close());
  a.send({ event: 'pusher:subscribe', data: { channel: 'quiet' } });
  await a.next('pusher_internal:subscription_succeeded');
  await roundTrip(a);
  assert.deepEqual(a.pending().map((m) => m.event), []);
});

test('channel names are validated on subscribe', async (t) => {
  const h = await startHerald();
  t.after(() => h.stop());
  const c = await RawClient.connect(h);
  t.after(() => c.close());
  for (const channel of ['bad name', 'x'.repeat(201), '#secret', '', 'ünïcode']) {
    c.send({ event: 'pusher:subscribe', data: { channel } });
    const m = await c.next('pusher:subscription_error');
    assert.equal((m.data as { status: number }).status, 400, channel);
  }
  c.send({ event: 'pusher:subscribe', data: {} });
  assert.equal(((await c.next('pusher:subscription_error')).data as { status: number }).status, 400);
  c.send({ event: 'pusher:subscribe', data: { channel: 'x'.repeat(200) } });
  await c.next('pusher_internal:subscription_succeeded');
});

test('unsubscribe stops delivery; a second subscribe is idempotent', async (t) => {
  const h = await startHerald();
  t.after(() => h.stop());
  const c = await RawClient.connect(h);
  t.after(() => c.close());
  c.send({ event: 'pusher:subscribe', data: { channel: 'topic' } });
  await c.next('pusher_internal:subscription_succeeded');
  c.send({ event: 'pusher:subscribe', data: { channel: 'topic' } });
  await c.next('pusher_internal:subscription_succeeded');
  const sdk = serverSdk(h);
  assert.equal((await (await sdk.get({ path: '/channels/topic', params: { info: 'subscription_count' } })).json()).subscription_count, 1);
  c.send({ event: 'pusher:unsubscribe', data: { channel: 'topic' } });
  await roundTrip(c);
  assert.deepEqual(await (await sdk.get({ path: '/channels/topic' })).json(), { occupied: false });
  await sdk.trigger('topic', 'e', 'x');
  await roundTrip(c);
  assert.equal(c.pending().length, 0);
});
