/* Herald debug console: plain DOM, no framework. Log data comes from clients, so it is only ever
   written with textContent, never parsed as HTML. */
/* global document, fetch, EventSource, location, history, URLSearchParams */
'use strict';

(function () {
  const MAX_ROWS = 500;
  const $ = (id) => document.getElementById(id);

  let source = null;
  let appId = null;
  let lastId = 0;
  let entries = 0;
  let paused = false;
  const held = [];

  async function api(method, path, body) {
    const init = { method, credentials: 'same-origin', headers: {} };
    if (body !== undefined) {
      init.headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const res = await fetch(path, init);
    const text = await res.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch (err) {
      json = { error: `Unexpected answer (${res.status}): ${String(err)}` };
    }
    return { status: res.status, ok: res.ok, body: json };
  }

  function showLogin(message) {
    closeStream();
    $('main').hidden = true;
    $('controls').hidden = true;
    $('login').hidden = false;
    $('login-error').textContent = message || '';
    $('token').focus();
  }

  async function login(token) {
    const r = await api('POST', '/console/api/session', { token });
    if (r.status !== 204) return showLogin((r.body && r.body.error) || `Sign-in failed (${r.status})`);
    $('token').value = '';
    return loadApps();
  }

  async function loadApps() {
    const r = await api('GET', '/console/api/apps');
    if (r.status === 401) return showLogin('');
    if (!r.ok) return showLogin((r.body && r.body.error) || `Could not list apps (${r.status})`);
    const select = $('app-select');
    select.replaceChildren();
    for (const app of r.body.apps) {
      const option = document.createElement('option');
      option.value = app.id;
      option.textContent = `${app.id} · ${app.key}${app.enabled ? '' : ' (disabled)'}`;
      select.append(option);
    }
    $('login').hidden = true;
    $('main').hidden = false;
    $('controls').hidden = false;
    const wanted = new URLSearchParams(location.search).get('app');
    if (wanted && r.body.apps.some((a) => a.id === wanted)) select.value = wanted;
    if (select.value) openStream(select.value);
  }

  function setStatus(state) {
    const el = $('status');
    el.dataset.state = state;
    el.textContent = state;
  }

  function closeStream() {
    if (source) source.close();
    source = null;
  }

  function openStream(id) {
    closeStream();
    appId = id;
    lastId = 0;
    clearLog();
    $('stat-connections').textContent = '–';
    $('stat-channels').textContent = '–';
    $('stat-webhooks').textContent = '–';
    $('stat-webhooks-detail').textContent = '';
    setStatus('connecting');
    const es = new EventSource(`/console/api/apps/${encodeURIComponent(id)}/events`);
    source = es;
    es.onopen = () => setStatus(paused ? 'paused' : 'live');
    es.onerror = () => {
      if (source !== es) return;
      setStatus('offline');
      // A refused stream (401) is not retried by the browser: check the session again.
      if (es.readyState === EventSource.CLOSED) void loadApps();
    };
    es.addEventListener('log', (ev) => {
      const entry = JSON.parse(ev.data);
      if (entry.id <= lastId) return; // resent backlog after a reconnect
      lastId = entry.id;
      if (paused) {
        held.push(entry);
        if (held.length > MAX_ROWS) held.shift();
      } else addRow(entry);
    });
    es.addEventListener('stats', (ev) => {
      const s = JSON.parse(ev.data);
      $('stat-connections').textContent = String(s.connections);
      $('stat-channels').textContent = String(s.channels);
      showWebhooks(s.webhooks);
    });
  }

  function showWebhooks(w) {
    $('stat-webhooks').textContent = String(w.sent);
    const waiting = w.depth - w.inFlight;
    const parts = [`${waiting} queued`, `${w.inFlight} in flight`, `${w.failed} failed`, `${w.dropped + w.expired} dropped`];
    $('stat-webhooks-detail').textContent = parts.join(' · ');
  }

  function clearLog() {
    $('log-body').replaceChildren();
    held.length = 0;
    entries = 0;
    $('stat-entries').textContent = '0';
    $('log-empty').hidden = false;
  }

  function time(ms) {
    const d = new Date(ms);
    const p = (n, w) => String(n).padStart(w, '0');
    return `${p(d.getHours(), 2)}:${p(d.getMinutes(), 2)}:${p(d.getSeconds(), 2)}.${p(d.getMilliseconds(), 3)}`;
  }

  function pretty(data) {
    try {
      return JSON.stringify(JSON.parse(data), null, 2);
    } catch {
      return data; // not JSON: shown as sent
    }
  }

  function cell(tr, className, text) {
    const td = document.createElement('td');
    td.className = className;
    if (text !== undefined) td.textContent = text;
    tr.append(td);
    return td;
  }

  function matchesFilter(channel) {
    const f = $('filter').value.trim();
    return f === '' || channel.includes(f);
  }

  function addRow(e) {
    const tr = document.createElement('tr');
    tr.dataset.channel = e.channel || '';
    tr.dataset.kind = e.kind;
    cell(tr, 'time', time(e.time));
    const badge = document.createElement('span');
    badge.className = `badge ${e.kind}`;
    badge.textContent = e.kind.replace(/_/g, ' ');
    cell(tr, 'kind').append(badge);
    cell(tr, 'channel', e.channel || '');
    cell(tr, 'event', e.event || '');
    const details = cell(tr, 'details');
    if (e.detail) details.append(document.createTextNode(e.detail));
    if (e.socketId) {
      const s = document.createElement('span');
      s.className = 'socket';
      s.textContent = `${e.detail ? ' · ' : ''}socket ${e.socketId}`;
      details.append(s);
    }
    if (e.data !== undefined) {
      const pre = document.createElement('pre');
      pre.textContent = pretty(e.data);
      details.append(pre);
    }
    tr.hidden = !matchesFilter(tr.dataset.channel);
    const body = $('log-body');
    body.prepend(tr);
    while (body.childElementCount > MAX_ROWS) body.lastElementChild.remove();
    entries++;
    $('stat-entries').textContent = String(entries);
    $('log-empty').hidden = true;
  }

  function result(el, r, okText) {
    el.className = `result ${r.ok ? 'ok' : 'bad'}`;
    el.textContent = r.ok ? okText : (r.body && r.body.error) || `Failed (${r.status})`;
  }

  $('login-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    void login($('token').value);
  });

  $('sign-out').addEventListener('click', async () => {
    await api('DELETE', '/console/api/session');
    showLogin('Signed out.');
  });

  $('app-select').addEventListener('change', (ev) => openStream(ev.target.value));

  $('filter').addEventListener('input', () => {
    for (const tr of $('log-body').children) tr.hidden = !matchesFilter(tr.dataset.channel);
  });

  $('pause').addEventListener('click', () => {
    paused = !paused;
    $('pause').textContent = paused ? 'Resume' : 'Pause';
    if (!paused) for (const e of held.splice(0)) addRow(e);
    if (source && source.readyState === EventSource.OPEN) setStatus(paused ? 'paused' : 'live');
  });

  $('clear').addEventListener('click', clearLog);

  $('trigger-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const channels = $('trigger-channels').value.split(',').map((c) => c.trim()).filter(Boolean);
    const name = $('trigger-event').value.trim();
    const r = await api('POST', `/console/api/apps/${encodeURIComponent(appId)}/trigger`, { name, channels, data: $('trigger-data').value });
    result($('trigger-result'), r, `Sent ${name} to ${channels.length} channel${channels.length === 1 ? '' : 's'}.`);
  });

  $('push-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = { target: $('push-target').value.trim(), title: $('push-title').value, body: $('push-body').value };
    const r = await api('POST', `/console/api/apps/${encodeURIComponent(appId)}/push-test`, body);
    result($('push-result'), r, 'Test push sent.');
  });

  // A link may carry the token in its fragment (never sent to servers); it is removed at once.
  const hashToken = new URLSearchParams(location.hash.slice(1)).get('token');
  if (hashToken) {
    history.replaceState(null, '', location.pathname + location.search);
    void login(hashToken);
  } else void loadApps();
})();
