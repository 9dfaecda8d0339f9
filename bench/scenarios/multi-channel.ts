/**
 * Many channels with one subscriber each, every trigger addressed to 100 of them (the REST maximum): the
 * per-channel lookup and multi-channel trigger path rather than a single large fan-out.
 */
import { MeasureWindow } from '../measure-window';
import { makePayload, nowUs } from '../payload';
import type { Scenario, ScenarioResult, ScenarioContext } from '../scenario';
import { afterWarmUp, endTriggerWindow, triggerFlatOut, triggerRig, warmUpFlatOut } from '../trigger-load';

/** Channels per trigger: the protocol's limit (protocol.md §3). */
const CHANNELS_PER_TRIGGER = 100;
const SUBSCRIBE_TIMEOUT_MS = 15_000;

export const multiChannel: Scenario = {
  name: 'multi-channel',
  summary: '5,000 sockets on 5,000 channels, 100 channels per trigger, as fast as accepted: deliveries/s',
  headline: [
    { key: 'deliveriesPerS', label: 'deliveries/s' },
    { key: 'cpuPerDeliveryUs', label: 'CPU/delivery (µs)' },
  ],
  run: runMultiChannel,
};

async function runMultiChannel(ctx: ScenarioContext): Promise<ScenarioResult> {
  const { server } = ctx;
  const { counter, fleet, rest } = triggerRig(ctx, 16);

  const sockets = ctx.count(5000, 50, CHANNELS_PER_TRIGGER);
  const channelName = (i: number): string => `bench-mc-${i}`;
  ctx.log(`subscribing ${sockets} sockets to one channel each`);
  await fleet.open(sockets, 200, (c, i) => c.subscribe(channelName(i), SUBSCRIBE_TIMEOUT_MS));

  // Triggers walk through the channels in groups of 100, so every socket receives in turn.
  const perTrigger = Math.min(CHANNELS_PER_TRIGGER, sockets);
  const groups = Math.floor(sockets / perTrigger);
  const groupChannels = Array.from({ length: groups }, (_, g) =>
    Array.from({ length: perTrigger }, (_, k) => channelName(g * perTrigger + k)),
  );

  await rest.post(rest.signTrigger(groupChannels[0], makePayload(nowUs())));
  await afterWarmUp(rest, counter, perTrigger, 'channels');
  const load = {
    rest,
    counter,
    next: (i: number) => rest.signTrigger(groupChannels[i % groups], makePayload(nowUs())),
    fanout: perTrigger,
    inFlight: 16,
    maxUndelivered: 64,
  };
  await warmUpFlatOut(ctx, load, 'deliveries');

  const durationMs = ctx.durationMs(10, 2);
  ctx.log(`triggering ${perTrigger} channels per request flat out for ${durationMs / 1000} s`);
  const window = new MeasureWindow(server.pid);
  const triggers = await triggerFlatOut({ ...load, durationMs });
  return endTriggerWindow(
    { rest, counter, window, fanout: perTrigger, durationMs, triggers, unexpectedCloses: () => fleet.unexpectedCloses },
    { sockets, channelsPerTrigger: perTrigger },
  );
}
