/**
 * Scenarios whose server feature has not landed yet. They are listed (and print a `skipped` line) so that
 * the result table already has their rows; each becomes a real scenario file when its feature exists.
 */
import type { Scenario } from '../scenario';

function pending(name: string, summary: string, needs: string, headline: Scenario['headline']): Scenario {
  return {
    name,
    summary,
    headline,
    skipped: `needs ${needs}`,
    run: () => Promise.reject(new Error(`${name} is not implemented yet (${needs})`)),
  };
}

export const push = pending(
  'push',
  'Web Push sends/s for subscribers without a live connection',
  'web push (push fallback feature)',
  [{ key: 'sendsPerS', label: 'sends/s' }],
);

export const redisHop = pending(
  'redis-hop',
  'trigger on node A → receive on node B through Redis: latency p50/p99',
  'the Redis adapter (multi-node feature)',
  [
    { key: 'latencyP50Ms', label: 'p50 (ms)' },
    { key: 'latencyP99Ms', label: 'p99 (ms)' },
  ],
);
