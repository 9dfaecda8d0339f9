import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import Fastify from 'fastify';
import pino from 'pino';
import { lazyRequestLogger } from '../../server/logger';

function memoryLogger(level: string): { log: pino.Logger; lines: () => Array<Record<string, unknown>>; children: () => number } {
  const out: string[] = [];
  const log = pino({ level }, new Writable({ write: (chunk: Buffer, _enc, done) => (out.push(chunk.toString()), done()) }));
  let children = 0;
  // Counts every child made (pino children inherit this method, so grandchildren count too).
  const child = log.child;
  log.child = function (this: pino.Logger, ...a: Parameters<pino.Logger['child']>) {
    children++;
    return child.apply(this, a);
  } as pino.Logger['child'];
  return { log, lines: () => out.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>), children: () => children };
}

void test('the request logger makes its pino child only when something is logged, and then logs with the bindings', () => {
  const m = memoryLogger('info');
  const req = lazyRequestLogger(m.log, { reqId: 'req-1' }, {});
  assert.equal(req.level, 'info');
  assert.equal(req.isLevelEnabled('debug'), false);
  req.debug('dropped by level');
  req.trace({ x: 1 }, 'dropped too');
  assert.equal(m.children(), 0, 'nothing logged, no child made');
  assert.deepEqual(m.lines(), []);

  req.error({ code: 42 }, 'request failed');
  req.warn('second');
  assert.equal(m.children(), 1, 'one child, reused');
  const lines = m.lines();
  assert.equal(lines.length, 2);
  assert.equal(lines[0].reqId, 'req-1');
  assert.equal(lines[0].code, 42);
  assert.equal(lines[0].msg, 'request failed');
  assert.equal(lines[1].reqId, 'req-1');

  const nested = req.child({ part: 'b' });
  nested.info('from a grandchild');
  assert.deepEqual([m.lines()[2].reqId, m.lines()[2].part], ['req-1', 'b']);
});

void test('a per-route log level still applies (the child is made with it)', () => {
  const m = memoryLogger('info');
  const req = lazyRequestLogger(m.log, { reqId: 'req-2' }, { level: 'debug' });
  assert.equal(req.level, 'debug');
  req.debug('kept by the route level');
  assert.equal(m.lines()[0]?.msg, 'kept by the route level');
});

void test('fastify accepts it as childLoggerFactory and request.log logs with the request id', async (t) => {
  const m = memoryLogger('info');
  const app = Fastify({ loggerInstance: m.log, childLoggerFactory: lazyRequestLogger as never, disableRequestLogging: true });
  t.after(() => app.close());
  app.get('/quiet', async () => ({ ok: true }));
  app.get('/loud', async (req) => {
    req.log.warn({ what: 'x' }, 'loud route');
    return { ok: true };
  });
  assert.equal((await app.inject({ method: 'GET', url: '/quiet' })).statusCode, 200);
  const before = m.children();
  assert.equal((await app.inject({ method: 'GET', url: '/loud' })).statusCode, 200);
  const line = m.lines().find((l) => l.msg === 'loud route');
  assert.ok(line, JSON.stringify(m.lines()));
  assert.equal(typeof line.reqId, 'string');
  assert.equal(m.children() - before, 1, 'only the route that logged made a child');
});
