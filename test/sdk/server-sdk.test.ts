/**
 * The Node server SDK against a real Herald node: every non-push method, input checks before sending,
 * typed errors, keep-alive and timeouts, and webhook verification of requests built the way Herald's
 * webhook sender builds them.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createHmac } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import PusherServer from 'pusher';
import { Herald, HeraldInputError, HeraldRequestError, HeraldWebhookError, decryptData, type HeraldOptions } from '../../sdk/server';
import { signedQuery } from '../../sdk/server/request';
import { buildWebhookRequest, type WebhookEvent as ServerWebhookEvent } from '../../server/webhooks/webhook-request';
import { startHerald, type TestHerald } from '../helpers/herald';
import { RawClient, nextEvent, pusherJs, connected, roundTrip } from '../helpers/clients';
import type { AppOptions } from '../../server/options/Options';

const MASTER_KEY = 'nxzvbGF+f8FGhk/jOaZvgMle1tqxzF/VfUZLBLhhaH0=';

function sdkFor(h: TestHerald, app: AppOptions = h.app, extra: Partial<HeraldOptions> = {}): Herald {
  const sdk = new Herald({ appId: app.id, key: app.key, secret: app.secret, host: h.host, port: h.port, useTLS: false, ...extra });
  return sdk;
}

async function setup(t: TestContext, apps: Partial<AppOptions>[] = [{ clientEvents: true }], extra: Partial<HeraldOptions> = {}) {
  const h = await startHerald({ apps });
  const sdk = sdkFor(h, h.app, { encryptionMasterKeyBase64: MASTER_KEY, ...extra });
  t.after(async () => {
    sdk.close();
    await h.stop();
  });
  return { h, sdk };
}

async function connect(t: TestContext, h: TestHerald): Promise<RawClient> {
  const c = await RawClient.connect(h);
  t.after(() => c.close());
  return c;
}

async function subscribe(c: RawClient, channel: string, auth?: { auth: string; channel_data?: string }): Promise<void> {
  c.send({ event: 'pusher:subscribe', data: { channel, ...auth } });
  const m = await c.next((msg) => msg.channel === channel && (msg.event === 'pusher_internal:subscription_succeeded' || msg.event === 'pusher:subscription_error'));
  assert.equal(m.event, 'pusher_internal:subscription_succeeded', `subscribe ${channel}: ${JSON.stringify(m.data)}`);
}

async function rejectsInput(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof HeraldInputError, `expected HeraldInputError, got ${String(err)}`);
    assert.match(err.message, pattern);
    return true;
  });
}

// ------------------------------------------------------------------ signing vectors (protocol.md §2, §3)

void test('signatures match the spec vectors', () => {
  const sdk = new Herald({ appId: '3', key: '278d425bdf160c739803', secret: '7ad3773142a6692b25b8' });
  assert.equal(sdk.authorizeChannel('1234.1234', 'private-foobar').auth, '278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4');
  assert.equal(sdk.authenticateUser('1234.1234', { id: '12345' }).auth, '278d425bdf160c739803:4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba');
  const presence = sdk.authorizeChannel('1234.1234', 'presence-foobar', { user_id: 10, user_info: { name: 'Mr. Pusher' } });
  assert.equal(presence.auth, '278d425bdf160c739803:afaed3695da2ffd16931f457e338e6c9f2921fa133ce7dac49f529792be6304c');
  assert.equal(presence.channel_data, '{"user_id":10,"user_info":{"name":"Mr. Pusher"}}');
  const q = signedQuery('278d425bdf160c739803', '7ad3773142a6692b25b8', 'POST', '/apps/3/events', {}, '{"name":"foo","channels":["project-3"],"data":"{\\"some\\":\\"data\\"}"}', 1353088179);
  assert.match(q, /body_md5=ec365a775a4cd0599faeb73354201b6f/);
  assert.match(q, /&auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c$/);
  sdk.close();
});

void test('auth results equal the pusher package for the same input', () => {
  const opts = { appId: '3', key: 'k3y', secret: 's3cretvalue', encryptionMasterKeyBase64: MASTER_KEY };
  const ours = new Herald(opts);
  const theirs = new PusherServer({ ...opts, host: '127.0.0.1', useTLS: false });
  const presence = { user_id: 'u1', user_info: { name: 'Ada', emoji: '🦊' } };
  assert.deepEqual(ours.authorizeChannel('1.2', 'private-a'), theirs.authorizeChannel('1.2', 'private-a'));
  assert.deepEqual(ours.authorizeChannel('1.2', 'presence-a', presence), theirs.authorizeChannel('1.2', 'presence-a', presence));
  assert.deepEqual(ours.authorizeChannel('1.2', 'private-encrypted-test'), theirs.authorizeChannel('1.2', 'private-encrypted-test'));
  assert.deepEqual(ours.authenticateUser('1.2', { id: 'u1', user_info: { a: 1 } }), theirs.authenticateUser('1.2', { id: 'u1', user_info: { a: 1 } }));
  ours.close();
});

void test('encrypted channel shared secret matches the protocol vector', () => {
  const sdk = new Herald({ appId: '1', key: 'k', secret: 'secret-1', encryptionMasterKeyBase64: MASTER_KEY });
  assert.equal(sdk.authorizeChannel('1.1', 'private-encrypted-test').shared_secret, 'fFP8MQ82F45AsfxK0pxacT8cuu8DFVZHIIkA/0odyXA=');
  assert.equal(sdk.channelSharedSecret('private-encrypted-test').toString('base64'), 'fFP8MQ82F45AsfxK0pxacT8cuu8DFVZHIIkA/0odyXA=');
  assert.throws(() => new Herald({ appId: '1', key: 'k', secret: 's', encryptionMasterKeyBase64: 'c2hvcnQ=' }), HeraldInputError);
  const noKey = new Herald({ appId: '1', key: 'k', secret: 'secret-1' });
  assert.throws(() => noKey.authorizeChannel('1.1', 'private-encrypted-test'), /encryptionMasterKeyBase64/);
  sdk.close();
  noKey.close();
});

// ------------------------------------------------------------------ events

void test('trigger reaches subscribers, excludes socketId and returns info', { timeout: 20_000 }, async (t) => {
  const { h, sdk } = await setup(t);
  const a = await connect(t, h);
  const b = await connect(t, h);
  await subscribe(a, 'news');
  await subscribe(b, 'news');
  await subscribe(a, 'sports');

  const res = await sdk.trigger(['news', 'sports'], 'update', { n: 1 }, { info: ['subscription_count'] });
  assert.equal(res.status, 200);
  assert.deepEqual(res.body, { channels: { news: { subscription_count: 2 }, sports: { subscription_count: 1 } } });
  assert.deepEqual(await res.json(), res.body);
  assert.deepEqual((await a.next('update', 5000, 'news')).data, { n: 1 });
  assert.deepEqual((await a.next('update', 5000, 'sports')).data, { n: 1 });
  assert.deepEqual((await b.next('update', 5000, 'news')).data, { n: 1 });

  // pusher-http-node's socket_id spelling works too; the excluded socket gets nothing.
  await sdk.trigger('news', 'only-b', 'plain text', { socket_id: a.socketId });
  assert.equal((await b.next('only-b')).data, 'plain text');
  await sdk.trigger('news', 'after', {}, { socketId: b.socketId });
  await a.next('after');
  assert.equal(a.pending().filter((m) => m.event === 'only-b').length, 0);
});

void test('triggerBatch sends every event and returns index-aligned info', { timeout: 20_000 }, async (t) => {
  const { h, sdk } = await setup(t);
  const c = await connect(t, h);
  await subscribe(c, 'a');
  await subscribe(c, 'b');
  const batch = [
    { channel: 'a', name: 'e1', data: { i: 1 } },
    { channel: 'b', name: 'e2', data: 'two', info: 'subscription_count' },
  ];
  const copy = JSON.parse(JSON.stringify(batch)) as typeof batch;
  const res = await sdk.triggerBatch(batch);
  assert.deepEqual(res.body, { batch: [{}, { subscription_count: 1 }] });
  assert.deepEqual(batch, copy, 'the caller’s batch is not mutated');
  assert.deepEqual((await c.next('e1')).data, { i: 1 });
  assert.equal((await c.next('e2')).data, 'two');
});

void test('trigger to an encrypted channel is decrypted by pusher-js', { timeout: 20_000 }, async (t) => {
  const { h, sdk } = await setup(t);
  const client = pusherJs(h, {
    extra: {
      channelAuthorization: {
        endpoint: '',
        transport: 'ajax',
        customHandler: (p: { socketId: string; channelName: string }, cb: (e: Error | null, d: unknown) => void) => cb(null, sdk.authorizeChannel(p.socketId, p.channelName)),
      },
    },
  });
  t.after(() => client.disconnect());
  const channel = client.subscribe('private-encrypted-room');
  await nextEvent(channel, 'pusher:subscription_succeeded');
  const got = nextEvent(channel, 'secret');
  await sdk.trigger('private-encrypted-room', 'secret', { msg: 'héllo 🦊' });
  assert.deepEqual(await got, { msg: 'héllo 🦊' });

  // On the wire the data is a {nonce, ciphertext} box that only the channel key opens.
  const raw = await connect(t, h);
  await subscribe(raw, 'private-encrypted-room', sdk.authorizeChannel(raw.socketId, 'private-encrypted-room'));
  await sdk.triggerBatch([{ channel: 'private-encrypted-room', name: 'boxed', data: 'text' }]);
  const wire = (await raw.next('boxed')).data as { nonce: string; ciphertext: string };
  assert.equal(Buffer.from(wire.nonce, 'base64').length, 24);
  assert.equal(decryptData('private-encrypted-room', JSON.stringify(wire), Buffer.from(MASTER_KEY, 'base64')), 'text');
  assert.equal(decryptData('private-encrypted-other', JSON.stringify(wire), Buffer.from(MASTER_KEY, 'base64')), null);

  await rejectsInput(sdk.trigger(['private-encrypted-room', 'news'], 'x', {}), /one private-encrypted- channel/);
  const noKey = sdkFor(h);
  t.after(() => noKey.close());
  await rejectsInput(noKey.trigger('private-encrypted-room', 'x', {}), /encryptionMasterKeyBase64/);
});

void test('input is checked before sending, with the server’s rules', { timeout: 20_000 }, async (t) => {
  // Port 9 (discard) would fail to connect: a HeraldInputError proves no request was made.
  const sdk = new Herald({ appId: '1', key: 'k', secret: 'secret-1', port: 9 });
  t.after(() => sdk.close());
  await rejectsInput(sdk.trigger('bad channel!', 'e', {}), /may contain only/);
  await rejectsInput(sdk.trigger('#server-to-user-1', 'e', {}), /reserved/);
  await rejectsInput(sdk.trigger('x'.repeat(201), 'e', {}), /longer than 200/);
  await rejectsInput(sdk.trigger([], 'e', {}), /at least one channel/);
  await rejectsInput(sdk.trigger(Array.from({ length: 101 }, (_, i) => `c${i}`), 'e', {}), /at most 100 channels/);
  await rejectsInput(sdk.trigger('c', 'e'.repeat(201), {}), /Event name is longer than 200/);
  await rejectsInput(sdk.trigger('c', '', {}), /Event name must be/);
  await rejectsInput(sdk.trigger('c', 'e', 'é'.repeat(5121)), /10242 bytes; the limit is 10240/);
  await rejectsInput(sdk.trigger('c', 'e', {}, { socketId: 'abc' }), /Invalid socket id/);
  await rejectsInput(sdk.trigger('c', 'e', {}, { info: 'bogus' }), /Unknown info attribute/);
  await rejectsInput(sdk.trigger('c', 'e', {}, { push: { urgency: 'now' as never } }), /urgency/);
  await rejectsInput(sdk.trigger('c', 'e', {}, { push: { notification: { titel: 'typo' } as never } }), /titel.* is not a known field/);
  await rejectsInput(sdk.trigger('c', 'e', {}, { push: { notification: { deep_link: 'javascript:alert(1)' } } }), /http\(s\) URL or a path/);
  await rejectsInput(sdk.trigger('x'.repeat(165), 'e', {}, { push: {} }), /cannot name an interest/);
  await rejectsInput(sdk.triggerBatch(Array.from({ length: 11 }, () => ({ channel: 'c', name: 'e', data: {} }))), /at most 10 events/);
  await rejectsInput(sdk.triggerBatch([{ channel: 'c', name: 'e', data: {} }, { channel: 'b d', name: 'e', data: {} }]), /batch\[1\]/);
  await rejectsInput(sdk.getChannels({ prefix: 'private-', info: 'user_count' }), /presence-/);
  await rejectsInput(sdk.getChannel('news', { info: 'user_count' }), /presence-/);
  await rejectsInput(sdk.getChannel('news', { info: 'cache' }), /cache channels/);
  await rejectsInput(sdk.getUsers('private-x'), /presence-/);
  await rejectsInput(sdk.sendToUser('', 'e', {}), /User id/);
  await rejectsInput(sdk.terminateUserConnections('x'.repeat(129)), /longer than 128/);
  assert.throws(() => sdk.authorizeChannel('1.2.3', 'private-a'), /Invalid socket id/);
  assert.throws(() => sdk.authorizeChannel('1.2', 'public'), /need no authorization/);
  assert.throws(() => sdk.authorizeChannel('1.2', 'private-a', { user_id: 'u' }), /only for presence-/);
  assert.throws(() => sdk.authorizeChannel('1.2', 'presence-a', { user_id: '' }), /User id/);
  assert.throws(() => sdk.authorizeChannel('1.2', 'presence-a', { user_id: 'u', user_info: { big: 'x'.repeat(1100) } }), /limit is 1024/);
  assert.throws(() => sdk.authenticateUser('1.2', { id: 'u', watchlist: Array.from({ length: 101 }, (_, i) => `w${i}`) }), /limit is 100/);
  assert.throws(() => new Herald({ appId: '1', key: 'k', secret: '' }), /secret/);

  // Limits follow the app's configuration when given.
  const big = new Herald({ appId: '1', key: 'k', secret: 'secret-1', port: 9, limits: { maxEventBytes: 100 } });
  t.after(() => big.close());
  await rejectsInput(big.trigger('c', 'e', 'x'.repeat(101)), /limit is 100/);
});

// ------------------------------------------------------------------ errors, keep-alive, timeouts

void test('Herald’s refusals become HeraldRequestError with status and body', { timeout: 20_000 }, async (t) => {
  const { h } = await setup(t);
  const wrongSecret = sdkFor(h, { ...h.app, secret: 'not-the-secret' });
  const wrongApp = sdkFor(h, { ...h.app, id: '424242' });
  t.after(() => {
    wrongSecret.close();
    wrongApp.close();
  });
  await assert.rejects(wrongSecret.trigger('c', 'e', {}), (err: unknown) => {
    assert.ok(err instanceof HeraldRequestError);
    assert.equal(err.status, 401);
    assert.match(err.body ?? '', /Invalid signature/);
    assert.equal(err.serverMessage, 'Invalid signature');
    assert.match(err.message, /401: Invalid signature/);
    return true;
  });
  await assert.rejects(wrongApp.getChannels(), (err: unknown) => err instanceof HeraldRequestError && err.status === 404);
  // A limit the SDK did not know about (the app allows less than the default) is Herald's 413.
  const { h: small } = await setup(t, [{ maxEventBytes: 100 }]);
  const sdk = sdkFor(small);
  t.after(() => sdk.close());
  await assert.rejects(sdk.trigger('c', 'e', 'x'.repeat(200)), (err: unknown) => err instanceof HeraldRequestError && err.status === 413);
});

void test('requests reuse one keep-alive socket and time out when Herald hangs', { timeout: 20_000 }, async (t) => {
  const { h, sdk } = await setup(t);
  let sockets = 0;
  h.server.http.server.on('connection', () => sockets++);
  for (let i = 0; i < 5; i++) await sdk.trigger('c', 'e', { i });
  await sdk.getChannels();
  assert.equal(sockets, 1, 'six sequential requests use one socket');

  const silent = http.createServer(() => undefined);
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    silent.closeAllConnections();
    silent.close();
  });
  const slow = new Herald({ appId: '1', key: 'k', secret: 'secret-1', port: (silent.address() as AddressInfo).port, timeoutMs: 200 });
  t.after(() => slow.close());
  const started = Date.now();
  await assert.rejects(slow.trigger('c', 'e', {}), (err: unknown) => err instanceof HeraldRequestError && /timed out after 200 ms/.test(err.message) && err.status === undefined);
  assert.ok(Date.now() - started < 2000);

  const refused = new Herald({ appId: '1', key: 'k', secret: 'secret-1', port: 9, timeoutMs: 2000 });
  t.after(() => refused.close());
  await assert.rejects(refused.trigger('c', 'e', {}), (err: unknown) => err instanceof HeraldRequestError && /Request failed/.test(err.message) && err.cause instanceof Error);
});

// ------------------------------------------------------------------ channel queries

void test('getChannels, getChannel and getUsers report live state', { timeout: 20_000 }, async (t) => {
  const { h, sdk } = await setup(t);
  const a = await connect(t, h);
  const b = await connect(t, h);
  await subscribe(a, 'news');
  await subscribe(a, 'presence-room', sdk.authorizeChannel(a.socketId, 'presence-room', { user_id: 'ada', user_info: { name: 'Ada' } }));
  await subscribe(b, 'presence-room', sdk.authorizeChannel(b.socketId, 'presence-room', { user_id: 'bob' }));
  await subscribe(b, 'cache-prices');

  assert.deepEqual(Object.keys((await sdk.getChannels()).channels).sort(), ['cache-prices', 'news', 'presence-room']);
  assert.deepEqual(await sdk.getChannels({ prefix: 'presence-', info: 'user_count' }), { channels: { 'presence-room': { user_count: 2 } } });
  assert.deepEqual(await sdk.getChannels({ prefix: 'news', info: ['subscription_count'] }), { channels: { news: { subscription_count: 1 } } });

  assert.deepEqual(await sdk.getChannel('news', { info: 'subscription_count' }), { occupied: true, subscription_count: 1 });
  assert.deepEqual(await sdk.getChannel('empty'), { occupied: false });
  assert.deepEqual(await sdk.getChannel('presence-room', { info: ['user_count', 'subscription_count'] }), { occupied: true, user_count: 2, subscription_count: 2 });
  assert.deepEqual(await sdk.getChannel('cache-prices', { info: 'cache' }), { occupied: true, cache: null });
  await sdk.trigger('cache-prices', 'tick', { p: 1 });
  const cached = await sdk.getChannel('cache-prices', { info: 'cache' });
  assert.equal(cached.cache?.data, '{"p":1}');

  const users = await sdk.getUsers('presence-room');
  assert.deepEqual(users.users.map((u) => u.id).sort(), ['ada', 'bob']);

  // Names with characters that need care in a path and query still sign correctly.
  await subscribe(a, 'odd=name@x,y.z;w');
  assert.deepEqual(await sdk.getChannel('odd=name@x,y.z;w'), { occupied: true });
  assert.deepEqual(Object.keys((await sdk.getChannels({ prefix: 'odd=name@' })).channels), ['odd=name@x,y.z;w']);
});

void test('low-level get and post sign arbitrary routes', { timeout: 20_000 }, async (t) => {
  const { sdk } = await setup(t);
  const res = await sdk.get<{ channels: Record<string, unknown> }>({ path: '/channels', params: { filter_by_prefix: 'x' } });
  assert.equal(res.status, 200);
  assert.deepEqual(res.body, { channels: {} });
  const posted = await sdk.post({ path: '/events', body: { name: 'e', channels: ['c'], data: '{}' } });
  assert.equal(posted.status, 200);
  await assert.rejects(sdk.get({ path: '/channels', params: { auth_key: 'x' } }), /cannot be overridden/);
});

// ------------------------------------------------------------------ channel auth against the server

void test('authorizeChannel signatures are accepted by Herald for private, presence and encrypted channels', { timeout: 20_000 }, async (t) => {
  const { h, sdk } = await setup(t);
  const c = await connect(t, h);
  await subscribe(c, 'private-a', sdk.authorizeChannel(c.socketId, 'private-a'));
  await subscribe(c, 'private-encrypted-a', sdk.authorizeChannel(c.socketId, 'private-encrypted-a'));
  await subscribe(c, 'presence-a', sdk.authorizeChannel(c.socketId, 'presence-a', { user_id: 7, user_info: { name: 'Seven' } }));
  const users = await sdk.getUsers('presence-a');
  assert.deepEqual(users.users, [{ id: '7' }]);
  // A signature for another socket is refused.
  const other = await connect(t, h);
  other.send({ event: 'pusher:subscribe', data: { channel: 'private-a', ...sdk.authorizeChannel(c.socketId, 'private-a') } });
  assert.equal((await other.next('pusher:subscription_error')).channel, 'private-a');
});

void test('client events between two sockets on a channel authorized by the SDK', { timeout: 20_000 }, async (t) => {
  const { h, sdk } = await setup(t);
  const a = await connect(t, h);
  const b = await connect(t, h);
  await subscribe(a, 'presence-chat', sdk.authorizeChannel(a.socketId, 'presence-chat', { user_id: 'a' }));
  await subscribe(b, 'presence-chat', sdk.authorizeChannel(b.socketId, 'presence-chat', { user_id: 'b' }));
  a.send({ event: 'client-typing', channel: 'presence-chat', data: { typing: true } });
  const got = await b.next('client-typing');
  assert.deepEqual(got.data, { typing: true });
  assert.equal(got.user_id, 'a');
});

// ------------------------------------------------------------------ users

void test('authenticateUser, sendToUser and terminateUserConnections', { timeout: 20_000 }, async (t) => {
  const { h, sdk } = await setup(t);
  const c = await connect(t, h);
  const plain = await connect(t, h);
  c.send({ event: 'pusher:signin', data: sdk.authenticateUser(c.socketId, { id: 'user 1/ü', user_info: { name: 'U' } }) });
  const ok = await c.next('pusher:signin_success');
  assert.equal(JSON.parse((ok.data as { user_data: string }).user_data).id, 'user 1/ü');
  // As pusher-js does after signin: the user's own channel carries sendToUser events.
  await subscribe(c, '#server-to-user-user 1/ü');

  await sdk.sendToUser('user 1/ü', 'hello', { hi: true });
  const m = await c.next('hello');
  assert.equal(m.channel, '#server-to-user-user 1/ü');
  assert.deepEqual(m.data, { hi: true });

  const res = await sdk.terminateUserConnections('user 1/ü');
  assert.equal(res.status, 200);
  const closed = await c.closed;
  assert.equal(closed.code, 4009);
  // A connection that is not signed in as that user stays open.
  await roundTrip(plain);
});

void test('a signed-in pusher-js client receives sendToUser events', { timeout: 20_000 }, async (t) => {
  const { h, sdk } = await setup(t);
  const client = pusherJs(h, { user: { id: 'u-42' } });
  t.after(() => client.disconnect());
  await connected(client);
  client.signin();
  await client.user.signinDonePromise;
  const got = nextEvent(client.user, 'notice');
  // The server-to-user subscription follows signin; retry until it has landed.
  const timer = setInterval(() => void sdk.sendToUser('u-42', 'notice', { ok: 1 }).catch(() => undefined), 100);
  t.after(() => clearInterval(timer));
  assert.deepEqual(await got, { ok: 1 });
});

// ------------------------------------------------------------------ webhooks

function webhookFor(app: AppOptions, events: ServerWebhookEvent[], timeMs = 1700000000000) {
  return buildWebhookRequest({ key: app.key, secret: app.secret, events, timeMs, userAgent: 'Herald test' });
}

void test('webhook(): valid requests from Herald’s webhook builder verify and give typed events', () => {
  const app = { id: '1', key: 'wh-key', secret: 'wh-secret-1' } as AppOptions;
  const sdk = new Herald({ appId: app.id, key: app.key, secret: app.secret });
  const events: ServerWebhookEvent[] = [
    { name: 'channel_occupied', channel: 'news' },
    { name: 'member_added', channel: 'presence-a', user_id: 'u1' },
    { name: 'client_event', channel: 'private-a', event: 'client-x', data: '{"a":1}', socket_id: '1.2' },
    { name: 'subscription_count', channel: 'news', subscription_count: 3 },
  ];
  const req = webhookFor(app, events);
  const wh = sdk.webhook({ headers: req.headers, rawBody: req.body });
  assert.ok(wh.isValid());
  assert.deepEqual(wh.getEvents(), events);
  assert.equal(wh.getTime().getTime(), 1700000000000);
  const typed = wh.getEvents()[2];
  if (typed.name === 'client_event') assert.equal(typed.socket_id, '1.2');
  else assert.fail('expected a client_event');

  // As a Buffer, with headers in any case, and with a charset parameter.
  const upper = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k.toUpperCase(), v]));
  assert.ok(sdk.webhook({ headers: upper, rawBody: Buffer.from(req.body) }).isValid());
  assert.ok(sdk.webhook({ headers: { ...req.headers, 'content-type': 'application/json; charset=utf-8' }, rawBody: req.body }).isValid());
  // The pusher package accepts the same request: the format is Pusher's.
  assert.ok(new PusherServer({ appId: app.id, key: app.key, secret: app.secret, host: '127.0.0.1' }).webhook({ headers: req.headers, rawBody: req.body }).isValid());
  sdk.close();
});

void test('webhook(): wrong key, signature, body or content type are rejected and the getters throw', () => {
  const app = { id: '1', key: 'wh-key', secret: 'wh-secret-1' } as AppOptions;
  const sdk = new Herald({ appId: app.id, key: app.key, secret: app.secret });
  const req = webhookFor(app, [{ name: 'channel_vacated', channel: 'news' }]);
  const cases: [string, Record<string, string>, string][] = [
    ['wrong key', { ...req.headers, 'x-pusher-key': 'other' }, req.body],
    ['wrong signature', { ...req.headers, 'x-pusher-signature': createHmac('sha256', 'other-secret').update(req.body).digest('hex') }, req.body],
    ['tampered body', req.headers, req.body.replace('news', 'newz')],
    ['text/plain', { ...req.headers, 'content-type': 'text/plain' }, req.body],
    ['no signature', Object.fromEntries(Object.entries(req.headers).filter(([k]) => k !== 'x-pusher-signature')), req.body],
    ['not JSON', { ...req.headers, 'x-pusher-signature': createHmac('sha256', app.secret).update('nope').digest('hex') }, 'nope'],
  ];
  for (const [why, headers, body] of cases) {
    const wh = sdk.webhook({ headers, rawBody: body });
    assert.equal(wh.isValid(), false, why);
    assert.throws(() => wh.getEvents(), HeraldWebhookError, why);
  }
  // Another app's credentials may be accepted explicitly (secret rotation).
  const other = webhookFor({ ...app, secret: 'rotated-secret' }, [{ name: 'cache_miss', channel: 'cache-x' }]);
  const wh = sdk.webhook({ headers: other.headers, rawBody: other.body });
  assert.equal(wh.isValid(), false);
  assert.ok(wh.isValid({ key: app.key, secret: 'rotated-secret' }));
  assert.deepEqual(wh.getEvents({ key: app.key, secret: 'rotated-secret' }), [{ name: 'cache_miss', channel: 'cache-x' }]);
  sdk.close();
});

void test('webhook(): a real webhook posted by Herald verifies', { timeout: 20_000 }, async (t) => {
  const received: { headers: http.IncomingHttpHeaders; body: Buffer }[] = [];
  let notify: () => void = () => undefined;
  const receiver = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks) });
      res.end('ok');
      notify();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    receiver.closeAllConnections();
    receiver.close();
  });
  const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  const { h, sdk } = await setup(t, [{ webhooks: [{ url, events: ['channel_occupied'], batch: false }] }]);
  const arrived = new Promise<void>((resolve) => (notify = resolve));
  const c = await connect(t, h);
  await subscribe(c, 'hooked');
  const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error('no webhook from Herald within 5 s (is the webhook sender wired into the server?)')), 5000).unref());
  await Promise.race([arrived, timeout]);
  const wh = sdk.webhook({ headers: received[0].headers, rawBody: received[0].body });
  assert.ok(wh.isValid());
  assert.deepEqual(wh.getEvents(), [{ name: 'channel_occupied', channel: 'hooked' }]);
});

// ------------------------------------------------------------------ push tokens (no push API needed)

void test('generatePushToken is an HS256 JWT for the user, valid at most 24 h', () => {
  const sdk = new Herald({ appId: '77', key: 'k', secret: 'push-secret' });
  const { token } = sdk.generatePushToken('user-9');
  const [h, c, s] = token.split('.');
  assert.deepEqual(JSON.parse(Buffer.from(h, 'base64url').toString()), { alg: 'HS256', typ: 'JWT' });
  const claims = JSON.parse(Buffer.from(c, 'base64url').toString()) as { sub: string; exp: number; iat: number; iss: string };
  assert.equal(claims.sub, 'user-9');
  assert.equal(claims.iss, '77');
  const now = Math.floor(Date.now() / 1000);
  assert.ok(claims.exp > now && claims.exp <= now + 24 * 3600 + 1);
  assert.equal(s, createHmac('sha256', 'push-secret').update(`${h}.${c}`).digest('base64url'));
  const short = JSON.parse(Buffer.from(sdk.generatePushToken('u', 60).token.split('.')[1], 'base64url').toString()) as { exp: number; iat: number };
  assert.equal(short.exp - short.iat, 60);
  assert.throws(() => sdk.generatePushToken('u', 24 * 3600 + 1), /1-86400/);
  assert.throws(() => sdk.generatePushToken(''), /User id/);
  sdk.close();
});
