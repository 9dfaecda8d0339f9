/**
 * Web Push throughput of one node: N devices registered through the device API on one interest, one signed
 * publish to that interest, and the time from its 202 until a bare local push endpoint (a child process of
 * the generator, so on the generator's CPU) has received all N requests. Every send is the real work:
 * store claim, VAPID header, RFC 8291 encryption with a fresh ephemeral key, pooled HTTP POST, result
 * recorded. Headline: sends/s and server CPU per send (issue 7 target ≥ 3,000 sends/s on one core).
 */
import { execFile, fork, type ChildProcess } from 'node:child_process';
import { createECDH, randomBytes } from 'node:crypto';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { forEachBounded, sleep } from '../load-patterns';
import { canPin } from '../pin-cpu';
import { pushFloor, type PushFloor } from '../push-floor';
import { MeasureWindow, cpuPerUnitUs, round, windowNotes } from '../measure-window';
import { CpuWindow, mainThreadCpuTicks, processAllowedCpus } from '../proc-stats';
import { monotonicUs, type EndpointCommand, type EndpointMessage, type PrefixCount } from '../push-endpoint';
import { REFERENCE_SKIP, type Scenario, type ScenarioContext, type ScenarioResult } from '../scenario';
import { stopPid, trackProcess, type HeraldExtraConfig, type ServerUnderTest } from '../server-process';
import { signedRestPath } from '../signing';

const INTEREST = 'bench';
const WARM_INTEREST = 'bench-warm';
/** Device registrations in flight (setup, not the measured figure). */
const REGISTER_CONCURRENCY = 16;
const WARM_DEVICES = 20;
const REQUEST_TIMEOUT_MS = 10_000;
const ENDPOINT_START_MS = 10_000;
/** After the endpoint has everything, how long the publish status may take to show pending 0. */
const STATUS_WAIT_MS = 15_000;
const TARGET_SENDS_PER_S = 3000;

/** Push on, http endpoints allowed, the device API limit lifted, and `encryptThreads` threads. */
function benchPushConfig(encryptThreads: number): HeraldExtraConfig {
  return { push: { subject: 'mailto:bench@example.com', allowInsecureEndpoints: true, deviceRequestsPerIpPerSecond: -1, encryptThreads } };
}

export const push: Scenario = {
  name: 'push',
  summary:
    'Web Push: one publish to an interest of 10,000 devices, sent to a bare local endpoint: sends/s and ' +
    'server CPU per send (target ≥ 3,000/s on one core)',
  headline: [
    { key: 'sendsPerS', label: 'sends/s' },
    { key: 'cpuPerSendUs', label: 'CPU/send (µs)' },
    { key: 'cryptoFloorSendsPerS', label: 'crypto floor, same core (sends/s)' },
    { key: 'stockWebPushSendsPerS', label: 'stock web-push ceiling, same core (sends/s)' },
  ],
  skipTargets: {
    soketi: 'soketi has no Web Push',
    reference: REFERENCE_SKIP,
    external: 'needs a Herald the harness starts with push on, http endpoints allowed and the device API limit lifted',
  },
  // Encryption on the event loop, as on a one-CPU machine, even when the run is not pinned.
  heraldConfig: benchPushConfig(0),
  run: runPush,
};

/**
 * The same publish with the server on both CPUs and one encryption thread (`push.encryptThreads`): how much
 * of a send's CPU stays on the event loop, where it would delay WebSocket frames. Not a row of the issue
 * (that one is one core); the local endpoint shares the second CPU with the encryption thread.
 */
export const pushThreads: Scenario = {
  ...push,
  name: 'push-threads',
  summary: 'Web Push as `push`, with the server on both CPUs and one encryption thread: event-loop CPU per send',
  headline: [
    { key: 'sendsPerS', label: 'sends/s' },
    { key: 'eventLoopCpuPerSendUs', label: 'event-loop CPU/send (µs)' },
    { key: 'cpuPerSendUs', label: 'CPU/send, all threads (µs)' },
  ],
  heraldConfig: benchPushConfig(1),
  serverCpus: '0,1',
};

