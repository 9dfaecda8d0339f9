// Web Push fallback: register for the "news" interest, close the tab, publish, see a notification; with
// the tab open the headline arrives live over the WebSocket and no notification is shown.
//   HERALD_PUSH_SUBJECT=mailto:you@example.com npm start      (Herald with push on)
//   node examples/push/server.js                               (this page, on :3002)
//   node examples/push/publish.js "Big news"                   (or the page's Publish button)
'use strict';
const http = require('node:http');
const path = require('node:path');
const { heraldConfig, loadServerSdk, browserFile, sendFile, sendJson, sendConfigScript, readForm, listen } = require('../shared');
const { publishHeadline } = require('./publish');

const config = heraldConfig();
const { Herald } = loadServerSdk();
const herald = new Herald(config);
const PUBLIC = path.join(__dirname, 'public');

const routes = {
  'GET /': (req, res) => sendFile(res, path.join(PUBLIC, 'index.html')),
  'GET /app.js': (req, res) => sendFile(res, path.join(PUBLIC, 'app.js')),
  'GET /herald.js': (req, res) => sendFile(res, browserFile('herald.js')),
  // Served from the root so its scope covers every page of the site.
  'GET /herald-sw.js': (req, res) => sendFile(res, browserFile('herald-sw.js')),
  'GET /config.js': (req, res) => sendConfigScript(res, config, { channel: 'news' }),
  'POST /publish': async (req, res) => {
    const { title } = await readForm(req);
    const origin = `http://${req.headers.host}`;
    sendJson(res, 200, await publishHeadline(herald, title || 'Breaking news', origin));
  },
};

const server = http.createServer((req, res) => {
  const route = routes[`${req.method} ${req.url.split('?')[0]}`];
  if (!route) return sendJson(res, 404, { error: 'not found' });
  Promise.resolve(route(req, res)).catch((err) => {
    console.error(`${req.method} ${req.url}:`, err.message);
    if (!res.headersSent) sendJson(res, err.status === 501 ? 501 : 502, { error: err.serverMessage || err.message });
  });
});

listen(server, 3002, 'Push example');
