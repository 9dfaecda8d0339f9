// An unchanged pusher-js page, served with its auth endpoint signed by the unchanged `pusher` package;
// both are pointed at Herald. Run Herald (`npm start`), then `node examples/pusher-compat/server.js`,
// open the page and send an event with `node examples/pusher-compat/trigger.js "hello"`.
'use strict';
const http = require('node:http');
const path = require('node:path');
const Pusher = require('pusher');
const { heraldConfig, sendFile, sendJson, sendConfigScript, readForm, listen, ROOT } = require('../shared');

const config = heraldConfig();
// The only Herald-specific lines: host, port and useTLS.
const pusher = new Pusher({ appId: config.appId, key: config.key, secret: config.secret, host: config.host, port: String(config.port), useTLS: config.useTLS });

const routes = {
  'GET /': (req, res) => sendFile(res, path.join(__dirname, 'public', 'index.html')),
  'GET /pusher.min.js': (req, res) => sendFile(res, path.join(ROOT, 'node_modules', 'pusher-js', 'dist', 'web', 'pusher.min.js')),
  'GET /config.js': (req, res) => sendConfigScript(res, config),
  // pusher-js's default channel authorization: a form POST of socket_id and channel_name.
  'POST /pusher/auth': async (req, res) => {
    const { socket_id, channel_name } = await readForm(req);
    if (!channel_name.startsWith('private-')) return sendJson(res, 403, { error: 'forbidden' });
    sendJson(res, 200, pusher.authorizeChannel(socket_id, channel_name));
  },
};

const server = http.createServer((req, res) => {
  const route = routes[`${req.method} ${req.url.split('?')[0]}`];
  if (!route) return sendJson(res, 404, { error: 'not found' });
  Promise.resolve(route(req, res)).catch((err) => {
    console.error(`${req.method} ${req.url}:`, err.message);
    if (!res.headersSent) sendJson(res, 400, { error: err.message });
  });
});

listen(server, 3001, 'pusher-js page');
