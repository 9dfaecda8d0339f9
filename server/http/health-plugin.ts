import type { FastifyInstance } from 'fastify';
import type { Gateway } from '../Gateway';

/** `/` and `/health`: the process is alive. `/ready`: it accepts traffic (not draining, broker reachable). */
export async function healthPlugin(fastify: FastifyInstance, opts: { gateway: Gateway; ready: () => boolean }): Promise<void> {
  const alive = async () => ({ ok: true });
  fastify.get('/', alive);
  fastify.get('/health', alive);
  fastify.get('/ready', async (_req, reply) => {
    const g = opts.gateway;
    const ready = opts.ready() && g.healthy();
    if (!ready) reply.code(503);
    return {
      ready,
      accepting: g.isAccepting,
      adapter: { name: g.adapter.name, healthy: g.adapter.healthy() },
      state: { name: g.state.name, healthy: g.state.healthy() },
    };
  });
}
