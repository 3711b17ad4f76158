// Kite's live status page: a plain ES module, no framework, no build step.
//
// It asks for a token (the admin token or a team admin key), keeps it in sessionStorage (this
// tab only), and sends it as the first message of the `/ui/live` WebSocket, never in a URL. The
// server then pushes a snapshot whenever the status changes (at most about once a second); the
// page updates its tables in place, row by row, so a button is never replaced under the pointer.
// Buttons call the Peers API with the same token. Every value from the server is written with
// textContent, never as HTML.

const TOKEN_KEY = 'kite.status.token';
const RETRY_MAX_MS = 10_000;
const STATES = ['healthy', 'backing-off', 'rate-limited', 'dead-lettered'];

const $ = (id) => document.getElementById(id);
let socket;
let retryMs = 500;
let signedOut = false;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === 'text') node.textContent = value;
    else if (name === 'class') node.className = value;
    else node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

function setConnection(state, label) {
  const node = $('connection');
  node.dataset.connection = state;
  node.textContent = label ?? state;
}

function notice(text) {
  $('notice').textContent = text ?? '';
}

// ---- sign-in and the socket ----

function showLogin(message) {
  $('login').hidden = false;
  $('status').hidden = true;
  $('sign-out').hidden = true;
  $('login-error').textContent = message ?? '';
  setConnection('signed-out', 'signed out');
  $('token').focus();
}

function signOut(message) {
  signedOut = true;
  sessionStorage.removeItem(TOKEN_KEY);
  if (socket) {
    socket.onclose = null;
    socket.close(1000, 'signed out');
    socket = undefined;
  }
  showLogin(message);
}

