/**
 * A bare local Web Push endpoint for the `push` scenario, run as a child process of the generator (so on the
 * generator's CPU): drains each request body without decrypting it, answers 201, counts requests per path
 * prefix, and tells the parent over IPC when a target count is reached. Times are CLOCK_MONOTONIC µs
 * (`process.hrtime`), the clock the parent uses too, so they can be compared across the two processes.
 *
 * Parent → child: `{ type: 'expect', prefix, count }`, `{ type: 'stats' }`.
 * Child → parent: `{ type: 'listening', port }`, `{ type: 'reached', prefix, count, firstUs, lastUs }`,
 * `{ type: 'stats', ... }`.
 */
import { createServer } from 'node:http';

/** Monotonic µs shared by every process on the machine (CLOCK_MONOTONIC). */
export function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

export interface PrefixCount {
  count: number;
  /** Requests without the headers of an encrypted, VAPID-signed Web Push (should stay 0). */
  malformed: number;
  firstUs: number;
  lastUs: number;
  bodyBytes: number;
}

export type EndpointMessage =
  | { type: 'listening'; port: number }
  | ({ type: 'reached'; prefix: string } & PrefixCount)
  | { type: 'stats'; connections: number; byPrefix: Record<string, PrefixCount> };

export type EndpointCommand = { type: 'expect'; prefix: string; count: number } | { type: 'stats' };

function serve(): void {
  const byPrefix = new Map<string, PrefixCount>();
  const expected = new Map<string, number>();
  let connections = 0;
  const send = (m: EndpointMessage): void => {
    process.send?.(m);
  };
  const server = createServer((req, res) => {
    // Paths are /<prefix>/<i>; the prefix separates warm-up traffic from the measured publish.
    const url = req.url ?? '/';
    const prefix = url.split('/')[1] ?? '';
    const wellFormed =
      req.method === 'POST' &&
      req.headers['content-encoding'] === 'aes128gcm' &&
      typeof req.headers.authorization === 'string' &&
      req.headers.authorization.startsWith('vapid ') &&
      typeof req.headers.ttl === 'string';
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
    });
    req.on('end', () => {
      res.writeHead(201, { 'content-length': '0' }).end();
      const now = monotonicUs();
      let c = byPrefix.get(prefix);
      if (c === undefined) {
        c = { count: 0, malformed: 0, firstUs: now, lastUs: now, bodyBytes: 0 };
        byPrefix.set(prefix, c);
      }
      c.count++;
      c.lastUs = now;
      c.bodyBytes += bytes;
      if (!wellFormed) c.malformed++;
      const want = expected.get(prefix);
      if (want !== undefined && c.count >= want) {
        expected.delete(prefix);
        send({ type: 'reached', prefix, ...c });
      }
    });
  });
  server.keepAliveTimeout = 60_000;
  server.on('connection', () => connections++);
  process.on('message', (m: EndpointCommand) => {
    if (m.type === 'expect') {
      const c = byPrefix.get(m.prefix);
      if (c !== undefined && c.count >= m.count) send({ type: 'reached', prefix: m.prefix, ...c });
      else expected.set(m.prefix, m.count);
    } else if (m.type === 'stats') {
      send({ type: 'stats', connections, byPrefix: Object.fromEntries(byPrefix) });
    }
  });
  // The parent gone (even killed) means the channel closes: never outlive it.
  process.on('disconnect', () => process.exit(0));
  server.listen(0, '127.0.0.1', () => {
    const addr = server.address();
    send({ type: 'listening', port: typeof addr === 'object' && addr !== null ? addr.port : 0 });
  });
}

if (require.main === module) serve();
