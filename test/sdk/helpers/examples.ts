/** Runs the examples' scripts as a newcomer would (`node examples/...`), pointed at a test Herald. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { TestHerald } from '../../helpers/herald';
import { ROOT } from './browser';

/** The environment the examples read Herald's address and credentials from. */
export function heraldEnv(h: TestHerald): Record<string, string> {
  return { HERALD_HOST: h.host, HERALD_PORT: String(h.port), HERALD_APP_ID: h.app.id, HERALD_APP_KEY: h.app.key, HERALD_APP_SECRET: h.app.secret };
}

/** Starts an example server on a free port; resolves with the URL it prints. Stopped after the test. */
export function startExample(t: TestContext, script: string, env: Record<string, string>): Promise<string> {
  const child = spawn(process.execPath, [join(ROOT, 'examples', script)], { cwd: ROOT, env: { ...process.env, ...env, PORT: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGTERM');
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} printed no URL within 10 s:\n${output}`)), 10_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const m = /http:\/\/127\.0\.0\.1:(\d+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(`http://127.0.0.1:${m[1]}`);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited with ${code}:\n${output}`));
    });
  });
}

/** Runs a one-shot example script to completion; resolves with its output, rejects on a non-zero exit. */
export function runExample(script: string, args: string[], env: Record<string, string>): Promise<string> {
  const child = spawn(process.execPath, [join(ROOT, 'examples', script), ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  return new Promise((resolve, reject) => {
    child.on('exit', (code) => (code === 0 ? resolve(output) : reject(new Error(`${script} exited with ${code}:\n${output}`))));
  });
}