async function runPush(ctx: ScenarioContext): Promise<ScenarioResult> {
  const { server } = ctx;
  const endpoint = await startEndpoint();
  ctx.onCleanup(() => endpoint.stop());
  ctx.log(`push endpoint pid ${endpoint.pid} on 127.0.0.1:${endpoint.port}, CPUs ${processAllowedCpus(endpoint.pid)}`);
  const agent = new Agent({ keepAlive: true, maxSockets: REGISTER_CONCURRENCY });
  ctx.onCleanup(() => agent.destroy());
  const http = new JsonHttp(server, agent);

  // One P-256 key pair for every device: the server draws a fresh ephemeral key per message anyway
  // (RFC 8291), so the encryption work per send does not depend on the device's key.
  const p256dh = createECDH('prime256v1').generateKeys().toString('base64url');
  const register = async (path: string, interest: string, count: number): Promise<void> => {
    await forEachBounded(count, REGISTER_CONCURRENCY, async (i) => {
      const body = {
        subscription: {
          endpoint: `http://127.0.0.1:${endpoint.port}/${path}/${i}`,
          keys: { p256dh, auth: randomBytes(16).toString('base64url') },
        },
        interests: [interest],
      };
      const res = await http.call('POST', `/push/v1/${encodeURIComponent(server.app.key)}/devices`, body, false);
      if (res.status !== 201 && res.status !== 200) throw new Error(`device registration: HTTP ${res.status} ${res.text.slice(0, 300)}`);
    });
  };

  const devices = ctx.count(10_000, 100);
  const warmDevices = Math.min(WARM_DEVICES, devices);
  await register('warm', WARM_INTEREST, warmDevices);
  ctx.log(`registering ${devices} devices on interest ${INTEREST}`);
  const registration = new MeasureWindow(server.pid, [endpoint.pid]);
  await register('push', INTEREST, devices);
  const reg = registration.close();

  // Warm-up publish: VAPID header, the connection pool and first-call costs come out of the measurement,
  // and the worker is idle again before it starts.
  ctx.log(`warm-up publish to ${warmDevices} devices`);
  const warm = await publishAndWait(http, endpoint, server, WARM_INTEREST, 'warm', warmDevices, 30_000);
  await waitPublishDone(http, server, warm.publishId);

  // The yardsticks, on the server's core while Herald idles, just before and just after the window
  // (never beside it): this VM's speed moves by tens of % within minutes, and the mean of the two is the
  // fairest comparison for the window between them.
  ctx.log('measuring the crypto floor and stock web-push on the server core');
  const floorCount = ctx.count(1000, 50);
  const floorBefore = server.pid === null ? null : await measureFloor(server.pid, floorCount);

  ctx.log(`publishing to ${devices} devices`);
  const timeoutMs = Math.max(20_000, devices * 5);
  const window = new MeasureWindow(server.pid, [endpoint.pid]);
  const endpointCpu = new CpuWindow(endpoint.pid);
  const loopCpu = server.pid === null ? null : new CpuWindow(server.pid, mainThreadCpuTicks);
  const measured = await publishAndWait(http, endpoint, server, INTEREST, 'push', devices, timeoutMs);
  const w = window.close();
  const loopCpuS = loopCpu === null ? null : loopCpu.read().cpuSeconds;
  const endpointCpuS = endpointCpu.read().cpuSeconds;
  const status = await waitPublishDone(http, server, measured.publishId);
  const stats = await endpoint.stats();
  const { reached, postUs, acceptedUs } = measured;
  ctx.log('measuring the crypto floor and stock web-push on the server core again');
  const floorAfter = server.pid === null ? null : await measureFloor(server.pid, floorCount);
  const floor = floorBefore === null || floorAfter === null ? null : meanFloor(floorBefore, floorAfter);

  const spanFrom202S = (reached.lastUs - acceptedUs) / 1e6;
  const spanFromPostS = (reached.lastUs - postUs) / 1e6;
  const sendsPerS = round(devices / spanFrom202S, 0);
  const figures = {
    devices,
    sendsPerS,
    sendsPerSFromPost: round(devices / spanFromPostS, 0),
    steadySendsPerS: devices > 1 && reached.lastUs > reached.firstUs ? round((devices - 1) / ((reached.lastUs - reached.firstUs) / 1e6), 0) : null,
    publishAcceptMs: round((acceptedUs - postUs) / 1000, 2),
    firstSendAfter202Ms: round((reached.firstUs - acceptedUs) / 1000, 2),
    sendSpanS: round(spanFrom202S, 3),
    serverCpuS: w.serverCpuS,
    serverCpuPct: w.serverCpuS === null ? null : round((100 * w.serverCpuS) / spanFromPostS, 1),
    cpuPerSendUs: cpuPerUnitUs(w.serverCpuS, devices),
    eventLoopCpuPerSendUs: cpuPerUnitUs(loopCpuS, devices),
    targetSendsPerS: TARGET_SENDS_PER_S,
    cryptoFloorSendsPerS: floor?.cryptoFloorPerS ?? null,
    stockWebPushSendsPerS: floor?.stockWebPushPerS ?? null,
    encryptUs: floor?.encryptUs ?? null,
    stockRequestDetailsUs: floor?.requestDetailsUs ?? null,
    ofCryptoFloorPct: floor === null ? null : round((100 * sendsPerS) / floor.cryptoFloorPerS, 1),
    meetsTarget: sendsPerS >= TARGET_SENDS_PER_S,
    endpointRequests: stats.byPrefix.push?.count ?? 0,
    endpointMalformed: stats.byPrefix.push?.malformed ?? 0,
    endpointAvgBodyBytes: reached.count === 0 ? null : Math.round(reached.bodyBytes / reached.count),
    endpointConnections: stats.connections,
    endpointCpuPct: round((100 * endpointCpuS) / spanFromPostS, 1),
    publishStatus: String(status.status),
    publishSent: numberOr(status.sent),
    publishFailed: numberOr(status.failed),
    publishPending: numberOr(status.pending),
    registrationsPerS: round(devices / reg.wallS, 0),
    cpuPerRegistrationUs: cpuPerUnitUs(reg.serverCpuS, devices),
    generatorCpuPct: w.generatorCpuPct,
    otherLoadDuringCores: w.otherLoadCores,
  };
  const notes = windowNotes(w).filter((n) => !n.startsWith('generator'));
  if (figures.endpointCpuPct >= 90) notes.push(`push endpoint at ${figures.endpointCpuPct}% of its core: sends/s may be endpoint-bound`);
  if (figures.publishSent !== devices || figures.publishFailed !== 0) {
    notes.push(`publish status: sent ${figures.publishSent}, failed ${figures.publishFailed} of ${devices}`);
  }
  if (floorBefore !== null && floorAfter !== null) {
    const drift = Math.abs(floorAfter.encryptUs - floorBefore.encryptUs) / Math.min(floorAfter.encryptUs, floorBefore.encryptUs);
    if (drift > 0.15) notes.push(`crypto floor moved ${Math.round(drift * 100)}% across the window (${floorBefore.encryptUs} → ${floorAfter.encryptUs} µs): the machine's speed changed, repeat`);
  }
  if (figures.endpointMalformed > 0) notes.push(`${figures.endpointMalformed} requests lacked Web Push headers`);
  return { figures, notes };
}

