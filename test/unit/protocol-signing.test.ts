import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { channelAuthString, isSocketId, restStringToSign, splitAuth, userAuthString } from '../../sdk/protocol';
import { hmacSha256Hex, md5Hex, safeEqual } from '../../sdk/protocol/node/hmac';
import { verifyRequest } from '../../server/http/verify-request';

// The vectors of protocol.md §2 and §3.
const key = '278d425bdf160c739803';
const secret = '7ad3773142a6692b25b8';

test('private channel signature vector', () => {
  assert.equal(
    hmacSha256Hex(secret, channelAuthString('1234.1234', 'private-foobar')),
    '58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4',
  );
});

test('user signin signature vector', () => {
  assert.equal(
    hmacSha256Hex(secret, userAuthString('1234.1234', '{"id":"12345"}')),
    '4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba',
  );
});

test('presence signature vectors (including the docs misprint)', () => {
  assert.equal(
    hmacSha256Hex(secret, channelAuthString('1234.1234', 'presence-foobar', '{"user_id":10,"user_info":{"name":"Mr. Pusher"}}')),
    'afaed3695da2ffd16931f457e338e6c9f2921fa133ce7dac49f529792be6304c',
  );
  assert.equal(
    hmacSha256Hex(secret, channelAuthString('1234.1234', 'presence-foobar', '{"user_id":10,"user_info":{"name":"Mr. Channels"}}')),
    '31935e7d86dba64c2a90aed31fdc61869f9b22ba9d8863bba239c03ca481bc80',
  );
});

test('REST request signing vector', () => {
  const body = '{"name":"foo","channels":["project-3"],"data":"{\\"some\\":\\"data\\"}"}';
  assert.equal(md5Hex(body), 'ec365a775a4cd0599faeb73354201b6f');
  const params = { auth_key: key, auth_timestamp: '1353088179', auth_version: '1.0', body_md5: 'ec365a775a4cd0599faeb73354201b6f' };
  const toSign = restStringToSign('post', '/apps/3/events', params);
  assert.equal(toSign, `POST\n/apps/3/events\nauth_key=${key}&auth_timestamp=1353088179&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f`);
  const sig = hmacSha256Hex(secret, toSign);
  assert.equal(sig, 'da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c');

  const query = { ...params, auth_signature: sig };
  const app = { key, secret };
  assert.equal(verifyRequest(app, 'POST', '/apps/3/events', query, body, 1353088179), null);
  assert.equal(verifyRequest(app, 'POST', '/apps/3/events', query, body, 1353088179 + 600), null);
  assert.equal(verifyRequest(app, 'POST', '/apps/3/events', query, body, 1353088179 + 601), 'AUTH_TIMESTAMP');
  assert.equal(verifyRequest(app, 'POST', '/apps/3/events', query, body, 1353088179 - 601), 'AUTH_TIMESTAMP');
  assert.equal(verifyRequest(app, 'POST', '/apps/3/events', query, body + ' ', 1353088179), 'AUTH_BODY_MD5');
  assert.equal(verifyRequest(app, 'POST', '/apps/4/events', query, body, 1353088179), 'AUTH_SIGNATURE');
  assert.equal(verifyRequest({ key: 'other', secret }, 'POST', '/apps/3/events', query, body, 1353088179), 'AUTH_KEY');
  assert.equal(verifyRequest(app, 'POST', '/apps/3/events', { ...query, auth_version: '2.0' }, body, 1353088179), 'AUTH_VERSION');
  const { body_md5: _omit, ...noMd5 } = query;
  assert.equal(verifyRequest(app, 'POST', '/apps/3/events', noMd5, body, 1353088179), 'AUTH_BODY_MD5');
  const { auth_signature: _s, ...unsigned } = query;
  assert.equal(verifyRequest(app, 'POST', '/apps/3/events', unsigned, body, 1353088179), 'AUTH_MISSING');
});

test('sorting and case of signed query keys follow pusher-http-node', () => {
  assert.equal(restStringToSign('get', '/p', { b: '2', A: '1', auth_signature: 'x', info: 'user_count,subscription_count' }), 'GET\n/p\na=1&b=2&info=user_count,subscription_count');
  // Keys equal but for case: pusher-http-node lists both, each with the later value; the query is not escaped.
  assert.equal(restStringToSign('post', '/p', { a: '1', A: '2', z: 'x y', Auth_Signature: 's' }), 'POST\n/p\na=2&a=2&z=x y');
  assert.equal(restStringToSign('get', '/p', {}), 'GET\n/p\n');
});

test('auth values, socket ids and constant-time compare', () => {
  assert.deepEqual(splitAuth('k:s:x'), { key: 'k', signature: 's:x' });
  assert.equal(splitAuth('nocolon'), null);
  assert.equal(splitAuth(':sig'), null);
  assert.equal(splitAuth(5), null);
  assert.equal(isSocketId('123.456'), true);
  assert.equal(isSocketId('123.'), false);
  assert.equal(isSocketId('a.b'), false);
  assert.equal(safeEqual('abc', 'abc'), true);
  assert.equal(safeEqual('abc', 'abd'), false);
  assert.equal(safeEqual('abc', 'abcd'), false);
});

test('encrypted channel shared secret vector (protocol.md §1.12)', () => {
  const master = Buffer.from('nxzvbGF+f8FGhk/jOaZvgMle1tqxzF/VfUZLBLhhaH0=', 'base64');
  const secretBytes = createHash('sha256').update(Buffer.concat([Buffer.from('private-encrypted-test'), master])).digest('base64');
  assert.equal(secretBytes, 'fFP8MQ82F45AsfxK0pxacT8cuu8DFVZHIIkA/0odyXA=');
});
