import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// test/run.js (npm test) is what CI trusts: a stuck file must fail by name within its deadline, and CI=true
// must not count a skipped test as passing. These run it on small test files of their own.
const RUNNER = join(__dirname, '..', '..', '..', 'test', 'run.js');

function withoutTestContext(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  return env;
}

function runSuite(t: { after(fn: () => void): void }, files: Record<string, string>, env: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'herald-runner-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const [name, body] of Object.entries(files)) writeFileSync(join(dir, name), `'use strict';\nconst { test } = require('node:test');\n${body}\n`);
  return new Promise<{ code: number | null; output: string; ms: number }>((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, [RUNNER], {
      // Without NODE_TEST_CONTEXT: node's runner, seeing it, would take the files for nested tests and skip them.
      env: { ...withoutTestContext(), CI: 'false', TEST_ROOT: dir, TEST_FILE_TIMEOUT_MS: '4000', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (b: Buffer) => (output += b.toString()));
    child.stderr.on('data', (b: Buffer) => (output += b.toString()));
    child.on('close', (code) => resolve({ code, output, ms: Date.now() - started }));
  });
}

test('the runner sums every file and exits 0 when all pass', { timeout: 30_000 }, async (t) => {
  const r = await runSuite(t, {
    'a.test.js': "test('one', () => {}); test('two', () => {});",
    'b.test.js': "test('three', async () => { await new Promise((r) => setTimeout(r, 50)); });",
  });
  assert.equal(r.code, 0, r.output);
  assert.match(r.output, /2 files in [\d.]+ s: tests 3, pass 3, fail 0, cancelled 0, skipped 0, todo 0/);
});

test('a failing test fails the run', { timeout: 30_000 }, async (t) => {
  const r = await runSuite(t, { 'a.test.js': "test('ok', () => {}); test('broken', () => { throw new Error('no'); });" });
  assert.equal(r.code, 1, r.output);
  assert.match(r.output, /tests 2, pass 1, fail 1/);
});

test('a file whose process never exits after its tests is killed at its deadline and fails by name', { timeout: 30_000 }, async (t) => {
  const r = await runSuite(t, {
    'leaky.test.js': "test('passes, but leaves a timer running', () => { setInterval(() => {}, 1000); });",
    'fine.test.js': "test('fine', () => {});",
  });
  assert.equal(r.code, 1, r.output);
  assert.match(r.output, /leaky\.test\.js: did not finish within 4 s; killed/);
  assert.ok(r.ms < 20_000, `took ${r.ms} ms`);
  // The other file still ran and counted.
  assert.match(r.output, /pass [12],/);
});

test('past TEST_TIMEOUT_MS node itself cancels a file whose process never exits, and the run fails', { timeout: 30_000 }, async (t) => {
  const r = await runSuite(t, { 'leaky.test.js': "test('passes, but leaves a timer running', () => { setInterval(() => {}, 1000); });" }, {
    TEST_TIMEOUT_MS: '2000',
    TEST_FILE_TIMEOUT_MS: '25000',
  });
  assert.equal(r.code, 1, r.output);
  assert.ok(r.ms < 15_000, `took ${r.ms} ms: the file was not cancelled at its limit`);
  assert.doesNotMatch(r.output, /killed/);
});

test('with CI=true a skipped test fails the run; without CI it does not', { timeout: 30_000 }, async (t) => {
  const files = { 'a.test.js': "test('ok', () => {}); test('later', { skip: 'no service' }, () => {});" };
  const ci = await runSuite(t, files, { CI: 'true' });
  assert.equal(ci.code, 1, ci.output);
  assert.match(ci.output, /1 skipped and 0 todo tests: CI=true counts them as failures/);
  const local = await runSuite(t, files);
  assert.equal(local.code, 0, local.output);
  assert.match(local.output, /skipped 1/);
});
