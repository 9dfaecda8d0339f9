/**
 * Memory held per idle connection: RSS growth of the server process divided by the connections added, each
 * connection subscribed to a channel of its own (the usual per-user channel), plus the CPU the server spends
 * while they sit idle.
 */
import { DeliveryCounter } from '../delivery-counter';
import { sleep } from '../load-patterns';
import { MeasureWindow, round, windowNotes } from '../measure-window';
import { processRssKb } from '../proc-stats';
import type { Scenario, ScenarioContext, ScenarioResult } from '../scenario';
import { WsFleet } from '../ws-fleet';

const SUBSCRIBE_TIMEOUT_MS = 30_000;

export const idleMemory: Scenario = {
  name: 'idle-memory',
  summary: '19,500 idle sockets, each subscribed to its own channel: server RSS per connection (VmRSS delta ÷ N)',
  headline: [
    { key: 'rssPerConnectionKb', label: 'RSS/conn (KB)' },
    { key: 'rssAfterMb', label: 'RSS (MB)' },
    { key: 'idleCpuPct', label: 'idle CPU (%)' },
  ],
  run: runIdleMemory,
};

async function runIdleMemory(ctx: ScenarioContext): Promise<ScenarioResult> {
  const { server } = ctx;
  if (server.pid === null) throw new Error('idle-memory needs the server PID (pass --pid for an external server)');
  const pid = server.pid;
  const fleet = new WsFleet(
    { host: server.host, port: server.port, key: server.app.key, pid },
    new DeliveryCounter(),
  );
  ctx.onCleanup(() => fleet.closeAll());

  const connections = ctx.count(19_500, 50);
  const rssBeforeKb = processRssKb(pid);
  ctx.log(`opening ${connections} idle subscribed sockets (RSS before ${Math.round(rssBeforeKb / 1024)} MB)`);
  const connectStartMs = performance.now();
  await fleet.open(connections, 256, (c, i) => c.subscribe(`bench-idle-${i}`, SUBSCRIBE_TIMEOUT_MS));
  const connectS = (performance.now() - connectStartMs) / 1000;
  const rssPeakKb = processRssKb(pid);

  // Let allocation from the connect burst settle (GC, freed handshake buffers) before reading RSS, then
  // watch the idle connections for a while: what an idle fleet costs in CPU (timers, pings).
  await sleep(ctx.smoke ? 500 : 3000);
  const window = new MeasureWindow(pid);
  await sleep(ctx.durationMs(5, 1));
  const w = window.close();
  const rssAfterKb = processRssKb(pid);

  const figures = {
    connections,
    // Not the connect-rate figure (own channel per socket here, and unpinned setup), but a useful contrast.
    connectS: round(connectS, 2),
    rssBeforeMb: round(rssBeforeKb / 1024, 1),
    rssAfterConnectMb: round(rssPeakKb / 1024, 1),
    rssAfterMb: round(rssAfterKb / 1024, 1),
    rssPerConnectionKb: round((rssAfterKb - rssBeforeKb) / connections, 2),
    idleWindowS: w.wallS,
    idleCpuPct: w.serverCpuPct,
    otherLoadDuringCores: w.otherLoadCores,
    unexpectedCloses: fleet.unexpectedCloses,
  };
  const notes = windowNotes(w);
  if (ctx.smoke) notes.push('smoke scale: RSS per connection is dominated by noise at this size');
  return { figures, notes };
}
