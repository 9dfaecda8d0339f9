'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  const herald = new Herald(HERALD.key, { host: HERALD.host, port: HERALD.port, tls: HERALD.tls });
  window.herald = herald;
  const status = (text) => ($('status').textContent = text);

  herald.connection.bind('state_change', ({ current }) => {
    const device = herald.push.deviceId;
    status(`${current}${device ? ` · registered as ${device}` : ' · not registered for notifications'}`);
  });

  herald.subscribe(HERALD.channel).bind('headline', (data) => {
    const li = document.createElement('li');
    li.textContent = data.title;
    $('headlines').appendChild(li);
  });

  $('register').addEventListener('click', async () => {
    try {
      const deviceId = await herald.push.register({ serviceWorker: '/herald-sw.js', interests: [HERALD.channel] });
      status(`Registered as ${deviceId}. Close this tab and publish to see a notification.`);
    } catch (err) {
      status(`Could not register: ${err.message}`);
    }
  });

  $('publish').addEventListener('click', async () => {
    const res = await fetch('/publish', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title: `Headline at ${new Date().toLocaleTimeString()}` }) });
    if (!res.ok) status(`Publish failed: ${(await res.json()).error}`);
  });
})();
