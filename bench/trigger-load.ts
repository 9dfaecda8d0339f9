/**
 * REST trigger load shared by the delivery scenarios: at a fixed rate (latency), or as fast as the server
 * accepts with bounded in-flight requests and bounded undelivered fan-out (throughput); then waiting for the
 * deliveries and turning the counts into figures.
 */
import { DeliveryCounter } from './delivery-counter';
import { runAtRate, runClosedLoop, waitUntil } from './load-patterns';
import { cpuPerUnitUs, round, windowNotes, type MeasureWindow, type WindowFigures } from './measure-window';
import { makePayload, nowUs } from './payload';
import { RestClient, type SignedRequest } from './rest-client';
import type { Figure, ScenarioContext, ScenarioResult } from './scenario';
import { WsFleet } from './ws-fleet';

/** How long to wait for deliveries after the last trigger before counting the rest as lost. */
export const DRAIN_TIMEOUT_MS = 15_000;

/** `ratePerSecond` triggers for `durationMs`, each stamped with its send time. Returns triggers sent. */
export function triggerAtRate(
  rest: RestClient,
  channels: (i: number) => string[],
  ratePerSecond: number,
  durationMs: number,
): Promise<number> {
  return runAtRate(ratePerSecond, durationMs, (i) => rest.post(rest.signTrigger(channels(i), makePayload(nowUs()))));
}

export interface FlatOutOptions {
  rest: RestClient;
  counter: DeliveryCounter;
  /** Next request to send: signed now (stamped payload) or taken from a pre-signed pool. */
  next: (i: number) => SignedRequest;
  /** Deliveries each accepted trigger produces. */
  fanout: number;
  /** REST requests in flight at once. */
  inFlight: number;
  /**
   * Accepted triggers whose deliveries may still be on their way before sending pauses; keeps the queue
   * (and so memory and latency) bounded when the server accepts faster than it delivers.
   */
  maxUndelivered: number;
  durationMs: number;
}

/** Triggers as fast as they are accepted, within the bounds above. Returns triggers sent. */
export async function triggerFlatOut(o: FlatOutOptions): Promise<number> {
  let started = 0;
  const ready =
    o.fanout === 0
      ? undefined
      : (): boolean => (started - o.rest.failed) * o.fanout - o.counter.count < o.maxUndelivered * o.fanout;
  await runClosedLoop(
    o.inFlight,
    o.durationMs,
    () => o.rest.post(o.next(started++)),
    ready,
  );
  return started;
}

/**
 * Seconds of flat-out triggers before a throughput window opens. A fresh process runs its hot paths in
 * V8's lower tiers for its first thousands of requests (its first few hundred ms), and on a pinned core the
 * optimizing compiler takes turns with the event loop. In 2 s windows that opened after 32 warm-up
 * requests, Herald's rest-no-subs cost 89–188 µs of CPU per request and the bare server's 34, against 53–54
 * and 28 after this warm-up (alternating runs). A server in service is warm, so every target gets the same warm-up at the window's
 * own load.
 */
export const FLAT_OUT_WARM_UP_S = { full: 2, smoke: 0.5 };

/**
 * The warm-up before a `triggerFlatOut` window: the same load for `FLAT_OUT_WARM_UP_S`, then waits for
 * its deliveries and forgets them (`what` names the recipients in the error when some never arrive).
 */
export async function warmUpFlatOut(ctx: ScenarioContext, o: Omit<FlatOutOptions, 'durationMs'>, what: string): Promise<void> {
  await triggerFlatOut({ ...o, durationMs: ctx.warmUpMs(FLAT_OUT_WARM_UP_S.full, FLAT_OUT_WARM_UP_S.smoke) });
  await afterWarmUp(o.rest, o.counter, o.rest.ok * o.fanout, what);
}

/**
 * Seconds of triggers at the scenario's own rate before a fixed-rate window opens. Without it, the first ~8
 * triggers of fanout-1k's window (server and generator alike) ran 2–3× slower than the rest and alone set
 * its p99 (each trigger is 1 % of its deliveries).
 */
export const RATE_WARM_UP_S = { full: 2, smoke: 0.2 };

