// kumo's web chat. Everything a member wrote is put on the page with textContent, never as HTML.
// The session lives in this script's memory only: a reload is a new, anonymous visitor.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const log = $('log');
  const text = $('text');

  let ws = null;
  let token = '';        // resumes this session after a dropped connection; never stored anywhere
  let lastSeq = 0;       // the last message shown, so a resumed connection skips what we have
  let maxText = 4000;
  let skew = 0;          // server clock minus ours, in ms, for countdowns
  let retries = 0;
  let stopped = false;   // the server said goodbye for good: do not reconnect
  let roomEndsAt = 0;    // server-clock ms when the room self-destructs, 0 when unknown
  let inRoom = false;
  let ownSeq = 0;        // numbers the visitor's own lines, so kumo can have them removed
  let creator = false;   // the core says this visitor created (or reclaimed) the room
  let replyTo = null;    // the page id of the message the next line replies to ("12", "o3")
  let editing = null;    // the number of the visitor's own line being edited

  const now = () => Date.now() + skew;

  // An invite link (<url>/#join=<token>): the fragment never leaves the browser in a request; the
  // token goes to kumo over the WebSocket once connected, and leaves the address bar at once.
  let joinToken = '';
  {
    const m = /^#join=([A-Za-z0-9_-]{1,64})$/.exec(location.hash);
    if (m) {
      joinToken = m[1];
      history.replaceState(null, '', location.pathname + location.search);
    }
  }

  // ---- connection --------------------------------------------------------------------------

  function connect() {
    setStatus('connecting', 'Connecting…');
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    ws = new WebSocket(proto + '//' + location.host + '/ws');
    ws.onopen = () => ws.send(JSON.stringify({ type: 'hello', resume: token, last: lastSeq }));
    ws.onmessage = (e) => {
      let ev;
      try { ev = JSON.parse(e.data); } catch (_) { return; }
      handle(ev);
    };
    ws.onclose = (e) => closed(e);
  }

  function closed(e) {
    ws = null;
    if (e.code === 1009) {
      showError('That message was too big for the server; the connection was reset.');
    }
    if (e.code === 4000) {
      stopped = true;
      setStatus('closed', 'This chat was opened again in another connection. Reload to start over.');
      return;
    }
    if (e.code === 1001) {
      setStatus('closed', 'kumo is shutting down. Reconnecting when it is back…');
    }
    // 1008 and 1013 are the server refusing this connection (too many from this network, or kumo is
    // full); the reason says which. Keep it on screen while the page retries, slowly.
    const refused = e.code === 1008 || e.code === 1013;
    if (refused) {
      setStatus('closed', (e.reason || 'The server refused the connection.') + ' Retrying…');
      retries = Math.max(retries, 4);
    }
    if (stopped) return;
    retries++;
    const wait = Math.min(30000, 500 * 2 ** Math.min(retries, 6));
    if (e.code !== 1001 && !refused) setStatus('connecting', 'Connection lost. Reconnecting…');
    setTimeout(connect, wait);
  }

  function send(obj) {
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      showError('Not connected yet. Try again in a moment.');
      return false;
    }
    ws.send(JSON.stringify(obj));
    return true;
  }

  function sendText(t) {
    t = t.trim();
    if (t === '') return false;
    if (t.length > maxText) {
      showError('Your message is ' + t.length + ' characters long; the limit is ' + maxText + '. It was not sent.');
      return false;
    }
    hideError();
    if (editing !== null) {
      const own = editing;
      if (!send({ type: 'edit', target: 'o' + own, text: t })) return false;
      const line = log.querySelector('[data-own="' + own + '"] .text');
      if (line) line.textContent = t;
      markEdited(log.querySelector('[data-own="' + own + '"]'));
      setCompose(null, null);
      return true;
    }
    const id = String(++ownSeq);
    const msg = { type: 'text', text: t, id: id };
    if (replyTo) msg.replyTo = replyTo;
    if (!send(msg)) return false;
    // The core relays a member's words to the others only: show them here ourselves.
    if (inRoom && !/^[/!]/.test(t)) {
      const m = el('div', 'msg kind-self');
      m.dataset.kind = 'self';
      m.dataset.own = id;
      if (replyTo) m.appendChild(quoteOf(replyTo, ''));
      m.appendChild(el('span', 'from', 'You'));
      m.appendChild(el('span', 'text', t));
      addActions(m, 'o' + id, true);
      append(m);
    }
    setCompose(null, null);
    return true;
  }

  // ---- replies, edits, unsend, reactions ------------------------------------------------------

  // byPageID is the message the page shows under that id: kumo's by seq, the visitor's own by "o3".
  function byPageID(id) {
    if (!/^o?[0-9]+$/.test(id)) return null;
    return log.querySelector(id.startsWith('o') ? '[data-own="' + id.slice(1) + '"]' : '[data-seq="' + id + '"]');
  }

  // quoteOf is the line above a reply: the message it answers as shown here, else the core's quote.
  function quoteOf(id, fallback) {
    const target = id ? byPageID(id) : null;
    let t = fallback || '';
    if (target) {
      const from = target.querySelector('.from');
      const body = target.querySelector('.text');
      const words = (body ? body.textContent : '').split('\n')[0];
      t = '↩ ' + (from ? from.textContent : '') + ': ' + (words.length > 40 ? words.slice(0, 40) + '…' : words);
    }
    const q = el('span', 'quote', t);
    if (target) q.dataset.replyTo = id;
    return q;
  }

  function markEdited(m) {
    if (m && !m.querySelector('.edited')) m.insertBefore(el('span', 'edited', '(edited)'), m.querySelector('time'));
  }

  // setCompose shows above the input what the next line will be: a reply, an edit, or neither.
  function setCompose(reply, edit) {
    replyTo = reply;
    editing = edit;
    const bar = $('compose-state');
    if (!bar) return;
    bar.textContent = '';
    if (reply === null && edit === null) { bar.hidden = true; return; }
    bar.hidden = false;
    bar.appendChild(edit !== null ? el('span', 'what', '✏️ Editing your message') : quoteOf(reply, ''));
    const cancel = el('button', 'cancel', '✕');
    cancel.type = 'button';
    cancel.title = 'Cancel';
    cancel.addEventListener('click', () => { setCompose(null, null); text.value = ''; updateCount(); });
    bar.appendChild(cancel);
    text.focus();
  }

  const reactionChoices = ['👍', '❤️', '😂', '🔥'];

  // addActions gives a member's message its buttons: reply and react, and for the visitor's own
  // lines edit and unsend.
  function addActions(m, id, own) {
    const bar = el('span', 'msg-actions');
    const button = (label, title, cls, fn) => {
      const b = el('button', cls, label);
      b.type = 'button';
      b.title = title;
      b.addEventListener('click', fn);
      bar.appendChild(b);
      return b;
    };
    button('↩', 'Reply', 'reply', () => setCompose(id, null));
    reactionChoices.forEach((e) => {
      const b = button(e, 'React ' + e, 'react', () => {
        const on = b.classList.toggle('mine');
        if (!send({ type: 'react', target: id, emoji: e, remove: !on })) b.classList.toggle('mine');
      });
      b.dataset.emoji = e;
    });
    if (own) {
      button('✏️', 'Edit', 'edit', () => {
        const body = m.querySelector('.text');
        text.value = body ? body.textContent : '';
        updateCount();
        setCompose(null, id.slice(1));
      });
      button('🗑', 'Unsend: take it back from everyone', 'unsend', () => {
        if (send({ type: 'unsend', target: id })) m.remove();
      });
    }
    m.appendChild(el('span', 'reactions'));
    m.appendChild(bar);
  }

  function handle(ev) {
    if (typeof ev.now === 'number') skew = ev.now - Date.now();
    switch (ev.type) {
      case 'hello':
        if (token && !ev.resumed) {
          system('Your previous session ended while you were away: you are a new visitor now. Rejoin your room with its password, or with your creator key if you created it.');
          lastSeq = 0;
          setRoom(false);
        }
        token = ev.token || '';
        maxText = ev.maxText || maxText;
        retries = 0;
        setStatus('connected', 'Connected');
        document.body.dataset.simulate = ev.simulate ? 'on' : 'off';
        if (joinToken) {
          send({ type: 'text', text: '/join ' + joinToken });
          joinToken = '';
        }
        break;
      case 'msg':
        if (ev.seq && ev.seq <= lastSeq) return; // already shown before a reconnect
        if (ev.seq) lastSeq = ev.seq;
        render(ev);
        trackRoom(ev);
        document.body.dataset.chat = 'on';
        break;
      case 'delete':
        // The room's wipe: its messages, and the visitor's own lines, leave the page.
        if (ev.seq && ev.seq <= lastSeq) return;
        if (ev.seq) lastSeq = ev.seq;
        (ev.ids || []).forEach((id) => {
          const sel = id.startsWith('o') ? '[data-own="' + id.slice(1) + '"]' : '[data-seq="' + id + '"]';
          if (/^o?[0-9]+$/.test(id)) log.querySelectorAll(sel).forEach((n) => n.remove());
        });
        break;
      case 'edit': {
        // A member fixed their message: its text changes in place.
        if (ev.seq && ev.seq <= lastSeq) return;
        if (ev.seq) lastSeq = ev.seq;
        const m = byPageID(ev.target || '');
        const body = m && m.querySelector('.text');
        if (body) {
          body.textContent = ev.text || '';
          body.className = (ev.text || '').includes('\n') ? 'text lines' : 'text';
          markEdited(m);
        }
        break;
      }
      case 'react': {
        // The others' reactions on a message (kumo's copy, or the visitor's own line).
        if (ev.seq && ev.seq <= lastSeq) return;
        if (ev.seq) lastSeq = ev.seq;
        const m = byPageID(ev.target || '');
        const r = m && m.querySelector('.reactions');
        if (r) r.textContent = (ev.reactions || []).join(' ');
        break;
      }
      case 'error':
        showError(ev.error || 'Something went wrong.');
        break;
    }
  }

  // ---- rendering -----------------------------------------------------------------------------

  function el(tag, cls, txt) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (txt !== undefined) e.textContent = txt;
    return e;
  }

  function append(node) {
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 80;
    log.appendChild(node);
    if (atBottom) log.scrollTop = log.scrollHeight;
  }

  function system(t) {
    const m = el('div', 'msg kind-local');
    m.dataset.kind = 'local';
    m.appendChild(el('span', 'text', t));
    append(m);
  }

  function copyButton(value) {
    const b = el('button', 'copy', 'Copy');
    b.type = 'button';
    b.addEventListener('click', () => {
      const done = () => { b.textContent = 'Copied'; setTimeout(() => { b.textContent = 'Copy'; }, 1500); };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(value).then(done, () => selectFallback(b));
      } else {
        selectFallback(b);
      }
    });
    return b;
  }

  function selectFallback(b) {
    const code = b.parentNode.querySelector('code');
    if (!code) return;
    const r = document.createRange();
    r.selectNodeContents(code);
    const s = window.getSelection();
    s.removeAllRanges();
    s.addRange(r);
    b.textContent = 'Selected: press Ctrl+C';
  }

  function codeBlock(value, cls) {
    const wrap = el('div', 'code ' + (cls || ''));
    wrap.appendChild(el('code', '', value));
    wrap.appendChild(copyButton(value));
    return wrap;
  }

  function render(ev) {
    if (ev.kind === 'relay' && Array.isArray(ev.lines) && ev.lines.length > 0) {
      // A combined send: one bubble per member's message, as if each had come alone.
      for (const l of ev.lines) render(Object.assign({}, ev, { lines: null, from: l.from, text: l.text }));
      return;
    }
    const m = el('div', 'msg kind-' + ev.kind);
    m.dataset.kind = ev.kind;
    m.dataset.seq = String(ev.seq || 0);
    if (ev.replyTo || ev.quote) m.appendChild(quoteOf(ev.replyTo || '', ev.quote));
    switch (ev.kind) {
      case 'relay':
        m.appendChild(el('span', 'from', ev.from || '?'));
        // Several lines are set in a quote under the name, so no line of a member's text can pass
        // for a message of its own (or a notice).
        m.appendChild(el('span', (ev.text || '').includes('\n') ? 'text lines' : 'text', ev.text || ''));
        break;
      case 'notice':
        m.appendChild(el('span', 'mark', '🔔'));
        m.appendChild(el('span', 'text', ev.text || ''));
        break;
      case 'invoice':
        m.appendChild(invoiceCard(ev));
        break;
      default:
        m.appendChild(el('span', 'text', ev.text || ''));
    }
    if (ev.parts > 1) m.appendChild(el('span', 'part', '(' + ev.part + '/' + ev.parts + ')'));
    if (ev.image) {
      const img = el('img', 'image');
      img.alt = 'image';
      img.src = ev.image; // a data: URL the server made from a PNG
      m.appendChild(img);
    }
    if (ev.media && typeof ev.media.url === 'string' && ev.media.url.startsWith('/media/')) {
      m.appendChild(mediaNode(ev.media));
    }
    if (ev.code && ev.kind !== 'invoice') m.appendChild(codeBlock(ev.code));
    if (ev.kind === 'relay' && ev.seq) addActions(m, String(ev.seq), false);
    m.appendChild(stamp()); // last: a message opens with its sender
    append(m);
    // A new invoice is what the visitor must act on: its QR code comes into view at once.
    if (ev.kind === 'invoice') m.scrollIntoView({ block: 'start' });
  }

  // mediaNode shows a relayed file: an image in place, anything else as a download link. The file
  // lives in the server's memory at an address made for this visitor, gone with the room.
  function mediaNode(md) {
    if (md.inline) {
      const img = el('img', 'image media');
      img.alt = md.kind === 'sticker' ? 'sticker' : 'photo';
      img.src = md.url;
      return img;
    }
    const a = el('a', 'file', '📎 ' + (md.name || 'file') + ' (' + formatBytes(md.size || 0) + ')');
    a.href = md.url;
    a.download = md.name || 'file';
    return a;
  }

  function formatBytes(n) {
    if (n >= 1 << 20) return (n / (1 << 20)).toFixed(1) + ' MB';
    if (n >= 1 << 10) return Math.round(n / (1 << 10)) + ' KB';
    return n + ' bytes';
  }

  // stamp is when a message arrived, in the visitor's own time zone.
  function stamp() {
    const d = new Date();
    const t = el('time', 'at', formatClock(d));
    t.dateTime = d.toISOString();
    return t;
  }

  function formatClock(d) {
    return d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
  }

  function invoiceCard(ev) {
    const inv = ev.invoice || {};
    const card = el('div', 'invoice');
    card.dataset.invoice = inv.id || '';
    if (ev.text) card.appendChild(el('p', 'caption', ev.text));
    if (inv.qr) {
      const img = el('img', 'qr');
      img.alt = 'QR code of the Lightning invoice';
      img.src = inv.qr;
      img.width = 240;
      img.height = 240;
      card.appendChild(img);
    }
    const details = el('div', 'details');
    details.appendChild(el('p', 'amount', formatSat(inv.amountSat) + ' sat'));
    const countdown = el('p', 'countdown', '');
    countdown.setAttribute('role', 'timer'); // ticks every second: never read out on its own
    countdown.setAttribute('aria-live', 'off');
    details.appendChild(countdown);
    details.appendChild(el('p', 'hint', 'Pay with any Lightning wallet: scan the code or copy the invoice.'));
    details.appendChild(codeBlock(inv.bolt11 || ev.code || '', 'bolt11'));
    if (inv.uri) {
      const a = el('a', 'open-wallet', 'Open in wallet');
      a.href = inv.uri.startsWith('lightning:') ? inv.uri : 'lightning:' + (inv.bolt11 || '');
      a.rel = 'noreferrer';
      details.appendChild(a);
    }
    if (inv.simulate) {
      const sim = el('div', 'simulate');
      // The caption already says this is the development backend: the button does not repeat it.
      const b = el('button', 'simulate-pay', 'Simulate payment');
      b.type = 'button';
      b.addEventListener('click', () => {
        if (send({ type: 'pay', invoice: inv.id })) {
          b.disabled = true;
          b.textContent = 'Simulated payment sent…';
        }
      });
      sim.appendChild(b);
      details.appendChild(sim);
    }
    card.appendChild(details);
    const tick = () => {
      if (card.dataset.paid) return false;
      const left = (inv.expiresAt || 0) - now();
      if (left <= 0) {
        countdown.textContent = 'This invoice has expired.';
        card.classList.add('expired');
        card.querySelectorAll('.simulate-pay').forEach((b) => { b.disabled = true; });
        return false;
      }
      countdown.textContent = 'Expires in ' + formatDuration(left);
      return true;
    };
    if (tick()) {
      const t = setInterval(() => { if (!tick()) clearInterval(t); }, 1000);
    }
    return card;
  }

  function formatSat(n) {
    return Number(n || 0).toLocaleString('en-US');
  }

  function formatDuration(ms) {
    let s = Math.max(0, Math.floor(ms / 1000));
    const h = Math.floor(s / 3600); s -= h * 3600;
    const m = Math.floor(s / 60); s -= m * 60;
    const pad = (x) => String(x).padStart(2, '0');
    return (h > 0 ? h + ':' + pad(m) : String(m)) + ':' + pad(s);
  }

  // ---- room state, read from what the core says ----------------------------------------------
  // Only the core's own replies and notices are read: a member's words (kind relay) never move it.
  // The core attaches the visitor's room state to the replies and notices that change it; members'
  // own words never carry it, so nobody can fake a countdown or an ending.
  function trackRoom(ev) {
    const r = ev.room;
    if (!r) return;
    if (r.closed) {
      // The room ended for this visitor: the conversation leaves the page, all but this notice.
      [...log.children].slice(0, -1).forEach((n) => n.remove());
      setRoom(false);
      return;
    }
    if (r.endsAt) roomEndsAt = r.endsAt;
    // A room state after an invoice means the room it paid for is open.
    markInvoicesPaid();
    setRoom(true, r);
  }

  function markInvoicesPaid() {
    log.querySelectorAll('.invoice:not(.expired)').forEach((card) => {
      card.dataset.paid = 'yes';
      card.classList.add('paid');
      card.querySelectorAll('.countdown').forEach((c) => { c.textContent = 'Paid. Your room is open.'; });
      card.querySelectorAll('.simulate-pay').forEach((b) => { b.disabled = true; b.textContent = 'Paid (simulated)'; });
    });
  }

  // Controls that only apply in a room, out of one, or to its creator.
  const inRoomOnly = ['btn-who', 'btn-info', 'btn-nick-open', 'btn-leave', 'nick-name', 'btn-nick'];
  const outOfRoomOnly = ['btn-newroom', 'join-password', 'btn-join'];

  function setRoom(on, r) {
    inRoom = on;
    creator = on && !!(r && r.creator);
    if (!on) roomEndsAt = 0;
    document.body.dataset.room = on ? 'in' : 'out';
    document.body.dataset.creator = creator ? 'yes' : 'no';
    inRoomOnly.forEach((id) => { $(id).disabled = !on; });
    outOfRoomOnly.forEach((id) => { $(id).disabled = on; });
    $('btn-destroy').disabled = !creator;
    if (!on) showNick(false);
    let state = 'You are not in a room.';
    if (on) {
      state = (r && r.nick) ? r.nick : 'In a room';
      if (r && r.members) state += ' · ' + r.members + (r.members === 1 ? ' member' : ' members');
      if (creator) state += ' · creator';
    }
    // Only a real change is written, so the live region speaks only when the room changed.
    if ($('room-state').textContent !== state) $('room-state').textContent = state;
    tickRoom();
  }

  function tickRoom() {
    const tl = $('time-left'), at = $('ends-at');
    if (!inRoom || !roomEndsAt) {
      tl.hidden = at.hidden = true;
      tl.textContent = at.textContent = '';
      return;
    }
    const left = roomEndsAt - now();
    tl.hidden = at.hidden = false;
    // The end in the visitor's own time zone, by their own clock.
    const ends = new Date(roomEndsAt - skew);
    at.textContent = '(' + formatClock(ends) + ')';
    at.dataset.at = ends.toISOString();
    tl.textContent = left > 0 ? 'Self-destructs in ' + formatDuration(left) : 'Self-destructing…';
  }
  setInterval(tickRoom, 1000);

  // ---- status and errors ---------------------------------------------------------------------

  function setStatus(state, t) {
    const s = $('status');
    s.dataset.state = state;
    s.textContent = t;
  }

  function showError(t) {
    const e = $('error');
    e.textContent = t;
    e.hidden = false;
  }

  function hideError() {
    $('error').hidden = true;
  }

  // ---- controls ------------------------------------------------------------------------------

  $('composer').addEventListener('submit', (e) => {
    e.preventDefault();
    if (sendText(text.value)) {
      text.value = '';
      updateCount();
    }
  });
  text.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      $('composer').requestSubmit();
    }
  });
  function updateCount() {
    const n = text.value.length;
    const c = $('count');
    c.textContent = n > maxText * 0.8 ? n + ' / ' + maxText : '';
    c.classList.toggle('over', n > maxText);
  }
  text.addEventListener('input', updateCount);

  // ---- files: the picker, paste and drag-and-drop all end in sendFile -----------------------

  const maxUpload = 20 << 20;
  async function sendFile(file) {
    if (!token) {
      showError('Not connected yet. Try again in a moment.');
      return;
    }
    if (file.size > maxUpload) {
      showError('That file is too big: the limit is ' + (maxUpload >> 20) + ' MB. It was not sent.');
      return;
    }
    const caption = text.value.trim();
    const id = String(++ownSeq);
    hideError();
    let res;
    try {
      res = await fetch('/media', {
        method: 'POST',
        body: file,
        headers: {
          'Content-Type': file.type || 'application/octet-stream',
          'X-Kumo-Token': token,
          'X-Kumo-Name': encodeURIComponent(file.name || ''),
          'X-Kumo-Caption': encodeURIComponent(caption),
          'X-Kumo-Id': id,
        },
        credentials: 'omit',
        cache: 'no-store',
      });
    } catch (e) {
      showError('The file could not be sent: the connection failed.');
      return;
    }
    if (!res.ok) {
      showError((await res.text()).trim() || 'The file could not be sent.');
      return;
    }
    text.value = '';
    updateCount();
    if (inRoom) {
      const m = el('div', 'msg kind-self');
      m.dataset.kind = 'self';
      m.dataset.own = id;
      m.appendChild(el('span', 'from', 'You'));
      m.appendChild(el('span', 'text', '📎 ' + (file.name || 'file') + (caption ? ' — ' + caption : '')));
      append(m);
    }
  }
  $('file').addEventListener('change', (e) => {
    Array.from(e.target.files || []).forEach(sendFile);
    e.target.value = '';
  });
  $('btn-file').addEventListener('click', () => $('file').click());
  text.addEventListener('paste', (e) => {
    const files = Array.from((e.clipboardData && e.clipboardData.files) || []);
    if (files.length === 0) return;
    e.preventDefault();
    files.forEach(sendFile);
  });
  document.addEventListener('dragover', (e) => {
    if (e.dataTransfer && Array.from(e.dataTransfer.types || []).includes('Files')) e.preventDefault();
  });
  document.addEventListener('drop', (e) => {
    const files = Array.from((e.dataTransfer && e.dataTransfer.files) || []);
    if (files.length === 0) return;
    e.preventDefault();
    files.forEach(sendFile);
  });

  $('btn-newroom').addEventListener('click', () => sendText('/newroom'));
  $('btn-who').addEventListener('click', () => sendText('/who'));
  $('btn-info').addEventListener('click', () => sendText('/info'));
  $('btn-leave').addEventListener('click', () => {
    ask('Leave this room? To come back you need its password' + (creator ? ', and your creator key to be its creator again.' : '.'), 'Leave')
      .then((yes) => { if (yes) sendText('/leave'); });
  });
  $('btn-destroy').addEventListener('click', () => {
    ask('Destroy this room for everyone, now? Nobody can undo it.', 'Destroy')
      .then((yes) => { if (yes) sendText('/destroy'); });
  });
  $('btn-nick-open').addEventListener('click', () => showNick($('nick-form').hidden));
  $('btn-help').addEventListener('click', () => sendText('/help'));
  $('join-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const p = $('join-password');
    if (p.value.trim() !== '' && sendText('/join ' + p.value.trim())) p.value = '';
  });
  $('nick-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const n = $('nick-name');
    if (n.value.trim() !== '' && sendText('/nick ' + n.value.trim())) {
      n.value = '';
      showNick(false);
    }
  });

  function showNick(on) {
    $('nick-form').hidden = !on;
    $('btn-nick-open').setAttribute('aria-expanded', on ? 'true' : 'false');
    if (on) $('nick-name').focus();
  }

  // ask shows the page's own confirmation (a modal dialog) and resolves to the answer.
  function ask(question, yes) {
    const d = $('confirm');
    $('confirm-text').textContent = question;
    $('confirm-yes').textContent = yes;
    return new Promise((resolve) => {
      const done = (answer) => {
        $('confirm-yes').onclick = $('confirm-no').onclick = d.oncancel = null;
        if (d.open) d.close();
        resolve(answer);
      };
      $('confirm-yes').onclick = () => done(true);
      $('confirm-no').onclick = () => done(false);
      d.oncancel = () => done(false);
      d.showModal();
      $('confirm-no').focus();
    });
  }

  // Leaving the page leaves the room for good (a reload is a new visitor): the browser asks first.
  window.addEventListener('beforeunload', (e) => {
    if (!inRoom) return;
    e.preventDefault();
    e.returnValue = '';
  });

  setRoom(false);
  connect();
})();
