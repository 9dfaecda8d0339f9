/**
 * The load balancer config that docker-compose.yml ships (deploy/nginx.conf), in front of two nodes on one
 * Redis, with the real pusher-js and pusher packages talking only to nginx. There is no Docker engine here,
 * so nginx is Debian's and the nodes are in this process; the config is the shipped one with only what
 * Docker provides swapped out: its DNS resolver and the service names become 127.0.0.1 ports (Debian's
 * nginx 1.22 also lacks `server … resolve`, which 1.27.3+ has). Every proxy setting is tested as shipped.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nextEvent, pusherJs, serverSdk } from '../helpers/clients';
import { startCluster } from '../helpers/cluster';
import type { TestHerald } from '../helpers/herald';
import { freePort, waitFor } from '../helpers/redis';

const NGINX = process.env.NGINX_PATH ?? '/usr/sbin/nginx';
const SHIPPED = join(__dirname, '..', '..', '..', 'deploy', 'nginx.conf');

/** The shipped config with Docker's parts replaced (see the module comment); fails if they changed shape. */
function localConfig(shipped: string, dir: string, port: number, upstreams: number[]): string {
  const servers = /^\s*server herald-1:6001 resolve (.*);\n\s*server herald-2:6001 resolve .*;\n/m;
  assert.match(shipped, servers, 'deploy/nginx.conf: the two upstream servers');
  assert.match(shipped, /^\s*resolver 127\.0\.0\.11 .*;\n/m, 'deploy/nginx.conf: the Docker resolver');
  assert.match(shipped, /^\s*listen 6001;\n/m, 'deploy/nginx.conf: listen');
  const params = servers.exec(shipped)?.[1] ?? '';
  return shipped
    .replace(/^worker_processes .*;\n/m, `worker_processes 1;\npid ${dir}/nginx.pid;\nerror_log ${dir}/error.log warn;\n`)
    .replace(/^\s*resolver 127\.0\.0\.11 .*;\n/m, '')
    .replace(servers, upstreams.map((p) => `    server 127.0.0.1:${p} ${params};\n`).join(''))
    .replace(/^(\s*)listen 6001;\n/m, `$1listen 127.0.0.1:${port};\n`)
    .replace(/^http \{\n/m, `http {\n  access_log off;\n  client_body_temp_path ${dir}/body;\n  proxy_temp_path ${dir}/proxy;\n  fastcgi_temp_path ${dir}/fastcgi;\n  uwsgi_temp_path ${dir}/uwsgi;\n  scgi_temp_path ${dir}/scgi;\n`);
}

async function startNginx(t: TestContext, upstreams: number[]): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'herald-nginx-'));
  // nginx's workers drop root for `nobody`, who must reach the temp directories under this one.
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, 'logs'));
  const port = await freePort();
  const conf = join(dir, 'nginx.conf');
  writeFileSync(conf, localConfig(readFileSync(SHIPPED, 'utf8'), dir, port, upstreams));
  const nginx = spawn(NGINX, ['-p', dir, '-c', conf, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  nginx.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<void>((resolve) => nginx.once('exit', () => resolve()));
  t.after(async () => {
    nginx.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  });
  await waitFor(
    () =>
      new Promise<boolean>((resolve) => {
        if (nginx.exitCode !== null) throw new Error(`nginx exited: ${stderr}`);
        fetch(`http://127.0.0.1:${port}/ready`).then(
          (r) => resolve(r.status === 200),
          () => resolve(false),
        );
      }),
    10_000,
    'nginx to proxy /ready',
  );
  return port;
}

test('deploy/nginx.conf: WebSockets and REST through nginx reach both nodes; an event crosses nodes', { timeout: 60_000 }, async (t) => {
  if (!existsSync(NGINX)) {
    // In CI a missing nginx is a failure, never a skip.
    assert.notEqual(process.env.CI, 'true', `nginx not found at ${NGINX}`);
    t.skip(`nginx not found at ${NGINX} (Debian package nginx-light)`);
    return;
  }
  const cluster = await startCluster(t, 2);
  if (!cluster) return;
  const [a, b] = cluster.nodes;
  const lbPort = await startNginx(t, [a.port, b.port]);
  // The clients know only the balancer's address.
  const viaLb: TestHerald = { ...a, host: '127.0.0.1', port: lbPort, baseUrl: `http://127.0.0.1:${lbPort}` };

  const clients = [pusherJs(viaLb), pusherJs(viaLb)];
  t.after(() => clients.forEach((c) => c.disconnect()));
  const channels = [];
  for (const c of clients) {
    const ch = c.subscribe('deploy-news');
    await nextEvent(ch, 'pusher:subscription_succeeded');
    channels.push(ch);
  }
  // least_conn: the second socket goes to the node without one.
  assert.deepEqual([a.server.gateway.registry.size, b.server.gateway.registry.size], [1, 1]);

  const received = channels.map((ch) => nextEvent<{ n: number }>(ch, 'update'));
  const res = await serverSdk(viaLb).trigger('deploy-news', 'update', { n: 1 });
  assert.equal(res.status, 200);
  assert.deepEqual(await Promise.all(received), [{ n: 1 }, { n: 1 }]);

  // A signed REST read through nginx (Host and the path as signed survive the proxy).
  const info = await serverSdk(viaLb).get({ path: '/channels/deploy-news', params: { info: 'subscription_count' } });
  assert.deepEqual(await info.json(), { occupied: true, subscription_count: 2 });
});