function connect() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) return showLogin();
  signedOut = false;
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ui/live`;
  const ws = new WebSocket(url);
  socket = ws;
  setConnection('connecting', 'connecting…');
  ws.onopen = () => ws.send(JSON.stringify({ type: 'auth', token }));
  ws.onmessage = (message) => {
    const frame = JSON.parse(message.data);
    if (frame.type === 'hello') {
      retryMs = 500;
      $('login').hidden = true;
      $('status').hidden = false;
      $('sign-out').hidden = false;
      setConnection('live', frame.team ? `live · team ${frame.team}` : 'live · instance');
    } else if (frame.type === 'snapshot') {
      render(frame);
      if ($('connection').dataset.connection !== 'live') setConnection('live', 'live');
    } else if (frame.type === 'stale') {
      setConnection('stale', 'stale');
      notice(frame.message);
    }
  };
  ws.onclose = (event) => {
    if (socket !== ws || signedOut) return;
    if (event.code === 1008) return signOut(event.reason === 'forbidden'
      ? 'This key may not open the status page: use the admin token or a team admin key.'
      : 'The token was not accepted (unknown, revoked or mistyped).');
    setConnection('reconnecting', `reconnecting (${event.code || 'network'})…`);
    setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
  };
}

// ---- rendering ----

function age(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  if (seconds < 90) return `${seconds} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172_800) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86_400)} d`;
}

function render(snapshot) {
  const { instance } = snapshot;
  $('instance-id').textContent = instance.instanceId;
  const listeners = snapshot.listeners === null ? '' : ` · ${snapshot.listeners} listener${snapshot.listeners === 1 ? '' : 's'} on this node`;
  $('instance-meta').textContent = `${instance.publicUrl} · v${instance.version}${listeners} · updated ${new Date().toLocaleTimeString()}`;
  renderTeams(snapshot.teams, snapshot.teamsTruncated);
  renderEvents(snapshot.events);
}

function renderTeams(teams, truncated) {
  const container = $('teams');
  const seen = new Set();
  for (const team of teams) {
    seen.add(team.slug);
    let section = container.querySelector(`section[data-team="${CSS.escape(team.slug)}"]`);
    if (!section) {
      section = el('section', { 'data-team': team.slug },
        el('h2', {}, el('span', { class: 'team-slug', text: `Team ${team.slug}` }), el('span', { class: 'team-meta' })),
        el('table', { class: 'peers' },
          el('thead', {}, el('tr', {}, ...['state', 'peer', 'pending', 'delivered', 'dead-lettered', 'oldest pending', 'per min (10 min)', 'last error', '']
            .map((h) => el('th', { text: h })))),
          el('tbody')),
        el('p', { class: 'muted no-peers', text: 'No peers.' }));
      container.append(section);
    }
    section.querySelector('.team-meta').textContent = team.listening ? '· listeners connected to this node' : '· no listener on this node';
    section.querySelector('.no-peers').hidden = team.peers.length > 0;
    section.querySelector('table').hidden = team.peers.length === 0;
    renderPeers(section.querySelector('tbody'), team.slug, team.peers);
  }
  for (const section of [...container.querySelectorAll('section[data-team]')]) if (!seen.has(section.dataset.team)) section.remove();
  let more = container.querySelector('.truncated');
  if (truncated && !more) container.append(el('p', { class: 'muted truncated', text: 'More teams exist than are shown here.' }));
  if (!truncated && more) more.remove();
}

function peerRow(team, peer) {
  const cell = (field, cls) => el('td', { 'data-field': field, ...(cls ? { class: cls } : {}) });
  const row = el('tr', { 'data-peer-id': peer.id },
    cell('state'), cell('peer'), cell('pending', 'num'), cell('delivered', 'num'), cell('deadLettered', 'num'),
    cell('oldestPending', 'num'), cell('rate', 'num'), cell('lastError', 'error'), cell('actions'));
  const redrive = el('button', { type: 'button', 'data-action': 'redrive', text: 'Redrive' });
  const toggle = el('button', { type: 'button', 'data-action': 'toggle' });
  redrive.onclick = () => act(row, redrive, 'POST', `/v1/teams/${encodeURIComponent(team)}/peers/${encodeURIComponent(peer.id)}/redrive`);
  toggle.onclick = () => act(row, toggle, 'PATCH', `/v1/teams/${encodeURIComponent(team)}/peers/${encodeURIComponent(peer.id)}`,
    { enabled: row.dataset.enabled !== 'true' });
  row.querySelector('[data-field="actions"]').append(redrive, toggle);
  return row;
}

function renderPeers(tbody, team, peers) {
  const seen = new Set();
  for (const peer of peers) {
    seen.add(peer.id);
    let row = tbody.querySelector(`tr[data-peer-id="${CSS.escape(peer.id)}"]`);
    if (!row) tbody.append(row = peerRow(team, peer));
    const state = STATES.includes(peer.state) ? peer.state : 'unknown';
    row.dataset.state = state;
    row.dataset.enabled = String(peer.enabled);
    const field = (name) => row.querySelector(`[data-field="${name}"]`);
    field('state').replaceChildren(el('span', { class: 'state', 'data-state': state, text: state }),
      ...(peer.enabled ? [] : [el('span', { class: 'paused', text: 'paused' })]));
    field('peer').replaceChildren(el('div', { text: peer.instanceId }), el('div', { class: 'url', text: peer.url }));
    field('pending').textContent = String(peer.pending);
    field('delivered').textContent = String(peer.delivered);
    field('deadLettered').textContent = String(peer.deadLettered);
    field('oldestPending').textContent = age(peer.oldestPendingSeconds);
    const perMinute = peer.deliveredPerMinute;
    const top = Math.max(1, ...perMinute);
    const spark = el('span', { class: 'spark', title: `per minute, oldest first: ${perMinute.join(', ')}` },
      ...perMinute.map((n) => {
        const bar = el('i');
        bar.style.height = `${Math.round((n / top) * 100)}%`;
        return bar;
      }));
    field('rate').replaceChildren(String(perMinute[perMinute.length - 1] ?? 0), spark);
    field('lastError').textContent = peer.lastError ?? '';
    field('lastError').title = peer.attempts ? `${peer.attempts} failed attempt(s) since the last delivery` : '';
    row.querySelector('[data-action="redrive"]').disabled = !(peer.deadLettered > 0 || peer.state === 'dead-lettered');
    row.querySelector('[data-action="toggle"]').textContent = peer.enabled ? 'Pause' : 'Resume';
  }
  for (const row of [...tbody.querySelectorAll('tr[data-peer-id]')]) if (!seen.has(row.dataset.peerId)) row.remove();
}

function describe(event) {
  const d = event.data ?? {};
  if (event.type === 'kite.federation.peer_state_changed') {
    return `${d.instanceId}: ${d.from} → ${d.to} (${d.reason})${d.held ? `, ${d.held} held` : ''}`;
  }
  if (event.type === 'kite.federation.delivery_failed') {
    return `${d.instanceId}: ${d.eventType} ${d.eventId} ${d.reason}${d.statusCode ? ` (HTTP ${d.statusCode})` : ''}`;
  }
  return JSON.stringify(d);
}

function renderEvents(events) {
  const rows = events.map((event) => el('tr', { 'data-seq': String(event.seq), 'data-type': event.type },
    el('td', { class: 'muted', text: new Date(event.time).toLocaleTimeString() }),
    el('td', { text: event.team }),
    el('td', { text: event.type.replace(/^kite\.federation\./, '') }),
    el('td', { text: describe(event) })));
  if (rows.length === 0) rows.push(el('tr', {}, el('td', { colspan: '4', class: 'muted', text: 'None yet.' })));
  $('events').querySelector('tbody').replaceChildren(...rows);
}

// ---- actions ----

async function act(row, button, method, path, body) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  button.disabled = true;
  try {
    const response = await fetch(path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const answer = await response.json().catch(() => ({}));
    if (response.status === 401) return signOut('The token is no longer accepted.');
    if (!response.ok) throw new Error(answer.error?.message ?? `HTTP ${response.status}`);
    const peer = row.querySelector('[data-field="peer"] div')?.textContent ?? 'the peer';
    if (answer.requeued !== undefined) notice(`Redrive of ${peer}: ${answer.requeued} event(s) back in its queue.`);
    else notice(`${peer} ${answer.enabled ? 'resumed' : 'paused'}.`);
  } catch (err) {
    notice(`Failed: ${err.message}`);
  } finally {
    button.disabled = false;
    // Show the effect now rather than at the next tick.
    if (socket?.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: 'refresh' }));
  }
}

// ---- start ----

$('login').addEventListener('submit', (event) => {
  event.preventDefault();
  const token = $('token').value.trim();
  if (!token) return;
  $('token').value = '';
  sessionStorage.setItem(TOKEN_KEY, token);
  connect();
});
$('sign-out').addEventListener('click', () => signOut());
connect();
