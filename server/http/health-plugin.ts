import type { FastifyInstance } from 'fastify';
import type { Gateway } from '../Gateway';
import type { MemoryReading } from './memory-pressure';

/** Where the node is in its life, as `/ready` reports it. */
export type Phase = 'starting' | 'running' | 'draining';

/**
 * `/` and `/health`: the process is alive. `/ready`: it accepts traffic, i.e. it is running (not starting
 * or draining), under its memory threshold, and its backends (Redis in cluster mode) are reachable. A load
 * balancer takes a node out while `/ready` answers 503; `reasons` says why.
 */
export async function healthPlugin(
  fastify: FastifyInstance,
  opts: { gateway: Gateway; phase: () => Phase; memory: () => MemoryReading },
): Promise<void> {
  const alive = async () => ({ ok: true });
  fastify.get('/', alive);
  fastify.get('/health', alive);
  fastify.get('/ready', async (_req, reply) => {
    const g = opts.gateway;
    const phase = opts.phase();
    const memory = opts.memory();
    const adapterUp = g.adapter.healthy();
    const stateUp = g.state.healthy();
    const reasons: string[] = [];
    if (phase !== 'running') reasons.push(phase);
    else if (!g.isAccepting) reasons.push('draining');
    if (memory.over) reasons.push('memory');
    if (!adapterUp) reasons.push('adapter');
    if (!stateUp) reasons.push('state');
    const ready = reasons.length === 0;
    if (!ready) reply.code(503);
    return {
      ready,
      reasons,
      accepting: g.isAccepting,
      adapter: { name: g.adapter.name, healthy: adapterUp },
      state: { name: g.state.name, healthy: stateUp },
      memory,
    };
  });
}
