// Presence chat: who is online, messages and "is typing…". Run Herald (`npm start` in the repo root),
// then `node examples/chat/server.js` and open http://127.0.0.1:3000/?name=alice in two windows.
'use strict';
const http = require('node:http');
const path = require('node:path');
const { URL } = require('node:url');
const { heraldConfig, loadServerSdk, browserFile, sendFile, sendJson, sendConfigScript, readForm, listen } = require('../shared');

const CHANNEL = 'presence-chat';
const config = heraldConfig();
const { Herald, HeraldInputError } = loadServerSdk();
const herald = new Herald(config);
const PUBLIC = path.join(__dirname, 'public');

/** The demo trusts the name in the query string; a real app takes the user from its session. */
function userName(req) {
  const name = new URL(req.url, 'http://x').searchParams.get('name') || '';
  return /^[\p{L}\p{N} _.-]{1,32}$/u.test(name) ? name : null;
}

const routes = {
  'GET /': (req, res) => sendFile(res, path.join(PUBLIC, 'index.html')),
  'GET /app.js': (req, res) => sendFile(res, path.join(PUBLIC, 'app.js')),
  'GET /style.css': (req, res) => sendFile(res, path.join(PUBLIC, 'style.css')),
  'GET /herald.js': (req, res) => sendFile(res, browserFile('herald.js')),
  'GET /config.js': (req, res) => sendConfigScript(res, config, { channel: CHANNEL }),

  // The channel auth endpoint: Herald's browser SDK posts socket_id and channel_name (as pusher-js does).
  'POST /auth': async (req, res) => {
    const name = userName(req);
    const { socket_id, channel_name } = await readForm(req);
    if (!name || channel_name !== CHANNEL) return sendJson(res, 403, { error: 'forbidden' });
    sendJson(res, 200, herald.authorizeChannel(socket_id, channel_name, { user_id: name, user_info: { name } }));
  },

  // Messages go through the app server, which could store or moderate them before broadcasting.
  'POST /messages': async (req, res) => {
    const name = userName(req);
    const { text } = await readForm(req);
    if (!name || typeof text !== 'string' || text.trim() === '') return sendJson(res, 400, { error: 'name and text are required' });
    await herald.trigger(CHANNEL, 'message', { user: name, text: text.slice(0, 500), at: Date.now() });
    sendJson(res, 200, {});
  },

  // Typing through the server, for Herald apps without client events (the page falls back to it).
  'POST /typing': async (req, res) => {
    const name = userName(req);
    const { socket_id } = await readForm(req);
    if (!name) return sendJson(res, 400, { error: 'name is required' });
    await herald.trigger(CHANNEL, 'typing', { user: name }, { socketId: socket_id });
    sendJson(res, 200, {});
  },
};

const server = http.createServer((req, res) => {
  const route = routes[`${req.method} ${req.url.split('?')[0]}`];
  if (!route) return sendJson(res, 404, { error: 'not found' });
  Promise.resolve(route(req, res)).catch((err) => {
    console.error(`${req.method} ${req.url}:`, err.message);
    if (!res.headersSent) sendJson(res, err instanceof HeraldInputError ? 400 : 502, { error: err.message });
  });
});

listen(server, 3000, 'Chat example', '/?name=alice');
