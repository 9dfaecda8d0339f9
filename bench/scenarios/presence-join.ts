/**
 * Presence joins into a channel that already holds 1,000 members. A join costs the signature check, the
 * member-list reply (which grows with the channel) and a member_added to every member already there, so
 * each window runs until every join was acknowledged and every member_added was delivered. Five rounds of
 * 1,000 joins, each round's joiners leaving again between windows, so every round joins the same channel.
 */
import { DeliveryCounter } from '../delivery-counter';
import { forEachBounded, waitUntil } from '../load-patterns';
import { MeasureWindow, cpuPerUnitUs, round, windowNotes } from '../measure-window';
import { REFERENCE_SKIP, type Scenario, type ScenarioContext, type ScenarioResult } from '../scenario';
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
const MEMBER_REMOVED = 'pusher_internal:member_removed';

export const presenceJoin: Scenario = {
  name: 'presence-join',
  summary: `presence joins into a channel already holding 1,000 members (${JOINS_IN_FLIGHT} in flight): joins/s`,
  headline: [
    { key: 'joinsPerS', label: 'joins/s' },
    { key: 'cpuPerJoinUs', label: 'CPU/join (µs)' },
  ],
  skipTargets: { reference: REFERENCE_SKIP },
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
  const rounds = ctx.smoke ? 1 : 5;
  ctx.log(`filling ${CHANNEL} with ${members} members`);
  // One at a time is slow and many at a time floods early members with member_added; 64 is a middle way.
  await fleet.open(members, 64, (c, i) => join(c, `member-${i}`));
  // Let the member_added storm of the fill phase finish before the first window opens (same pair rule as below).
  const fillAdded = (members * (members - 1)) / 2;
  if (!(await waitUntil(() => counter.other(MEMBER_ADDED) >= fillAdded, DRAIN_TIMEOUT_MS))) {
    throw new Error(`fill phase: ${counter.other(MEMBER_ADDED)} of ${fillAdded} member_added arrived`);
  }

  // Rounds of joins into the same 1,000-member channel: each round's joiners leave again (outside the
  // window) so every round starts from the same channel, and the measured windows add up to seconds, not a
  // half-second that the drain tail and timer ticks would dominate.
  const totals = { wallS: 0, ackedS: 0, serverCpuS: 0 as number | null, generatorCpuS: 0, otherLoadCoreS: 0, added: 0, expectedAdded: 0 };
  let drainedAll = true;
  for (let r = 0; r < rounds; r++) {
    ctx.log(`round ${r + 1}/${rounds}: connecting ${joiners} joiners`);
    const joining = await fleet.open(joiners, 200);
    counter.reset();
    ctx.log(`round ${r + 1}/${rounds}: joining ${joiners} sockets, ${JOINS_IN_FLIGHT} in flight`);
    const window = new MeasureWindow(server.pid);
    await forEachBounded(joiners, JOINS_IN_FLIGHT, (i) => join(joining[i], `joiner-${r}-${i}`));
    totals.ackedS += (performance.now() - window.startUs / 1000) / 1000;
    // Each initial member sees every joiner; of two joiners, exactly the earlier sees the later.
    const expectedAdded = members * joiners + (joiners * (joiners - 1)) / 2;
    const drained = await waitUntil(() => counter.other(MEMBER_ADDED) >= expectedAdded, DRAIN_TIMEOUT_MS);
    const w = window.close();
    drainedAll &&= drained;
    totals.wallS += w.wallS;
    totals.serverCpuS = totals.serverCpuS === null || w.serverCpuS === null ? null : totals.serverCpuS + w.serverCpuS;
    totals.generatorCpuS += (w.generatorCpuPct / 100) * w.wallS;
    totals.otherLoadCoreS += w.otherLoadCores * w.wallS;
    totals.added += counter.other(MEMBER_ADDED);
    totals.expectedAdded += expectedAdded;

    // The joiners leave: closed at once, they read nothing more, so exactly the initial members see each
    // one go (members × joiners member_removed). Waiting for those puts the channel back at `members`.
    counter.reset();
    for (const c of joining) c.close();
    if (!(await waitUntil(() => counter.other(MEMBER_REMOVED) >= members * joiners, DRAIN_TIMEOUT_MS))) {
      throw new Error(`round ${r + 1}: ${counter.other(MEMBER_REMOVED)} of ${members * joiners} member_removed arrived`);
    }
  }
  const joins = joiners * rounds;
  const w = {
    wallS: round(totals.wallS, 3),
    serverCpuS: totals.serverCpuS === null ? null : round(totals.serverCpuS, 2),
    serverCpuPct: totals.serverCpuS === null ? null : round((totals.serverCpuS / totals.wallS) * 100, 1),
    generatorCpuPct: round((totals.generatorCpuS / totals.wallS) * 100, 1),
    otherLoadCores: round(totals.otherLoadCoreS / totals.wallS, 2),
  };

  const figures = {
    initialMembers: members,
    rounds,
    joins,
    joinsAckedPerS: round(joins / totals.ackedS, 0),
    joinsPerS: round(joins / w.wallS, 0),
    memberAddedDelivered: totals.added,
    memberAddedExpected: totals.expectedAdded,
    windowS: w.wallS,
    serverCpuS: w.serverCpuS,
    serverCpuPct: w.serverCpuPct,
    cpuPerJoinUs: cpuPerUnitUs(w.serverCpuS, joins),
    generatorCpuPct: w.generatorCpuPct,
    otherLoadDuringCores: w.otherLoadCores,
    unexpectedCloses: fleet.unexpectedCloses,
  };
  const notes = windowNotes(w);
  if (!drainedAll) notes.push(`member_added: ${figures.memberAddedDelivered} of ${figures.memberAddedExpected} arrived in time`);
  return { figures, notes };
}
