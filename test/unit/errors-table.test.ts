import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { closeAction } from '../../sdk/protocol';
import { ERRORS, HeraldError } from '../../server/errors';

const root = join(__dirname, '..', '..', '..');

test('every error has a message, an HTTP status and a Pusher code in a known group', () => {
  for (const [name, e] of Object.entries(ERRORS)) {
    assert.ok(e.message.length > 0, name);
    assert.ok(e.status >= 200 && e.status < 600, name);
    if (e.pusherCode !== null) assert.ok(e.pusherCode >= 4000 && e.pusherCode < 4400, name);
  }
});

test('close codes that refuse a connection make clients stop, the others make them come back', () => {
  const refused = ['APP_NOT_FOUND', 'APP_DISABLED', 'OVER_QUOTA', 'NO_PROTOCOL', 'UNSUPPORTED_PROTOCOL', 'ORIGIN_NOT_ALLOWED', 'USER_AUTH_TIMEOUT', 'TERMINATED'] as const;
  for (const n of refused) assert.equal(closeAction(ERRORS[n].pusherCode), 'refused', n);
  assert.equal(closeAction(ERRORS.SHUTTING_DOWN.pusherCode), 'retry');
  assert.equal(closeAction(ERRORS.PONG_TIMEOUT.pusherCode), 'retry');
  assert.equal(closeAction(ERRORS.OVER_CAPACITY.pusherCode), 'backoff');
  assert.equal(ERRORS.CLIENT_EVENT_RATE.pusherCode, 4301);
});

test('HeraldError carries status, code and retry hint', () => {
  const e = new HeraldError('RATE_LIMITED', 'slow down', 2);
  assert.equal(e.status, 429);
  assert.equal(e.message, 'slow down');
  assert.equal(e.retryAfter, 2);
  assert.equal(new HeraldError('APP_NOT_FOUND').pusherCode, 4001);
});

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) return n === 'public' ? [] : sources(p);
    return n.endsWith('.ts') ? [p] : [];
  });
}

test('no Pusher code is written as a literal outside the error table', () => {
  const codes = new Set<number | null>(Object.values(ERRORS).map((e) => e.pusherCode));
  const offenders: string[] = [];
  for (const file of sources(join(root, 'server'))) {
    if (file.endsWith(join('server', 'errors.ts'))) continue;
    readFileSync(file, 'utf8')
      .split('\n')
      .forEach((line, i) => {
        // Code only: comments and string literals may name codes for people to read.
        const code = line.replace(/\/\/.*$|\/\*.*?(\*\/|$)|^\s*\*.*$/g, '').replace(/'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|`(?:[^`\\]|\\.)*`/g, "''");
        for (const m of code.matchAll(/(?<![\w.])(4\d\d\d)(?![\w.])/g)) {
          if (codes.has(Number(m[1]))) offenders.push(`${file}:${i + 1}: ${line.trim()}`);
        }
      });
  }
  assert.deepEqual(offenders, []);
});
