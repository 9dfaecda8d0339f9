/**
 * Every scenario, in the order a full run executes them. To add one: write `scenarios/<name>.ts` exporting
 * a `Scenario` and list it here.
 */
import type { Scenario } from './scenario';
import { connectRate } from './scenarios/connect-rate';
import { fanout10k, fanout1k, fanout1kMax } from './scenarios/fanout';
import { idleMemory } from './scenarios/idle-memory';
import { multiChannel } from './scenarios/multi-channel';
import { presenceJoin } from './scenarios/presence-join';
import { push, pushThreads } from './scenarios/push';
import { redisHop } from './scenarios/redis-hop';
import { rest100Subs, restNoSubs } from './scenarios/rest-trigger';

export const SCENARIOS: readonly Scenario[] = [
  fanout1k,
  fanout1kMax,
  fanout10k,
  multiChannel,
  idleMemory,
  connectRate,
  restNoSubs,
  rest100Subs,
  presenceJoin,
  push,
  pushThreads,
  redisHop,
];
