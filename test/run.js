#!/usr/bin/env node
// Runs every compiled test file under dist/test, each with `node --test` in its own process group, two at a
// time. CI has a hard time limit, and Node 20's runner by default waits without end for a test file whose
// process does not exit (a socket or a browser left open after its tests ended). So every file has a limit
// (--test-timeout: node cancels the file and ends its process), a backstop that kills the file's process
// group if it is still there a minute later, and the suite has a deadline; a file that fails any of them
// fails by name. In CI (CI=true) missing services are failures, never skips, and so is any skipped test.
'use strict';
const { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join, relative } = require('node:path');
const { spawn } = require('node:child_process');

// TEST_ROOT lets test/unit/test-runner.test.ts run this script on files of its own.
const root = process.env.TEST_ROOT ?? join(__dirname, '..', 'dist', 'test');
const concurrency = Number(process.env.TEST_CONCURRENCY ?? 2);
// node's runner applies --test-timeout to each test and to the file as a whole (it then cancels the file
// and ends its process), so this is the limit for a file, not only for one test.
const testTimeoutMs = Number(process.env.TEST_TIMEOUT_MS ?? 420_000);
// The backstop: a file whose process group is still there this long after it started is killed.
const fileTimeoutMs = Number(process.env.TEST_FILE_TIMEOUT_MS ?? 480_000);
const suiteTimeoutMs = Number(process.env.TEST_SUITE_TIMEOUT_MS ?? 1_800_000);

function find(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return name === 'helpers' ? [] : find(p);
    return name.endsWith('.test.js') ? [p] : [];
  });
}
const filters = process.argv.slice(2);
const files = find(root)
  .filter((f) => filters.length === 0 || filters.some((x) => relative(root, f).includes(x)))
  .sort();
if (files.length === 0) {
  console.error(`no test files found under ${root}${filters.length ? ` matching ${filters.join(', ')}` : ''}`);
  process.exit(1);
}

const tapDir = mkdtempSync(join(tmpdir(), 'herald-test-tap-'));
const totals = { tests: 0, pass: 0, fail: 0, cancelled: 0, skipped: 0, todo: 0 };
const problems = [];
const running = new Set();
const started = Date.now();
let next = 0;

/** The counts node's TAP reporter prints at the end of a file's run (`# pass 12`). */
function countsOf(tapPath) {
  let text = '';
  try {
    text = readFileSync(tapPath, 'utf8');
  } catch {
    return null;
  }
  const counts = {};
  for (const key of Object.keys(totals)) {
    const m = new RegExp(`^# ${key} (\\d+)$`, 'm').exec(text);
    if (!m) return null;
    counts[key] = Number(m[1]);
  }
  return counts;
}

function killGroup(child) {
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

function runFile(file, index) {
  return new Promise((resolve) => {
    const name = relative(root, file);
    const tapPath = join(tapDir, `${index}.tap`);
    const args = [
      '--test', `--test-timeout=${testTimeoutMs}`,
      '--test-reporter=spec', '--test-reporter-destination=stdout',
      '--test-reporter=tap', `--test-reporter-destination=${tapPath}`,
      file,
    ];
    // Its own process group, so that a kill also reaches the test file's process under the runner.
    const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
    running.add(child);
    const output = [];
    child.stdout.on('data', (b) => output.push(b));
    child.stderr.on('data', (b) => output.push(b));
    const fileStarted = Date.now();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child);
    }, fileTimeoutMs);
    let finished = false;
    const finish = (code, signal) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      running.delete(child);
      // One file's output at a time, so that two files running together do not interleave.
      process.stdout.write(Buffer.concat(output));
      const seconds = ((Date.now() - fileStarted) / 1000).toFixed(1);
      const counts = countsOf(tapPath);
      if (counts) for (const key of Object.keys(totals)) totals[key] += counts[key];
      if (timedOut) problems.push(`${name}: did not finish within ${fileTimeoutMs / 1000} s; killed`);
      else if (!counts) problems.push(`${name}: ended (code ${code}, signal ${signal}) without reporting its counts`);
      else if (code !== 0 && counts.fail === 0 && counts.cancelled === 0) problems.push(`${name}: exited with code ${code}`);
      if (process.env.TEST_TIMINGS) console.log(`[${seconds} s] ${name}`);
      resolve();
    };
    child.on('close', finish);
    // A process the file started and left behind could hold the output pipes open after the file's own
    // process exited; its output is complete by then, so do not wait for the pipes for long.
    child.on('exit', (code, signal) => setTimeout(() => finish(code, signal), 2_000).unref());
  });
}

async function worker() {
  while (next < files.length) {
    if (Date.now() - started > suiteTimeoutMs) {
      problems.push(`${relative(root, files[next])}: not run, the suite passed its ${suiteTimeoutMs / 1000} s deadline`);
      next++;
      continue;
    }
    const index = next++;
    await runFile(files[index], index);
  }
}

function stopAll(signal) {
  for (const child of running) killGroup(child);
  rmSync(tapDir, { recursive: true, force: true });
  process.exit(signal === 'SIGINT' ? 130 : 143);
}
process.on('SIGINT', () => stopAll('SIGINT'));
process.on('SIGTERM', () => stopAll('SIGTERM'));
const suiteTimer = setTimeout(() => {
  for (const child of running) killGroup(child);
}, suiteTimeoutMs + 5_000);
suiteTimer.unref();

Promise.all(Array.from({ length: Math.min(concurrency, files.length) }, worker)).then(() => {
  rmSync(tapDir, { recursive: true, force: true });
  if (process.env.CI === 'true' && totals.skipped + totals.todo > 0) {
    problems.push(`${totals.skipped} skipped and ${totals.todo} todo tests: CI=true counts them as failures`);
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  console.log(`\n${files.length} files in ${seconds} s: tests ${totals.tests}, pass ${totals.pass}, fail ${totals.fail}, ` +
    `cancelled ${totals.cancelled}, skipped ${totals.skipped}, todo ${totals.todo}`);
  for (const p of problems) console.log(`✖ ${p}`);
  const ok = totals.fail === 0 && totals.cancelled === 0 && problems.length === 0 && totals.pass > 0;
  process.exit(ok ? 0 : 1);
});