/**
 * bench/push-floor.js on the CPUs the server may use (its affinity), so that Herald's sends/s and the two
 * yardsticks of the row come from the same core in the same run.
 */
function measureFloor(serverPid: number, count: number): Promise<PushFloor> {
  const js = join(__dirname, '../push-floor.js');
  const node = [process.execPath, js, String(count)];
  const argv = canPin() ? ['taskset', '-c', processAllowedCpus(serverPid), ...node] : node;
  return new Promise((resolve, reject) => {
    execFile(argv[0], argv.slice(1), { timeout: 120_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`push floor: ${err.message}; ${stderr.slice(-500)}`));
      try {
        resolve(JSON.parse(stdout) as PushFloor);
      } catch {
        reject(new Error(`push floor: not JSON: ${stdout.slice(0, 300)}`));
      }
    });
  });
}

function meanFloor(a: PushFloor, b: PushFloor): PushFloor {
  return pushFloor(a.count + b.count, (a.encryptUs + b.encryptUs) / 2, (a.requestDetailsUs + b.requestDetailsUs) / 2);
}

interface Measured {
  publishId: string;
  reached: PrefixCount;
  /** Monotonic µs just before the publish request was sent, and when its 202 had been read. */
  postUs: number;
  acceptedUs: number;
}

/** One signed publish to `interest`; resolves when the endpoint has `count` requests under `/prefix/`. */
async function publishAndWait(
  http: JsonHttp,
  endpoint: Endpoint,
  server: ServerUnderTest,
  interest: string,
  prefix: string,
  count: number,
  timeoutMs: number,
): Promise<Measured> {
  const reachedP = endpoint.expect(prefix, count, timeoutMs);
  // Observed at once, so a timeout while the publish request is still running cannot go unhandled.
  reachedP.catch(() => undefined);
  const postUs = monotonicUs();
  const res = await http.call('POST', `/apps/${server.app.appId}/push/interests`, {
    interests: [interest],
    web: { notification: { title: 'x' } },
  });
  const acceptedUs = monotonicUs();
  const publishId = (res.json as { publishId?: unknown } | null)?.publishId;
  if (res.status !== 202 || typeof publishId !== 'string') throw new Error(`publish: HTTP ${res.status} ${res.text.slice(0, 300)}`);
  const reached = await reachedP;
  return { publishId, reached, postUs, acceptedUs };
}

