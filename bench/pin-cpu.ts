/**
 * Keeping the generator off the server's core. The server is started under `taskset -c 0`; the generator
 * re-executes itself under `taskset -c 1` so that `npm run bench` needs no wrapper.
 */
import { execFileSync, spawn } from 'node:child_process';
import { constants, cpus } from 'node:os';
import { processAllowedCpus } from './proc-stats';

/** CPU the server under test runs on. */
export const SERVER_CPU = '0';
/** CPU the load generator runs on. */
export const GENERATOR_CPU = '1';

const PINNED_ENV = 'HERALD_BENCH_PINNED';

/** True when `taskset` exists and the machine has the two CPUs the split needs. */
export function canPin(): boolean {
  // All online CPUs, not this process's affinity: once re-executed on CPU 1 the generator only sees one.
  if (cpus().length < 2) return false;
  return spawnable('taskset');
}

/**
 * Re-runs this very command under `taskset -c 1` unless it already runs there. Resolves to the child's exit
 * code, or to null when this process is the one that should do the work.
 */
export function reexecOnGeneratorCpu(): Promise<number> | null {
  if (process.env[PINNED_ENV] === '1' || processAllowedCpus('self') === GENERATOR_CPU) return null;
  const child = spawn('taskset', ['-c', GENERATOR_CPU, process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, [PINNED_ENV]: '1' },
  });
  // Ctrl-C reaches both processes (same process group); the child cleans up and exits, and the parent only
  // waits for it. A signal sent to the parent alone is passed on.
  const forward = (signal: NodeJS.Signals): void => {
    if (child.pid !== undefined && child.exitCode === null) child.kill(signal);
  };
  process.on('SIGINT', () => forward('SIGINT'));
  process.on('SIGTERM', () => forward('SIGTERM'));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve(code ?? 128 + (signal === null ? 1 : constants.signals[signal])));
  });
}

function spawnable(command: string): boolean {
  const found = execFileSync('sh', ['-c', `command -v ${command} || true`], { encoding: 'utf8' }).trim();
  return found !== '';
}
