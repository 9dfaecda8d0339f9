import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import PusherServer from 'pusher';
import { buildWebhookRequest, targetAccepts } from '../../server/webhooks/webhook-request';
import { retryDelayMs } from '../../server/webhooks/WebhookSender';
import type { WebhookTarget } from '../../server/options/Options';

const key = 'app-key';
const secret = 'app-secret-123';
const sdk = new PusherServer({ appId: '1', key, secret, host: '127.0.0.1' });

void test('the body is {time_ms, events} and the signature is the hex HMAC-SHA256 of exactly those bytes', () => {
  const { body, headers } = buildWebhookRequest({
    key,
    secret,
    timeMs: 1700000000123,
    userAgent: 'Herald-Webhooks/1.2.3',
    events: [
      { name: 'channel_occupied', channel: 'lobby' },
      { name: 'client_event', channel: 'presence-r', event: 'client-x', data: '{"t":"héllo ✓"}', socket_id: '1.2', user_id: 'u1' },
      { name: 'subscription_count', channel: 'c', subscription_count: 3 },
    ],
  });
  assert.equal(
    body,
    '{"time_ms":1700000000123,"events":[{"name":"channel_occupied","channel":"lobby"},' +
      '{"name":"client_event","channel":"presence-r","event":"client-x","data":"{\\"t\\":\\"héllo ✓\\"}","socket_id":"1.2","user_id":"u1"},' +
      '{"name":"subscription_count","channel":"c","subscription_count":3}]}',
  );
  assert.equal(headers['x-pusher-signature'], createHmac('sha256', secret).update(Buffer.from(body, 'utf8')).digest('hex'));
  assert.deepEqual(headers, {
    'user-agent': 'Herald-Webhooks/1.2.3',
    'content-type': 'application/json',
    'x-pusher-key': key,
    'x-pusher-signature': headers['x-pusher-signature'],
  });
  const webhook = sdk.webhook({ headers, rawBody: body });
  assert.ok(webhook.isValid());
  assert.equal(webhook.getTime().getTime(), 1700000000123);
  assert.equal(webhook.getEvents().length, 3);
  // One changed byte and the receiver refuses it.
  assert.equal(sdk.webhook({ headers, rawBody: body.replace('lobby', 'lobbz') }).isValid(), false);
});

void test("a target's extra headers are sent but cannot replace the ones that make the request verifiable", () => {
  const { body, headers } = buildWebhookRequest({
    key,
    secret,
    timeMs: 1,
    userAgent: 'Herald-Webhooks/1',
    events: [{ name: 'cache_miss', channel: 'cache-x' }],
    extraHeaders: { Authorization: 'Bearer t', 'X-Pusher-Signature': 'forged', 'Content-Type': 'text/plain', 'X-Pusher-Key': 'other', 'User-Agent': 'mine' },
  });
  assert.equal(headers.authorization, 'Bearer t');
  assert.equal(headers['user-agent'], 'mine');
  assert.equal(headers['content-type'], 'application/json');
  assert.equal(headers['x-pusher-key'], key);
  assert.ok(sdk.webhook({ headers, rawBody: body }).isValid());
});

void test('targetAccepts: event type, then anchored prefix and suffix', () => {
  const t = (extra: Partial<WebhookTarget>): WebhookTarget => ({ url: 'http://x', events: ['channel_occupied', 'client_event'], batch: false, ...extra });
  assert.equal(targetAccepts(t({}), 'channel_occupied', 'anything'), true);
  assert.equal(targetAccepts(t({}), 'channel_vacated', 'anything'), false);
  assert.equal(targetAccepts(t({ channelPrefix: 'private-' }), 'client_event', 'private-a'), true);
  assert.equal(targetAccepts(t({ channelPrefix: 'private-' }), 'client_event', 'presence-private-a'), false);
  assert.equal(targetAccepts(t({ channelSuffix: '-room' }), 'client_event', 'private-room'), true);
  assert.equal(targetAccepts(t({ channelSuffix: '-room' }), 'client_event', 'private-room-2'), false);
  assert.equal(targetAccepts(t({ channelPrefix: 'private-', channelSuffix: '-room' }), 'client_event', 'private-a-room'), true);
  assert.equal(targetAccepts(t({ channelPrefix: 'private-', channelSuffix: '-room' }), 'client_event', 'public-room'), false);
});

void test('retryDelayMs: 1 s, 2 s, 4 s … capped at 60 s, with ±20 % jitter', () => {
  const at = (random: number) => (n: number) => retryDelayMs(n, { random: () => random });
  assert.deepEqual([1, 2, 3, 4, 7, 8, 50].map(at(0.5)), [1000, 2000, 4000, 8000, 60000, 60000, 60000]);
  assert.equal(at(0)(1), 800);
  assert.equal(at(0.999999)(1), 1200);
  assert.equal(at(0)(20), 48000);
  assert.equal(retryDelayMs(3, { baseMs: 50, jitter: 0, random: () => 0.9 }), 200);
});
