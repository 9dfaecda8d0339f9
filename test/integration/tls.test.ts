import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import PusherServer from 'pusher';
import { startHerald } from '../helpers/herald';
import { RawClient, connected, nextEvent, pusherJs } from '../helpers/clients';

/** A throwaway self-signed certificate for 127.0.0.1, made with the openssl CLI. */
function selfSigned(dir: string): { cert: string; key: string } {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', key, '-out', cert,
  ], { stdio: 'pipe' });
  return { cert, key };
}

function httpsGet(url: string, ca: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

test('tls: HTTPS, wss:// and the REST API on the same port', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-tls-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const tls = selfSigned(dir);
  const ca = readFileSync(tls.cert);
  const h = await startHerald({ options: { tls } });
  t.after(() => h.stop());

  const health = await httpsGet(`https://127.0.0.1:${h.port}/health`, ca);
  assert.deepEqual([health.status, JSON.parse(health.body)], [200, { ok: true }]);

  // A raw wss:// client that trusts the certificate.
  const raw = new RawClient(`wss://127.0.0.1:${h.port}/app/${h.app.key}?protocol=7&client=js&version=8.4.0`, { ca });
  t.after(() => raw.close());
  await raw.next('pusher:connection_established');
  raw.send({ event: 'pusher:subscribe', data: { channel: 'secure' } });
  await raw.next('pusher_internal:subscription_succeeded');

  // pusher-js in Node (faye-websocket) cannot be given a CA, so certificate checks are off for its connect only.
  const previous = process.env.NODE_TLS_REJECT_UNAUTHORIZED;
  process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
  const restore = () => {
    if (previous === undefined) delete process.env.NODE_TLS_REJECT_UNAUTHORIZED;
    else process.env.NODE_TLS_REJECT_UNAUTHORIZED = previous;
  };
  t.after(restore);
  const client = pusherJs(h, { extra: { forceTLS: true, wssPort: h.port } });
  t.after(() => client.disconnect());
  await connected(client);
  restore();
  const channel = client.subscribe('secure');
  await nextEvent(channel, 'pusher:subscription_succeeded');

  // The server SDK over HTTPS, trusting the certificate through its agent.
  const sdk = new PusherServer({
    appId: h.app.id, key: h.app.key, secret: h.app.secret, host: '127.0.0.1', port: String(h.port), useTLS: true, agent: new https.Agent({ ca }),
  });
  const viaPusherJs = nextEvent<{ over: string }>(channel, 'hello');
  await sdk.trigger('secure', 'hello', { over: 'tls' });
  assert.deepEqual(await viaPusherJs, { over: 'tls' });
  const viaRaw = await raw.next('hello');
  assert.deepEqual(viaRaw.data, { over: 'tls' });
});

test('tls: an unreadable certificate stops start-up naming the field', async () => {
  await assert.rejects(startHerald({ options: { tls: { cert: '/nonexistent/cert.pem', key: '/nonexistent/key.pem' } } }), /tls\.cert: cannot read \/nonexistent\/cert\.pem/);
});
