/**
 * Starting and stopping the server under test. The harness starts servers itself because CPU and RSS are
 * read from the server's PID; every process it starts is remembered so that it can be stopped by that PID
 * on any exit path (normal end, error, SIGINT).
 */
import { execFile, spawn, type SpawnOptions } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep } from './load-patterns';
import type { AppCredentials } from './signing';

/** A running (or externally managed) Pusher-protocol server the scenarios drive. */
export interface ServerUnderTest {
  /** `herald`, `soketi`, `reference` or `external`. */
  label: string;
  host: string;
  port: number;
  app: AppCredentials;
  /** PID whose /proc figures are read; null for an external server whose PID was not given. */
  pid: number | null;
  stop(): Promise<void>;
}

export interface LaunchOptions {
  /** Repository root (holds dist/server/main.js). */
  repoRoot: string;
  soketiScript: string;
  /** CPU list for `taskset -c`, or null to not pin. */
  cpus: string | null;
}

/** The app both launched servers are configured with. */
export const BENCH_APP: AppCredentials = { appId: '1', key: 'bench-key', secret: 'bench-secret' };

const READY_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 5_000;

/**
 * Synchronous last-resort killers for everything started and not yet stopped, keyed by PID (or by a
 * negative placeholder while a start is still under way).
 */
const liveProcesses = new Map<number, () => void>();

/**
 * Synchronous last-resort clean-ups of things outside processes (e.g. Redis keys of a run), run after every
 * process above was killed, so that nothing re-creates what they remove.
 */
const lastResorts = new Set<() => void>();

/** Kills every server still running (or half started); safe to call from `process.on('exit')`. */
export function killAllServersSync(): void {
  for (const [pid, kill] of liveProcesses) {
    liveProcesses.delete(pid);
    kill();
  }
  for (const fn of lastResorts) {
    lastResorts.delete(fn);
    fn();
  }
}

/**
 * Remembers a helper process the harness started (e.g. a local push endpoint) so that `killAllServersSync`
 * kills it by its PID on any exit path. Returns the function that forgets it once it was stopped normally.
 */
export function trackProcess(pid: number): () => void {
  liveProcesses.set(pid, () => killQuietly(pid, 'SIGKILL'));
  return () => liveProcesses.delete(pid);
}

/**
 * Registers a synchronous clean-up for `killAllServersSync` (after the processes are killed). Returns the
 * function that forgets it once the normal, asynchronous clean-up has done the work.
 */
export function onLastResort(fn: () => void): () => void {
  lastResorts.add(fn);
  return () => lastResorts.delete(fn);
}

/**
 * Top-level config merged into the bench config of a Herald node (e.g. `redis`, `redisPrefix`, `push`).
 * `port`, `host` and `apps` are the harness's own.
 */
export type HeraldExtraConfig = Record<string, unknown>;

/** Starts `node dist/server/main.js` with a per-run data dir and config, pinned to `cpus`. */
export async function startHerald(opts: LaunchOptions, extraConfig: HeraldExtraConfig = {}): Promise<ServerUnderTest> {
  const mainJs = join(opts.repoRoot, 'dist/server/main.js');
  if (!existsSync(mainJs)) throw new Error(`Herald is not built: ${mainJs} is missing (run npm run build)`);
  const port = await freeTcpPort();
  const dataDir = mkdtempSync(join(tmpdir(), 'herald-bench-'));
  const configPath = join(dataDir, 'bench-config.json');
  const logPath = join(dataDir, 'server.log');
  writeFileSync(
    configPath,
    JSON.stringify({
      // Sockets are closed before the server is stopped; nothing is in flight worth waiting 10 s for.
      shutdownGraceMs: 1000,
      ...extraConfig,
      port,
      host: '127.0.0.1',
      apps: [
        {
          id: BENCH_APP.appId,
          key: BENCH_APP.key,
          secret: BENCH_APP.secret,
          clientEvents: true,
          // Every limit is lifted so that the benchmark measures the server, not its quotas.
          maxPresenceMembers: 100_000,
          maxConnections: -1,
          maxBackendEventsPerSecond: -1,
          maxClientEventsPerSecond: -1,
        },
      ],
    }),
  );
  const logFd = openSync(logPath, 'a');
  const argv = pinned(opts.cpus, [process.execPath, ...experimentNodeArgs(), mainJs]);
  // HERALD_* variables override the config file (HERALD_REDIS_URL, HERALD_PUSH_SUBJECT…); none may leak in
  // from the shell that runs the benchmark.
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('HERALD_')));
  try {
    return await launchNode(
      'Herald',
      'herald',
      argv,
      {
        cwd: opts.repoRoot,
        env: {
          ...inherited,
          HERALD_HOST: '127.0.0.1',
          HERALD_PORT: String(port),
          HERALD_DATA_DIR: dataDir,
          HERALD_LOG_LEVEL: 'warn',
          HERALD_CONFIG: configPath,
        },
        stdio: ['ignore', logFd, logFd],
      },
      port,
      () => rmSync(dataDir, { recursive: true, force: true }),
      () => `; log tail:\n${readFileSync(logPath, 'utf8').split('\n').slice(-20).join('\n')}`,
    );
  } finally {
    closeSync(logFd);
  }
}