/** The warm-up before a `triggerAtRate` window, as `warmUpFlatOut` is for a flat-out one. */
export async function warmUpAtRate(
  ctx: ScenarioContext,
  o: { rest: RestClient; counter: DeliveryCounter; channels: string[]; rate: number; fanout: number },
  what: string,
): Promise<void> {
  const sent = await triggerAtRate(o.rest, () => o.channels, o.rate, ctx.warmUpMs(RATE_WARM_UP_S.full, RATE_WARM_UP_S.smoke));
  await afterWarmUp(o.rest, o.counter, sent * o.fanout, what);
}

/** Waits (bounded) until `expected` deliveries were counted; false when some never came. */
export function drainDeliveries(counter: DeliveryCounter, expected: number): Promise<boolean> {
  return waitUntil(() => counter.count >= expected, DRAIN_TIMEOUT_MS);
}

/**
 * Standard figures of a delivery window. The delivery rate is taken from the window start to the last
 * delivery, so waiting for stragglers does not dilute it.
 */
export function deliveryFigures(
  counter: DeliveryCounter,
  expected: number,
  window: WindowFigures,
  windowStartUs: number,
): Record<string, Figure> {
  const deliverySpanS = counter.count === 0 ? window.wallS : (counter.lastRecvUs - windowStartUs) / 1e6;
  return {
    deliveries: counter.count,
    expectedDeliveries: expected,
    lost: Math.max(0, expected - counter.count),
    deliverySpanS: round(deliverySpanS, 3),
    deliveriesPerS: round(counter.count / deliverySpanS, 0),
    serverCpuS: window.serverCpuS,
    serverCpuPct: window.serverCpuPct,
    cpuPerDeliveryUs: cpuPerUnitUs(window.serverCpuS, counter.count),
    latencyP50Ms: roundOrNull(counter.latency.quantileMs(0.5)),
    latencyP99Ms: roundOrNull(counter.latency.quantileMs(0.99)),
    latencyMaxMs: roundOrNull(counter.latency.maxMs()),
    generatorCpuPct: window.generatorCpuPct,
    otherLoadDuringCores: window.otherLoadCores,
  };
}

function roundOrNull(v: number | null): number | null {
  return v === null ? null : round(v, 2);
}

/**
 * After a warm-up trigger: proves the REST path and that all `fanout` sockets receive, then zeroes the
 * counts so the window starts clean. `what` names the recipients in the error.
 */
export async function afterWarmUp(rest: RestClient, counter: DeliveryCounter, fanout: number, what: string): Promise<void> {
  rest.assertUsable();
  if (!(await drainDeliveries(counter, fanout))) throw new Error(`warm-up trigger reached ${counter.count} of ${fanout} ${what}`);
  counter.reset();
  rest.resetCounts();
}

/**
 * Ends a trigger window: waits for every accepted trigger's `fanout` deliveries (bounded), closes the
 * window and returns the standard figures after the scenario's own (`head`).
 */
export async function endTriggerWindow(
  o: { rest: RestClient; counter: DeliveryCounter; window: MeasureWindow; fanout: number; durationMs: number; triggers: number; unexpectedCloses: () => number },
  head: Record<string, Figure>,
): Promise<ScenarioResult> {
  o.rest.assertUsable();
  const expected = o.rest.ok * o.fanout;
  await drainDeliveries(o.counter, expected);
  const w = o.window.close();
  const figures = {
    ...head,
    triggers: o.triggers,
    restErrors: o.rest.failed,
    triggersPerS: Math.round((o.rest.ok / o.durationMs) * 1000),
    ...deliveryFigures(o.counter, expected, w, o.window.startUs),
    unexpectedCloses: o.unexpectedCloses(),
  };
  return { figures, notes: windowNotes(w) };
}

/**
 * The generator side of a trigger scenario on `ctx.server`: a delivery counter, the subscribers' WebSocket
 * fleet and a keep-alive REST client with `restConnections` connections, all closed after the scenario.
 */
export function triggerRig(ctx: ScenarioContext, restConnections: number): { counter: DeliveryCounter; fleet: WsFleet; rest: RestClient } {
  const { server } = ctx;
  const counter = new DeliveryCounter();
  const fleet = new WsFleet({ host: server.host, port: server.port, key: server.app.key, pid: server.pid }, counter);
  ctx.onCleanup(() => fleet.closeAll());
  const rest = new RestClient(server, server.app, restConnections);
  ctx.onCleanup(() => rest.close());
  return { counter, fleet, rest };
}
