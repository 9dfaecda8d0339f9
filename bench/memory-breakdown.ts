/**
 * Where the bytes of an idle connection go: starts a Herald node (or the reference server), takes a V8 heap
 * snapshot of it, opens N idle sockets each subscribed to a channel of its own (as `idle-memory` does),
 * takes another, and prints the difference per connection by kind of object, next to the RSS growth.
 *
 *   node dist/bench/memory-breakdown.js [connections=5000] [herald|reference]
 *
 * A snapshot is taken after a full GC, so it counts live objects only. What a heap snapshot cannot see
 * (kernel socket buffers are not RSS at all; malloc'd memory of libuv handles and OpenSSL is) shows up as
 * the gap between the RSS growth and the heap growth.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DeliveryCounter } from './delivery-counter';
import { sleep } from './load-patterns';
import { processRssKb } from './proc-stats';
import { killAllServersSync, startHerald, startReference, type LaunchOptions, type ServerUnderTest } from './server-process';
import { WsFleet } from './ws-fleet';

interface HeapSnapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

/** Self size by kind: objects by constructor name, everything else by V8's node type. */
function sizesByKind(file: string): Map<string, number> {
  const snap = JSON.parse(readFileSync(file, 'utf8')) as HeapSnapshot;
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const [typeAt, nameAt, sizeAt] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f));
  const sizes = new Map<string, number>();
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + typeAt]];
    const name = snap.strings[snap.nodes[i + nameAt]];
    const kind = type === 'object' || type === 'native' || type === 'closure' || type === 'hidden' ? `${type} ${name}` : type;
    sizes.set(kind, (sizes.get(kind) ?? 0) + snap.nodes[i + sizeAt]);
  }
  return sizes;
}

/** Asks the server for a heap snapshot (SIGUSR2) and waits until the file is complete. */
async function snapshot(pid: number, dir: string): Promise<string> {
  const before = new Set(readdirSync(dir));
  process.kill(pid, 'SIGUSR2');
  for (let waited = 0; waited < 120_000; waited += 200) {
    await sleep(200);
    const file = readdirSync(dir).find((f) => f.endsWith('.heapsnapshot') && !before.has(f));
    if (file === undefined) continue;
    const path = join(dir, file);
    // V8 writes the file as it goes; it is complete once it parses.
    try {
      JSON.parse(readFileSync(path, 'utf8'));
      return path;
    } catch {
      // still being written
    }
  }
  throw new Error('no heap snapshot within 2 minutes');
}

/** Starts the server under test with `nodeArgs` (BENCH_SERVER_NODE_ARGS), as the bench would. */
async function start(target: string, nodeArgs: string): Promise<ServerUnderTest> {
  process.env.BENCH_SERVER_NODE_ARGS = nodeArgs;
  const launch: LaunchOptions = { repoRoot: resolve(__dirname, '../..'), soketiScript: '', cpus: null };
  return target === 'reference' ? startReference(launch) : startHerald(launch);
}

/**
 * Opens one connection (so that lazily built state is there before the first reading), runs `before`,
 * opens `connections` more, waits for the burst to settle and runs `after`.
 */
async function withFleet(server: ServerUnderTest, connections: number, before: () => Promise<void>, after: () => Promise<void>): Promise<void> {
  const pid = server.pid!;
  const fleet = new WsFleet({ host: server.host, port: server.port, key: server.app.key, pid }, new DeliveryCounter());
  try {
    await fleet.open(1, 1, (c) => c.subscribe('warm-up', 10_000));
    await sleep(1000);
    await before();
    await fleet.open(connections, 256, (c, i) => c.subscribe(`bench-idle-${i}`, 30_000));
    await sleep(3000);
    await after();
  } finally {
    fleet.closeAll();
    await server.stop();
  }
}

async function main(): Promise<void> {
  const connections = Number(process.argv[2] ?? 5000);
  const target = process.argv[3] ?? 'herald';

  // RSS on a server of its own: taking a snapshot grows RSS by far more than the connections do.
  const plain = await start(target, '');
  let rssBeforeKb = 0;
  let rssAfterKb = 0;
  await withFleet(plain, connections, async () => void (rssBeforeKb = processRssKb(plain.pid!)), async () => void (rssAfterKb = processRssKb(plain.pid!)));

  const dir = mkdtempSync(join(tmpdir(), 'herald-heap-'));
  try {
    const snapped = await start(target, `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${dir}`);
    let heapBefore = new Map<string, number>();
    let heapAfter = new Map<string, number>();
    await withFleet(
      snapped,
      connections,
      async () => void (heapBefore = sizesByKind(await snapshot(snapped.pid!, dir))),
      async () => void (heapAfter = sizesByKind(await snapshot(snapped.pid!, dir))),
    );
    const rows = [...new Set([...heapBefore.keys(), ...heapAfter.keys()])]
      .map((kind) => ({ kind, bytes: ((heapAfter.get(kind) ?? 0) - (heapBefore.get(kind) ?? 0)) / connections }))
      .filter((r) => Math.abs(r.bytes) >= 8)
      .sort((a, b) => b.bytes - a.bytes);
    const heapPerConn = rows.reduce((sum, r) => sum + r.bytes, 0);
    const rssPerConn = ((rssAfterKb - rssBeforeKb) * 1024) / connections;
    console.log(`${target}: ${connections} idle connections, each subscribed to its own channel`);
    console.log(`RSS growth per connection: ${Math.round(rssPerConn)} B; V8 heap (live objects) per connection: ${Math.round(heapPerConn)} B`);
    console.log(`outside the V8 heap (libuv handles, malloc, allocator slack): ${Math.round(rssPerConn - heapPerConn)} B\n`);
    console.log('| bytes per connection | kind (V8 node type and constructor) |\n|---:|---|');
    for (const r of rows) console.log(`| ${r.bytes.toFixed(0)} | ${r.kind} |`);
  } finally {
    killAllServersSync();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  killAllServersSync();
  process.exit(1);
});
