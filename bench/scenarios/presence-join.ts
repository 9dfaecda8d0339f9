/**
 * Presence joins into a channel that already holds 1,000 members. A join costs the signature check, the
 * member-list reply (which grows with the channel) and a member_added to every member already there, so the
 * window runs until every join was acknowledged and every member_added was delivered.
 */
import { DeliveryCounter } from '../delivery-counter';
import { forEachBounded, waitUntil } from '../load-patterns';
import { MeasureWindow, cpuPerUnitUs, round, windowNotes } from '../measure-window';
import type { Scenario, ScenarioContext, ScenarioResult } from '../scenario';
import { presenceAuth } from '../signing';
import { DRAIN_TIMEOUT_MS } from '../trigger-load';
import type { WsClient } from '../ws-client';
import { WsFleet } from '../ws-fleet';

const CHANNEL = 'presence-bench';
const SUBSCRIBE_TIMEOUT_MS = 30_000;
/**
 * Joins waiting for their reply at once. Real joins come from independent clients: at the target of 2,000
 * joins/s and a 100 ms round trip, about 200 are in flight (Little's law). With only 32, the closed loop
 * measured round trips rather than the server, and every batch of member_added frames was small.
 */
const JOINS_IN_FLIGHT = 256;
const MEMBER_ADDED = 'pusher_internal:member_added';

export const presenceJoin: Scenario = {
  name: 'presence-join',
  summary: `presence joins into a channel already holding 1,000 members (${JOINS_IN_FLIGHT} in flight): joins/s`,
  headline: [
    { key: 'joinsPerS', label: 'joins/s' },
    { key: 'cpuPerJoinUs', label: 'CPU/join (µs)' },
  ],
  run: runPresenceJoin,
};

async function runPresenceJoin(ctx: ScenarioContext): Promise<ScenarioResult> {
  const { server } = ctx;
  const counter = new DeliveryCounter();
  const fleet = new WsFleet({ host: server.host, port: server.port, key: server.app.key, pid: server.pid }, counter);
  ctx.onCleanup(() => fleet.closeAll());

  const join = (client: WsClient, userId: string): Promise<void> => {
    const channelData = JSON.stringify({ user_id: userId, user_info: { name: userId } });
    const auth = presenceAuth(server.app, client.socketId, CHANNEL, channelData);
    return client.subscribe(CHANNEL, SUBSCRIBE_TIMEOUT_MS, auth, channelData);
  };

  const members = ctx.count(1000, 50);
  const joiners = ctx.count(1000, 20);
  ctx.log(`filling ${CHANNEL} with ${members} members`);
  // One at a time is slow and many at a time floods early members with member_added; 64 is a middle way.
  await fleet.open(members, 64, (c, i) => join(c, `member-${i}`));
  ctx.log(`connecting ${joiners} joiners`);
  const joining = await fleet.open(joiners, 200);
  // Let the member_added storm of the fill phase finish before the window opens (same pair rule as below).
  const fillAdded = (members * (members - 1)) / 2;
  if (!(await waitUntil(() => counter.other(MEMBER_ADDED) >= fillAdded, DRAIN_TIMEOUT_MS))) {
    throw new Error(`fill phase: ${counter.other(MEMBER_ADDED)} of ${fillAdded} member_added arrived`);
  }
  counter.reset();

  ctx.log(`joining ${joiners} sockets, ${JOINS_IN_FLIGHT} in flight`);
  const window = new MeasureWindow(server.pid);
  await forEachBounded(joiners, JOINS_IN_FLIGHT, (i) => join(joining[i], `joiner-${i}`));
  const ackedS = (performance.now() - window.startUs / 1000) / 1000;
  // Each initial member sees every joiner; of two joiners, exactly the earlier sees the later.
  const expectedAdded = members * joiners + (joiners * (joiners - 1)) / 2;
  const drained = await waitUntil(() => counter.other(MEMBER_ADDED) >= expectedAdded, DRAIN_TIMEOUT_MS);
  const w = window.close();

  const figures = {
    initialMembers: members,
    joins: joiners,
    joinsAckedPerS: round(joiners / ackedS, 0),
    joinsPerS: round(joiners / w.wallS, 0),
    memberAddedDelivered: counter.other(MEMBER_ADDED),
    memberAddedExpected: expectedAdded,
    windowS: w.wallS,
    serverCpuS: w.serverCpuS,
    serverCpuPct: w.serverCpuPct,
    cpuPerJoinUs: cpuPerUnitUs(w.serverCpuS, joiners),
    generatorCpuPct: w.generatorCpuPct,
    otherLoadDuringCores: w.otherLoadCores,
    unexpectedCloses: fleet.unexpectedCloses,
  };
  const notes = windowNotes(w);
  if (!drained) notes.push(`member_added: ${figures.memberAddedDelivered} of ${expectedAdded} arrived in time`);
  return { figures, notes };
}
