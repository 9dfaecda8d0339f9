/**
 * The REST trigger path itself: signature check, body parse, publish. rest-no-subs publishes to a channel
 * nobody is on (pure request cost); rest-100-subs adds a 100-socket fan-out per request. Requests are
 * pre-signed so that the generator's core goes to sending, and kept 32 in flight on keep-alive connections.
 * Against the reference (a bare node:http server that parses the JSON body and fans out, checking nothing)
 * they measure the floor of Node's HTTP on this machine, not a peer: the signature, validation and limits
 * are what Herald adds on top.
 */
import { MeasureWindow, cpuPerUnitUs, round, windowNotes } from '../measure-window';
import { makePayload, nowUs } from '../payload';
import type { SignedRequest } from '../rest-client';
import { type Scenario, type ScenarioContext, type ScenarioResult } from '../scenario';
import { afterWarmUp, drainDeliveries, triggerFlatOut, triggerRig, warmUpFlatOut } from '../trigger-load';

const IN_FLIGHT = 32;
/** Distinct pre-signed requests, reused round-robin; the 600 s timestamp window easily covers a run. */
const POOL_SIZE = 512;
const SUBSCRIBE_TIMEOUT_MS = 15_000;

export const restNoSubs: Scenario = {
  name: 'rest-no-subs',
  summary: `REST triggers to a channel without subscribers, ${IN_FLIGHT} in flight on keep-alive: requests/s, CPU/request`,
  headline: [
    { key: 'requestsPerS', label: 'requests/s' },
    { key: 'cpuPerRequestUs', label: 'CPU/request (µs)' },
  ],
  run: (ctx) => runRestTrigger(ctx, 0),
};

export const rest100Subs: Scenario = {
  name: 'rest-100-subs',
  summary: `REST triggers to a channel with 100 subscribers, ${IN_FLIGHT} in flight: requests/s`,
  headline: [
    { key: 'requestsPerS', label: 'requests/s' },
    { key: 'cpuPerRequestUs', label: 'CPU/request (µs)' },
  ],
  run: (ctx) => runRestTrigger(ctx, 100),
};

async function runRestTrigger(ctx: ScenarioContext, fullSubscribers: number): Promise<ScenarioResult> {
  const { server } = ctx;
  const channel = fullSubscribers === 0 ? 'bench-rest-empty' : 'bench-rest-subscribed';
  const { counter, fleet, rest } = triggerRig(ctx, IN_FLIGHT);

  const subscribers = fullSubscribers === 0 ? 0 : ctx.count(fullSubscribers, 10);
  if (subscribers > 0) {
    ctx.log(`subscribing ${subscribers} sockets to ${channel}`);
    await fleet.open(subscribers, 100, (c) => c.subscribe(channel, SUBSCRIBE_TIMEOUT_MS));
  }
  const pool: SignedRequest[] = Array.from({ length: POOL_SIZE }, () => rest.signTrigger([channel], makePayload(nowUs())));

  // Open every keep-alive connection and prove the path, then run the window's own load until warm.
  await Promise.all(pool.slice(0, IN_FLIGHT).map((req) => rest.post(req)));
  await afterWarmUp(rest, counter, IN_FLIGHT * subscribers, 'deliveries');
  const load = { rest, counter, next: (i: number) => pool[i % POOL_SIZE], fanout: subscribers, inFlight: IN_FLIGHT, maxUndelivered: 4 * IN_FLIGHT };
  await warmUpFlatOut(ctx, load, 'deliveries');

  const durationMs = ctx.durationMs(10, 2);
  ctx.log(`triggering flat out for ${durationMs / 1000} s`);
  const window = new MeasureWindow(server.pid);
  const requests = await triggerFlatOut({ ...load, durationMs });
  rest.assertUsable();
  const expected = rest.ok * subscribers;
  const drained = await drainDeliveries(counter, expected);
  const w = window.close();
  // Requests/s over the trigger phase only; the drain wait is not request time.
  const requestSpanS = durationMs / 1000;
  const figures = {
    subscribers,
    requests,
    restErrors: rest.failed,
    restConnectionsOpened: rest.connectionsOpened,
    requestsPerS: round(rest.ok / requestSpanS, 0),
    deliveries: counter.count,
    lost: Math.max(0, expected - counter.count),
    deliveriesPerS: subscribers === 0 ? null : round(counter.count / requestSpanS, 0),
    serverCpuS: w.serverCpuS,
    serverCpuPct: w.serverCpuPct,
    cpuPerRequestUs: cpuPerUnitUs(w.serverCpuS, rest.ok),
    generatorCpuPct: w.generatorCpuPct,
    otherLoadDuringCores: w.otherLoadCores,
    unexpectedCloses: fleet.unexpectedCloses,
  };
  const notes = windowNotes(w);
  if (!drained) notes.push(`${expected - counter.count} deliveries did not arrive within the drain timeout`);
  return { figures, notes };
}
