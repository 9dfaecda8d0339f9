/**
 * `npm start`: one node on the embedded defaults (in-process adapter, default app), or the configuration
 * from the environment and `HERALD_CONFIG`. Prints the default app's credentials with ready-to-paste
 * snippets so a newcomer can connect at once.
 */
import { createLogger } from './logger';
import { ConfigError, loadOptions } from './options/load-options';
import { HeraldServer } from './HeraldServer';
import type { AppOptions } from './options/Options';

function banner(app: AppOptions, host: string, port: number, generated: boolean): string {
  const h = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return `
Herald is listening on ${host}:${port}
Default app ${generated ? '(generated now, kept in the data directory)' : ''}:
  app id:  ${app.id}
  key:     ${app.key}
  secret:  ${app.secret}

Browser (pusher-js):
  const pusher = new Pusher('${app.key}', { wsHost: '${h}', wsPort: ${port}, forceTLS: false,
    enabledTransports: ['ws'], cluster: 'herald' });
  pusher.subscribe('my-channel').bind('my-event', (data) => console.log(data));

Server (pusher):
  const Pusher = require('pusher');
  const pusher = new Pusher({ appId: '${app.id}', key: '${app.key}', secret: '${app.secret}',
    host: '${h}', port: '${port}', useTLS: false });
  await pusher.trigger('my-channel', 'my-event', { hello: 'world' });
`;
}

async function main(): Promise<void> {
  let loaded;
  try {
    loaded = loadOptions();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`herald: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const { options, generatedApp, usingDefaultApp } = loaded;
  const log = createLogger(options.logLevel);
  const server = new HeraldServer(options, log);

  // Registered before start(): a signal during start-up must also end in a clean stop, not a kill.
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down: closing sockets with 4200');
    // stop() bounds the drain by the grace period; this catches a backend that hangs while closing.
    setTimeout(() => {
      log.error({ graceMs: options.shutdownGraceMs }, 'shutdown did not finish within the grace period; exiting');
      process.exit(1);
    }, options.shutdownGraceMs + 5000).unref();
    server
      .stop()
      .then(() => process.exit(0))
      .catch((err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));

  const { host, port } = await server.start();
  if (usingDefaultApp) process.stdout.write(banner(options.apps[0], host, port, generatedApp));
  else log.info({ host, port, apps: options.apps.map((a) => a.id) }, 'Herald is listening');
}

main().catch((err: unknown) => {
  process.stderr.write(`herald: failed to start: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