/**
 * Starts the reference server (`dist/bench/reference-server.js`: a bare `ws` broadcast server, the issue's
 * ceiling for Node), pinned to `cpus` like every server under test.
 */
export async function startReference(opts: LaunchOptions): Promise<ServerUnderTest> {
  const js = join(opts.repoRoot, 'dist/bench/reference-server.js');
  if (!existsSync(js)) throw new Error(`the reference server is not built: ${js} is missing (run npm run build)`);
  const port = await freeTcpPort();
  const argv = pinned(opts.cpus, [process.execPath, ...experimentNodeArgs(), js, String(port), BENCH_APP.key]);
  return launchNode('the reference server', 'reference', argv, { cwd: opts.repoRoot, stdio: ['ignore', 'ignore', 'inherit'] }, port);
}

/**
 * Spawns a Node server the harness owns (Herald, the reference), remembered for the last-resort kill, and
 * waits for its `/ready`. `cleanup` runs once it is gone (stopped, or killed on any exit path);
 * `failureDetail` adds to the error when it never became ready (a log tail, say).
 */
async function launchNode(
  name: string,
  label: string,
  argv: string[],
  options: SpawnOptions,
  port: number,
  cleanup: () => void = () => undefined,
  failureDetail: () => string = () => '',
): Promise<ServerUnderTest> {
  const child = spawn(argv[0], argv.slice(1), options);
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not spawn ${name}`);
  let exited: string | null = null;
  child.on('exit', (code, signal) => {
    exited = `exited with ${signal ?? code}`;
    liveProcesses.delete(pid);
  });
  liveProcesses.set(pid, () => {
    killQuietly(pid, 'SIGKILL');
    cleanup();
  });
  const stop = async (): Promise<void> => {
    // Forgotten only once gone, so that a SIGINT arriving meanwhile still kills it.
    await stopPid(pid);
    liveProcesses.delete(pid);
    cleanup();
  };
  const readyError = await waitReady('127.0.0.1', port, () => exited);
  if (readyError !== null) {
    const detail = failureDetail();
    await stop();
    throw new Error(`${name} did not become ready (${readyError})${detail}`);
  }
  return { label, host: '127.0.0.1', port, app: BENCH_APP, pid, stop };
}

/**
 * Node flags for experiments on the Node servers (Herald, reference): BENCH_SERVER_PROF_DIR=dir writes a V8
 * CPU profile of each one there when it exits; BENCH_SERVER_NODE_ARGS adds flags (e.g.
 * `--max-semi-space-size=32`).
 */
function experimentNodeArgs(): string[] {
  const profDir = process.env.BENCH_SERVER_PROF_DIR;
  const nodeArgs = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
  return [...nodeArgs, ...(profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [])];
}

/** A soketi node that joins others through Redis pub/sub (its redis adapter) instead of the local adapter. */
export interface SoketiRedis {
  port: number;
  /** `SOKETI_ADAPTER_REDIS_PREFIX`: the pub/sub channels of this cluster only. */
  prefix: string;
}

/** Starts soketi through the peer script (which installs it outside the repo), pinned to `cpus`. */
export async function startSoketi(opts: LaunchOptions, redis: SoketiRedis | null = null): Promise<ServerUnderTest> {
  const port = await freeTcpPort();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PEER_PORT: String(port),
    PEER_METRICS_PORT: String(await freeTcpPort()),
    PEER_CLUSTER_PORT: String(await freeUdpPort()),
    PEER_APP_ID: BENCH_APP.appId,
    PEER_APP_KEY: BENCH_APP.key,
    PEER_APP_SECRET: BENCH_APP.secret,
  };
  // The benchmark compares single nodes without webhooks; inherited settings must not change that.
  delete env.PEER_REDIS_PORT;
  delete env.PEER_WEBHOOK_URL;
  delete env.SOKETI_ADAPTER_REDIS_PREFIX;
  if (redis !== null) {
    env.PEER_REDIS_PORT = String(redis.port);
    // The script passes its environment on to soketi, which reads SOKETI_* settings from it.
    env.SOKETI_ADAPTER_REDIS_PREFIX = redis.prefix;
  }
  const home = env.SOKETI_HOME ?? join(homedir(), '.cache/herald-peer-soketi');
  const pidFile = join(home, 'run', `soketi-${port}.pid`);
  // The script also leaves a config and a log per port; each run uses a fresh port, so remove them after.
  const leftovers = [join(home, 'run', `config-${port}.json`), join(home, 'run', `soketi-${port}.log`)];
  // Should the script fail or time out after starting node, its pid file still names the process.
  const placeholder = -port;
  liveProcesses.set(placeholder, () => {
    const stray = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) : 0;
    if (Number.isInteger(stray) && stray > 0) killQuietly(stray, 'SIGKILL');
    for (const f of [pidFile, ...leftovers]) rmSync(f, { force: true });
  });
  // The script backgrounds node itself; the affinity set by taskset on bash is inherited by it.
  await run(pinned(opts.cpus, ['bash', opts.soketiScript, 'start']), env, 180_000);
  liveProcesses.delete(placeholder);
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`bad soketi pid file ${pidFile}`);
  liveProcesses.set(pid, () => {
    killQuietly(pid, 'SIGKILL');
    for (const f of [pidFile, ...leftovers]) rmSync(f, { force: true });
  });
  const stop = async (): Promise<void> => {
    await run(['bash', opts.soketiScript, 'stop'], env, 30_000);
    // The script waits up to 10 s and then kills; make sure of it anyway, by this PID only.
    await stopPid(pid);
    liveProcesses.delete(pid);
    for (const f of [pidFile, ...leftovers]) rmSync(f, { force: true });
  };
  const readyError = await waitReady('127.0.0.1', port, () => (isAlive(pid) ? null : 'process exited'));
  if (readyError !== null) {
    await stop();
    throw new Error(`soketi did not become ready (${readyError})`);
  }
  return { label: 'soketi', host: '127.0.0.1', port, app: BENCH_APP, pid, stop };
}

/** A server someone else runs; nothing to start or stop. */
export function externalServer(host: string, port: number, app: AppCredentials, pid: number | null): ServerUnderTest {
  return { label: 'external', host, port, app, pid, stop: async () => undefined };
}

function pinned(cpus: string | null, argv: string[]): string[] {
  return cpus === null ? argv : ['taskset', '-c', cpus, ...argv];
}

function run(argv: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(argv[0], argv.slice(1), { env, timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err === null) resolve();
      else reject(new Error(`${argv.join(' ')} failed: ${err.message}\n${stdout}${stderr}`));
    });
  });
}

function isAlive(pid: number): boolean {
  // Signal 0 only checks existence. A zombie still counts, so also look at its /proc state.
  if (!killQuietly(pid, 0)) return false;
  const stat = existsSync(`/proc/${pid}/stat`) ? readFileSync(`/proc/${pid}/stat`, 'latin1') : '';
  return !/^\d+ \(.*\) Z/.test(stat);
}

/** process.kill that reports whether the signal was delivered instead of throwing for a gone process. */
function killQuietly(pid: number, signal: NodeJS.Signals | 0): boolean {
  if (!existsSync(`/proc/${pid}`)) return false;
  process.kill(pid, signal);
  return true;
}

/** SIGTERM, wait for a graceful exit, then SIGKILL. */
export async function stopPid(pid: number): Promise<void> {
  if (!isAlive(pid)) return;
  killQuietly(pid, 'SIGTERM');
  const endMs = performance.now() + STOP_GRACE_MS;
  while (isAlive(pid) && performance.now() < endMs) await sleep(50);
  if (isAlive(pid)) killQuietly(pid, 'SIGKILL');
}

/** Polls `GET /ready` until 200; returns null when ready, else why not. */
async function waitReady(host: string, port: number, exited: () => string | null): Promise<string | null> {
  const endMs = performance.now() + READY_TIMEOUT_MS;
  while (performance.now() < endMs) {
    const why = exited();
    if (why !== null) return why;
    if ((await httpStatus(host, port, '/ready')) === 200) return null;
    await sleep(100);
  }
  return `no 200 from /ready within ${READY_TIMEOUT_MS} ms`;
}

/** Status of a GET, or 0 when the connection failed (the server is not listening yet). */
function httpStatus(host: string, port: number, path: string): Promise<number> {
  return new Promise((resolve) => {
    const r = request({ host, port, path, method: 'GET', agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    r.setTimeout(1000, () => r.destroy());
    r.on('error', () => resolve(0));
    r.end();
  });
}

function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const sock = createSocket('udp4');
    sock.on('error', reject);
    sock.bind(0, '127.0.0.1', () => {
      const port = sock.address().port;
      sock.close(() => resolve(port));
    });
  });
}
