/**
 * A reconnect storm: sockets connecting and subscribing to one channel as fast as the server accepts them
 * (256 handshakes in flight), from the first TCP connect to the last subscription_succeeded.
 */
import { DeliveryCounter } from '../delivery-counter';
import { MeasureWindow, cpuPerUnitUs, round, windowNotes } from '../measure-window';
import type { Scenario, ScenarioContext, ScenarioResult } from '../scenario';
import { WsFleet } from '../ws-fleet';

const CHANNEL = 'bench-connect-rate';
const SUBSCRIBE_TIMEOUT_MS = 30_000;
const IN_FLIGHT = 256;

export const connectRate: Scenario = {
  name: 'connect-rate',
  summary: `connect + subscribe 19,500 sockets to one channel (${IN_FLIGHT} in flight): connections/s`,
  headline: [
    { key: 'connectionsPerS', label: 'connections/s' },
    { key: 'cpuPerConnectionUs', label: 'CPU/conn (µs)' },
  ],
  run: runConnectRate,
};

async function runConnectRate(ctx: ScenarioContext): Promise<ScenarioResult> {
  const { server } = ctx;
  const fleet = new WsFleet(
    { host: server.host, port: server.port, key: server.app.key, pid: server.pid },
    new DeliveryCounter(),
  );
  ctx.onCleanup(() => fleet.closeAll());
  const connections = ctx.count(19_500, 50);
  ctx.log(`connecting and subscribing ${connections} sockets`);
  const window = new MeasureWindow(server.pid);
  await fleet.open(connections, IN_FLIGHT, (c) => c.subscribe(CHANNEL, SUBSCRIBE_TIMEOUT_MS));
  const w = window.close();
  const figures = {
    connections,
    inFlight: IN_FLIGHT,
    seconds: w.wallS,
    connectionsPerS: round(connections / w.wallS, 0),
    serverCpuS: w.serverCpuS,
    serverCpuPct: w.serverCpuPct,
    cpuPerConnectionUs: cpuPerUnitUs(w.serverCpuS, connections),
    generatorCpuPct: w.generatorCpuPct,
    otherLoadDuringCores: w.otherLoadCores,
    unexpectedCloses: fleet.unexpectedCloses,
  };
  return { figures, notes: windowNotes(w) };
}
