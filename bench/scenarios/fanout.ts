/**
 * One channel, many subscribers, REST triggers: the broadcast path (encode once, write N times).
 * fanout-1k and fanout-10k trigger at a fixed rate and report latency and CPU per delivery; fanout-1k-max
 * triggers as fast as the server accepts and reports throughput.
 */
import { MeasureWindow } from '../measure-window';
import { makePayload, nowUs } from '../payload';
import type { Scenario, ScenarioContext, ScenarioResult } from '../scenario';
import { afterWarmUp, endTriggerWindow, triggerAtRate, triggerFlatOut, triggerRig, warmUpAtRate, warmUpFlatOut } from '../trigger-load';

const CHANNEL = 'bench-fanout';
const SUBSCRIBE_TIMEOUT_MS = 15_000;
/** Handshakes in flight while setting up subscribers (setup is not measured here). */
const SETUP_CONCURRENCY = 200;

interface FanoutSpec {
  name: string;
  summary: string;
  subscribers: { full: number; smoke: number };
  /** Triggers per second, or `max` for as fast as accepted. */
  rate: number | 'max';
  seconds: { full: number; smoke: number };
  headline: Scenario['headline'];
}

function fanoutScenario(spec: FanoutSpec): Scenario {
  return {
    name: spec.name,
    summary: spec.summary,
    headline: spec.headline,
    run: (ctx) => runFanout(spec, ctx),
  };
}

async function runFanout(spec: FanoutSpec, ctx: ScenarioContext): Promise<ScenarioResult> {
  const { server } = ctx;
  const { counter, fleet, rest } = triggerRig(ctx, 16);

  const subscribers = ctx.count(spec.subscribers.full, spec.subscribers.smoke);
  ctx.log(`subscribing ${subscribers} sockets to ${CHANNEL}`);
  await fleet.open(subscribers, SETUP_CONCURRENCY, (c) => c.subscribe(CHANNEL, SUBSCRIBE_TIMEOUT_MS));

  // One warm-up trigger: opens the REST keep-alive connection and takes the first-call costs out of the
  // window, and proves that every subscriber is really receiving.
  await rest.post(rest.signTrigger([CHANNEL], makePayload(nowUs())));
  await afterWarmUp(rest, counter, subscribers, 'subscribers');
  const flatOut = { rest, counter, next: () => rest.signTrigger([CHANNEL], makePayload(nowUs())), fanout: subscribers, inFlight: 8, maxUndelivered: 16 };
  if (spec.rate === 'max') await warmUpFlatOut(ctx, flatOut, 'deliveries');
  else await warmUpAtRate(ctx, { rest, counter, channels: [CHANNEL], rate: spec.rate, fanout: subscribers }, 'deliveries');

  const durationMs = ctx.durationMs(spec.seconds.full, spec.seconds.smoke);
  ctx.log(`triggering ${spec.rate === 'max' ? 'flat out' : `${spec.rate}/s`} for ${durationMs / 1000} s`);
  const window = new MeasureWindow(server.pid);
  const triggers =
    spec.rate === 'max' ? await triggerFlatOut({ ...flatOut, durationMs }) : await triggerAtRate(rest, () => [CHANNEL], spec.rate, durationMs);
  return endTriggerWindow(
    { rest, counter, window, fanout: subscribers, durationMs, triggers, unexpectedCloses: () => fleet.unexpectedCloses },
    { subscribers },
  );
}

export const fanout1k = fanoutScenario({
  name: 'fanout-1k',
  summary: '1 channel × 1,000 subscribers, 20 triggers/s: server CPU per delivery, latency p50/p99',
  subscribers: { full: 1000, smoke: 50 },
  rate: 20,
  seconds: { full: 15, smoke: 2 },
  headline: [
    { key: 'cpuPerDeliveryUs', label: 'CPU/delivery (µs)' },
    { key: 'latencyP50Ms', label: 'p50 (ms)' },
    { key: 'latencyP99Ms', label: 'p99 (ms)' },
  ],
});

export const fanout1kMax = fanoutScenario({
  name: 'fanout-1k-max',
  summary: '1 channel × 1,000 subscribers, triggers as fast as accepted (8 in flight): deliveries/s, CPU/delivery',
  subscribers: { full: 1000, smoke: 50 },
  rate: 'max',
  seconds: { full: 10, smoke: 2 },
  headline: [
    { key: 'deliveriesPerS', label: 'deliveries/s' },
    { key: 'cpuPerDeliveryUs', label: 'CPU/delivery (µs)' },
  ],
});

export const fanout10k = fanoutScenario({
  name: 'fanout-10k',
  summary: '1 channel × 10,000 subscribers, 2 triggers/s: latency p99',
  subscribers: { full: 10_000, smoke: 50 },
  rate: 2,
  seconds: { full: 15, smoke: 2 },
  headline: [
    { key: 'latencyP99Ms', label: 'p99 (ms)' },
    { key: 'latencyP50Ms', label: 'p50 (ms)' },
    { key: 'cpuPerDeliveryUs', label: 'CPU/delivery (µs)' },
  ],
});
