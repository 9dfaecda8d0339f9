import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { channelAuthString, isSocketId, restStringToSign, splitAuth, userAuthString } from '../../sdk/protocol';
import { hmacSha256, hmacSha256Hex, md5Hex, safeEqual } from '../../sdk/protocol/node/hmac';
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

// hmacSha256 / hmacSha256Hex build RFC 2104 from two one-shot digests, so they are checked against RFC 4231's
// vectors and against node's own createHmac at every key and message length around the 64-byte block.
test('HMAC-SHA256: RFC 4231 vectors', () => {
  const vectors: [Buffer, Buffer, string][] = [
    [Buffer.alloc(20, 0x0b), Buffer.from('Hi There'), 'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7'],
    [Buffer.from('Jefe'), Buffer.from('what do ya want for nothing?'), '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843'],
    [Buffer.alloc(20, 0xaa), Buffer.alloc(50, 0xdd), '773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe'],
    // Keys longer than the block are hashed first (test cases 6 and 7).
    [Buffer.alloc(131, 0xaa), Buffer.from('Test Using Larger Than Block-Size Key - Hash Key First'), '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54'],
    [
      Buffer.alloc(131, 0xaa),
      Buffer.from('This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.'),
      '9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2',
    ],
  ];
  for (const [key, data, mac] of vectors) assert.equal(hmacSha256(key, data).toString('hex'), mac);
});

test('HMAC-SHA256 agrees with createHmac for every length around the block, strings and bytes', () => {
  const lengths = [0, 1, 31, 32, 55, 56, 63, 64, 65, 127, 128, 129, 1000];
  for (const kl of lengths) {
    for (const dl of lengths) {
      const key = randomBytes(kl);
      const data = randomBytes(dl);
      const want = createHmac('sha256', key).update(data).digest();
      assert.deepEqual(hmacSha256(key, data), want, `key ${kl} bytes, data ${dl} bytes`);
    }
  }
  // Strings are UTF-8, as createHmac takes them; app secrets are cached by value, so a second use agrees too.
  for (const [secret, data] of [['7ad3773142a6692b25b8', 'POST\n/apps/3/events\nauth_key=x'], ['sécret-ü-🔑', 'données ✓ 🚀'], ['', ''], ['k'.repeat(100), 'x']]) {
    const want = createHmac('sha256', secret).update(data).digest('hex');
    assert.equal(hmacSha256Hex(secret, data), want);
    assert.equal(hmacSha256Hex(secret, data), want);
    assert.equal(hmacSha256Hex(secret, Buffer.from(data)), want);
    assert.equal(hmacSha256(secret, data).toString('hex'), want);
  }
});

test('HMAC-SHA256 with more app secrets than the pad cache holds stays right', () => {
  const secrets = Array.from({ length: 600 }, (_, i) => `secret-${i}`);
  for (let round = 0; round < 2; round++) {
    for (const s of secrets) assert.equal(hmacSha256Hex(s, `msg-${s}`), createHmac('sha256', s).update(`msg-${s}`).digest('hex'));
  }
});
