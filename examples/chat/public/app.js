// The chat page: Herald's browser SDK on a presence channel. Members come from the channel, messages are
// posted to the app server (which triggers them), typing goes peer to peer as client events.
'use strict';
(function () {
  const params = new URLSearchParams(location.search);
  const name = params.get('name');
  if (!name) {
    document.getElementById('join').hidden = false;
    return;
  }
  document.getElementById('chat').hidden = false;
  const q = `name=${encodeURIComponent(name)}`;
  const $ = (id) => document.getElementById(id);

  const herald = new Herald(HERALD.key, {
    host: HERALD.host,
    port: HERALD.port,
    tls: HERALD.tls,
    authEndpoint: `/auth?${q}`,
  });
  window.herald = herald;

  herald.connection.bind('state_change', ({ current }) => {
    $('state').textContent = current;
    $('state').className = `state ${current}`;
  });

  const channel = herald.subscribe(HERALD.channel);

  function renderMembers() {
    const list = $('members');
    list.textContent = '';
    channel.members.each((m) => {
      const li = document.createElement('li');
      li.textContent = m.info && m.info.name ? m.info.name : m.id;
      li.dataset.id = m.id;
      if (m.id === channel.members.myID) li.className = 'me';
      list.appendChild(li);
    });
    $('count').textContent = String(channel.members.count);
  }
  channel.bind('pusher:subscription_succeeded', renderMembers);
  channel.bind('pusher:member_added', renderMembers);
  channel.bind('pusher:member_removed', (m) => {
    renderMembers();
    stopTyping(m.id);
  });

  channel.bind('message', (msg) => {
    const li = document.createElement('li');
    const who = document.createElement('b');
    who.textContent = msg.user;
    li.append(who, document.createTextNode(msg.text));
    $('messages').appendChild(li);
    li.scrollIntoView({ block: 'end' });
    stopTyping(msg.user);
  });

  // ---- typing indicator
  const typing = new Map(); // user → timer
  function showTyping() {
    const names = [...typing.keys()];
    $('typing').textContent = names.length === 0 ? '' : `${names.join(', ')} ${names.length === 1 ? 'is' : 'are'} typing…`;
  }
  function startTyping(user) {
    clearTimeout(typing.get(user));
    typing.set(user, setTimeout(() => stopTyping(user), 3000));
    showTyping();
  }
  function stopTyping(user) {
    clearTimeout(typing.get(user));
    if (typing.delete(user)) showTyping();
  }
  // Client events carry the sender's presence id (metadata.user_id), which the server vouches for.
  channel.bind('client-typing', (data, metadata) => startTyping(metadata && metadata.user_id ? metadata.user_id : data.user));
  // The same, relayed by the app server when the Herald app has client events turned off.
  channel.bind('typing', (data) => startTyping(data.user));

  let viaServer = false;
  let lastTyping = 0;
  function typingViaServer() {
    fetch(`/typing?${q}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `socket_id=${herald.connection.socket_id}` });
  }
  herald.bind('pusher:error', (err) => {
    // 4009 "Client events are not enabled for this app": relay through the app server from now on,
    // starting with the keystroke Herald just refused.
    if (viaServer || !err || !/client events/i.test(err.message || '')) return;
    viaServer = true;
    if (Date.now() - lastTyping < 1000) typingViaServer();
  });
  $('text').addEventListener('input', () => {
    const now = Date.now();
    if (now - lastTyping < 1000 || !channel.subscribed) return;
    lastTyping = now;
    if (viaServer) typingViaServer();
    else channel.trigger('client-typing', { user: name });
  });

  $('send').addEventListener('submit', async (e) => {
    e.preventDefault();
    const text = $('text').value.trim();
    if (!text) return;
    $('text').value = '';
    lastTyping = 0;
    await fetch(`/messages?${q}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text }) });
  });
})();
