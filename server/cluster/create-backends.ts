import type { Logger } from 'pino';
import { RedisAdapter } from '../adapter/RedisAdapter';
import type { Gateway } from '../Gateway';
import type { Backends } from '../HeraldServer';
import type { HeraldOptions } from '../options/Options';
import { RedisState } from '../state/RedisState';
import { redisSpec, type RedisConfig } from './redis-connection';

/** The key prefix when none is configured. */
export const DEFAULT_REDIS_PREFIX = 'herald:';

/** Timings a test (or an operator with unusual needs) may change; the defaults suit production. */
export interface ClusterTuning {
  nodeId?: string;
  heartbeatMs?: number;
  heartbeatTtlMs?: number;
  unsubscribeDelayMs?: number;
  startTimeoutMs?: number;
}

export interface RedisBackends extends Backends {
  adapter: RedisAdapter;
  state: RedisState;
  /** Connects the backends to the gateway built on them: resubscribes and cluster transitions. */
  attach(gateway: Gateway): void;
}

/** Redis adapter and state for one node of a cluster. */
export function createRedisBackends(opts: { redis: string | RedisConfig; prefix?: string; log: Logger } & ClusterTuning): RedisBackends {
  const spec = redisSpec(opts.redis);
  const prefix = opts.prefix ?? DEFAULT_REDIS_PREFIX;
  const adapter = new RedisAdapter({ spec, prefix, log: opts.log, unsubscribeDelayMs: opts.unsubscribeDelayMs, startTimeoutMs: opts.startTimeoutMs });
  const state = new RedisState({
    spec,
    prefix,
    log: opts.log,
    nodeId: opts.nodeId,
    heartbeatMs: opts.heartbeatMs,
    heartbeatTtlMs: opts.heartbeatTtlMs,
    startTimeoutMs: opts.startTimeoutMs,
  });
  return {
    adapter,
    state,
    attach(gateway) {
      adapter.bindLocalChannels(() => gateway.registry.localChannels());
      state.onTransitions((t) => gateway.applyTransitions(t));
      state.onRepaired(async () => {
        // Once this node hears its channels again, tell its sockets what they missed meanwhile.
        await adapter.whenSynced(10000);
        await gateway.resync();
      });
    },
  };
}

/**
 * Chooses the backends once, at start-up: Redis when `redis` is configured, else none (the server then uses
 * the in-process LocalAdapter and LocalState, which need no setup).
 */
export function createBackends(options: HeraldOptions, log: Logger): Backends & { attach?(gateway: Gateway): void } {
  if (!options.redis) return {};
  return createRedisBackends({ redis: options.redis, prefix: options.redisPrefix, log });
}