/** Polls the publish status until nothing is pending (bounded); returns the last status. */
async function waitPublishDone(http: JsonHttp, server: ServerUnderTest, publishId: string): Promise<Record<string, unknown>> {
  const endMs = performance.now() + STATUS_WAIT_MS;
  for (;;) {
    const res = await http.call('GET', `/apps/${server.app.appId}/push/publishes/${encodeURIComponent(publishId)}`);
    if (res.status !== 200) throw new Error(`publish status: HTTP ${res.status} ${res.text.slice(0, 300)}`);
    const status = res.json as Record<string, unknown>;
    if (status.pending === 0 && status.status === 'done') return status;
    if (performance.now() > endMs) return status;
    await sleep(50);
  }
}

function numberOr(v: unknown): number | null {
  return typeof v === 'number' ? v : null;
}

interface Endpoint {
  pid: number;
  port: number;
  /** Resolves when `count` requests arrived under `/prefix/`; rejects after `timeoutMs`. */
  expect(prefix: string, count: number, timeoutMs: number): Promise<PrefixCount>;
  stats(): Promise<Extract<EndpointMessage, { type: 'stats' }>>;
  stop(): Promise<void>;
}

/** Forks bench/push-endpoint.js (inheriting the generator's CPU affinity) and waits until it listens. */
async function startEndpoint(): Promise<Endpoint> {
  const child: ChildProcess = fork(join(__dirname, '../push-endpoint.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not start the push endpoint');
  const untrack = trackProcess(pid);
  const stop = async (): Promise<void> => {
    if (child.connected) child.disconnect();
    await stopPid(pid);
    untrack();
  };
  const next = <T extends EndpointMessage['type']>(
    accept: (m: EndpointMessage) => m is Extract<EndpointMessage, { type: T }>,
    timeoutMs: number,
    what: string,
  ): Promise<Extract<EndpointMessage, { type: T }>> =>
    new Promise((resolve, reject) => {
      const onMessage = (m: EndpointMessage): void => {
        if (!accept(m)) return;
        done();
        resolve(m);
      };
      const onExit = (): void => {
        done();
        reject(new Error(`push endpoint exited while waiting for ${what}`));
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`push endpoint: no ${what} within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        child.off('message', onMessage);
        child.off('exit', onExit);
      };
      child.on('message', onMessage);
      child.on('exit', onExit);
    });
  const command = (c: EndpointCommand): void => {
    child.send(c);
  };
  let port: number;
  try {
    port = (await next((m): m is Extract<EndpointMessage, { type: 'listening' }> => m.type === 'listening', ENDPOINT_START_MS, 'listening'))
      .port;
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    pid,
    port,
    stop,
    expect: (prefix, count, timeoutMs) => {
      const p = next(
        (m): m is Extract<EndpointMessage, { type: 'reached' }> => m.type === 'reached' && m.prefix === prefix,
        timeoutMs,
        `${count} requests under /${prefix}/`,
      );
      command({ type: 'expect', prefix, count });
      return p;
    },
    stats: () => {
      const p = next((m): m is Extract<EndpointMessage, { type: 'stats' }> => m.type === 'stats', 5000, 'stats');
      command({ type: 'stats' });
      return p;
    },
  };
}

/** JSON requests to the server: the device API (unsigned) and the push publish API (signed, protocol.md §3). */
class JsonHttp {
  constructor(
    private readonly server: ServerUnderTest,
    private readonly agent: Agent,
  ) {}

  call(method: 'GET' | 'POST', path: string, body?: unknown, signed = true): Promise<{ status: number; text: string; json: unknown }> {
    const payload = body === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(body), 'utf8');
    const fullPath = signed ? signedRestPath(this.server.app, method, path, payload, Math.floor(Date.now() / 1000)) : path;
    return new Promise((resolve, reject) => {
      const r = request(
        {
          host: this.server.host,
          port: this.server.port,
          method,
          path: fullPath,
          agent: this.agent,
          headers: payload.length > 0 ? { 'content-type': 'application/json', 'content-length': payload.length } : {},
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => {
            if (text.length < 10_000) text += c;
          });
          res.on('end', () => {
            let json: unknown = null;
            try {
              json = JSON.parse(text);
            } catch {
              json = null;
            }
            resolve({ status: res.statusCode ?? 0, text, json });
          });
        },
      );
      r.setTimeout(REQUEST_TIMEOUT_MS, () => r.destroy(new Error(`${method} ${path} timed out after ${REQUEST_TIMEOUT_MS} ms`)));
      r.on('error', reject);
      r.end(payload);
    });
  }
}
