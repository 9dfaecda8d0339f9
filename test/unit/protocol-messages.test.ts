import { test } from 'node:test';
import assert from 'node:assert/strict';
import { channelFrames, closeAction, dataObject, decodeClientFrame, decodeServerFrame, encodeData, encodeFrame, eventNameProblem, presenceSubscribedFrameOf, utf8Length } from '../../sdk/protocol';

test('server frames double-encode data as a JSON string (protocol.md §1.2)', () => {
  const f = encodeFrame('pusher:connection_established', { socket_id: '1.2', activity_timeout: 30 });
  assert.equal(f, '{"event":"pusher:connection_established","data":"{\\"socket_id\\":\\"1.2\\",\\"activity_timeout\\":30}"}');
  const e = encodeFrame('my-event', '{"a":1}', 'ch', 'u1');
  assert.deepEqual(JSON.parse(e), { event: 'my-event', channel: 'ch', data: '{"a":1}', user_id: 'u1' });
  assert.equal(encodeData('plain'), 'plain');
  assert.equal(encodeData(undefined), '{}');
  assert.deepEqual(decodeServerFrame(e), { event: 'my-event', channel: 'ch', data: { a: 1 }, user_id: 'u1' });
  assert.deepEqual(decodeServerFrame(encodeFrame('x', 'not json')).data, 'not json');
});

test('client frames: objects with a string event, anything else refused with a reason', () => {
  assert.deepEqual(decodeClientFrame('{"event":"pusher:ping","data":{}}'), { ok: true, message: { event: 'pusher:ping', channel: undefined, data: {} } });
  for (const [text, reason] of [
    ['{', /Invalid JSON/],
    ['[]', /JSON object/],
    ['null', /JSON object/],
    ['"x"', /JSON object/],
    ['{"data":{}}', /string `event`/],
    ['{"event":""}', /string `event`/],
    ['{"event":"x","channel":5}', /channel/],
  ] as const) {
    const r = decodeClientFrame(text);
    assert.equal(r.ok, false, text);
    if (!r.ok) assert.match(r.reason, reason);
  }
});

test('client data may be an object or its JSON string', () => {
  assert.deepEqual(dataObject({ channel: 'a' }), { channel: 'a' });
  assert.deepEqual(dataObject('{"channel":"a"}'), { channel: 'a' });
  assert.equal(dataObject('nope'), null);
  assert.equal(dataObject([1]), null);
  assert.equal(dataObject(null), null);
});

test('close code → client action, as pusher-js getCloseAction', () => {
  assert.equal(closeAction(4000), 'tls_only');
  for (const c of [4001, 4003, 4004, 4005, 4006, 4007, 4008, 4009]) assert.equal(closeAction(c), 'refused', String(c));
  assert.equal(closeAction(4100), 'backoff');
  for (const c of [4200, 4201, 4202]) assert.equal(closeAction(c), 'retry');
  assert.equal(closeAction(4301), 'refused');
  assert.equal(closeAction(1002), 'backoff');
  assert.equal(closeAction(1006), 'reconnect');
});

test('event names and UTF-8 lengths', () => {
  assert.equal(eventNameProblem('e'), null);
  assert.match(eventNameProblem('') ?? '', /non-empty/);
  assert.match(eventNameProblem('x'.repeat(201)) ?? '', /200/);
  for (const s of ['abc', 'é', '€', '😀', 'a😀b€']) assert.equal(utf8Length(s), Buffer.byteLength(s), s);
});

test('the presence subscription_succeeded frame built from escaped parts is byte for byte encodeFrame\'s', () => {
  const members = new Map<string, string>([
    ['1', '{}'],
    ['ann', '{"name":"Ann","tags":["a","b"]}'],
    ['quote"d\\', '{"q":"say \\"hi\\"","bs":"\\\\"}'],
    ['ü😀', '{"emoji":"😀","ctl":"\\u0001\\n\\t","lone":"\\ud800"}'],
    ['</script>', 'null'],
  ]);
  for (const subset of [new Map<string, string>(), new Map([...members].slice(0, 1)), members]) {
    const ids = [...subset.keys()];
    const hash = '{' + [...subset].map(([id, info]) => `${JSON.stringify(id)}:${info}`).join(',') + '}';
    const data = `{"presence":{"ids":${JSON.stringify(ids)},"hash":${hash},"count":${subset.size}}}`;
    JSON.parse(data); // the fixture itself is valid JSON
    assert.equal(presenceSubscribedFrameOf('presence-x', subset), encodeFrame('pusher_internal:subscription_succeeded', data, 'presence-x'));
  }
});

test('channelFrames gives each channel the bytes encodeFrame would', () => {
  const datas: unknown[] = [undefined, '', '{"a":1}', 'plain "quoted" \\ text', 'ctl \u0001\n\t lone \ud800 emoji 😀 €', { nested: ['x', 1, null] }, 42];
  const events = ['my-event', 'ev"en\\t', 'ü😀'];
  const channels = ['ch', 'private-a', 'presence-room', '#server-to-user-u"1', 'é-😀', 'a'.repeat(200)];
  for (const event of events) {
    for (const data of datas) {
      const frameFor = channelFrames(event, data);
      for (const channel of channels) assert.equal(frameFor(channel), encodeFrame(event, data, channel), `${event} ${String(data)} ${channel}`);
    }
  }
});
