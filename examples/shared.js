// What every example server needs: where Herald is, the SDK builds from this repository, and a few
// node:http helpers. Plain Node, no framework.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { URLSearchParams } = require('node:url');

const ROOT = path.resolve(__dirname, '..');
const SERVER_SDK = path.join(ROOT, 'dist', 'sdk', 'server');
const BROWSER_DIST = path.join(ROOT, 'sdk', 'browser', 'dist');

/**
 * Herald's address and the app's credentials: HERALD_HOST, HERALD_PORT, HERALD_APP_ID/KEY/SECRET, else
 * the default app `npm start` generated and saved in .herald/default-app.json (HERALD_DATA_DIR).
 */
function heraldConfig(env = process.env) {
  const dataDir = path.resolve(ROOT, env.HERALD_DATA_DIR || '.herald');
  let stored = {};
  try {
    stored = JSON.parse(fs.readFileSync(path.join(dataDir, 'default-app.json'), 'utf8'));
  } catch {
    stored = {};
  }
  // Herald may listen on every address; clients connect to a concrete one.
  const listen = env.HERALD_HOST || '127.0.0.1';
  const config = {
    host: listen === '0.0.0.0' || listen === '::' ? '127.0.0.1' : listen,
    port: Number(env.HERALD_PORT || 6001),
    useTLS: env.HERALD_TLS === 'true',
    appId: env.HERALD_APP_ID || stored.id,
    key: env.HERALD_APP_KEY || stored.key,
    secret: env.HERALD_APP_SECRET || stored.secret,
  };
  if (!config.appId || !config.key || !config.secret) {
    throw new Error(`No Herald app credentials: set HERALD_APP_ID, HERALD_APP_KEY and HERALD_APP_SECRET, or run \`npm start\` in ${ROOT} first (it writes ${path.join(dataDir, 'default-app.json')}).`);
  }
  return config;
}

/** The server SDK, compiled by `npm run build` at the repository root. */
function loadServerSdk() {
  if (!fs.existsSync(path.join(SERVER_SDK, 'index.js'))) {
    throw new Error(`The server SDK is not built: run \`npm install && npm run build\` in ${ROOT}.`);
  }
  return require(SERVER_SDK);
}

/** A file of the browser SDK build (herald.js, herald-sw.js, …). */
function browserFile(name) {
  const file = path.join(BROWSER_DIST, name);
  if (!fs.existsSync(file)) throw new Error(`The browser SDK is not built: run \`npm run build\` (or \`node sdk/browser/build.mjs\`) in ${ROOT}.`);
  return file;
}

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css', '.json': 'application/json' };

function sendFile(res, file) {
  fs.readFile(file, (err, body) => {
    if (err) return sendJson(res, 404, { error: 'not found' });
    res.writeHead(200, { 'content-type': TYPES[path.extname(file)] || 'application/octet-stream', 'cache-control': 'no-store' });
    res.end(body);
  });
}

function sendJson(res, status, value) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
}

/** A script that hands the page what it needs to connect (never the secret). */
function sendConfigScript(res, config, extra = {}) {
  const pub = { key: config.key, host: config.host, port: config.port, tls: config.useTLS, ...extra };
  res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`window.HERALD = ${JSON.stringify(pub)};\n`);
}

/** The request body as text, at most 64 KB. */
function readBody(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => {
      body += chunk;
      if (body.length > 65536) {
        reject(new Error('body too large'));
        req.destroy();
      }
    });
    req.on('end', () => resolve(body));
    req.on('error', reject);
  });
}

/** Form or JSON body as an object. */
async function readForm(req) {
  const body = await readBody(req);
  if ((req.headers['content-type'] || '').startsWith('application/json')) return body ? JSON.parse(body) : {};
  return Object.fromEntries(new URLSearchParams(body));
}

/** Listens on PORT (default `port`; PORT=0 picks a free one) and prints the URL to open. */
function listen(server, defaultPort, label, pathAndQuery = '/') {
  const port = process.env.PORT === undefined ? defaultPort : Number(process.env.PORT);
  server.listen(port, process.env.LISTEN_HOST || '127.0.0.1', () => {
    const { port: actual } = server.address();
    console.log(`${label}: http://127.0.0.1:${actual}${pathAndQuery}`);
  });
  const stop = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

module.exports = { ROOT, heraldConfig, loadServerSdk, browserFile, sendFile, sendJson, sendConfigScript, readBody, readForm, listen };
