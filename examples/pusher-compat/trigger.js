// Sends `my-event` on `my-channel` and `private-my-channel` with the unchanged `pusher` package:
//   node examples/pusher-compat/trigger.js "hello from pusher"
'use strict';
const Pusher = require('pusher');
const { heraldConfig } = require('../shared');

async function main() {
  const config = heraldConfig();
  const pusher = new Pusher({ appId: config.appId, key: config.key, secret: config.secret, host: config.host, port: String(config.port), useTLS: config.useTLS });
  const message = process.argv[2] || `hello at ${new Date().toISOString()}`;
  await pusher.trigger(['my-channel', 'private-my-channel'], 'my-event', { message });
  const res = await pusher.get({ path: '/channels', params: { info: 'subscription_count' } });
  console.log(`sent "${message}"; occupied channels: ${JSON.stringify((await res.json()).channels)}`);
}

main().catch((err) => {
  console.error(`trigger failed: ${err.status ? `${err.status} ${err.body}` : err.message}`);
  process.exit(1);
});
