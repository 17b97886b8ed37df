// Staffroom's writing forms: signs what a teacher writes with their own Ed25519 key, in this
// browser (WebCrypto), so the node never holds the key. The key is imported once on /key and
// kept in IndexedDB as a non-extractable CryptoKey: no script, this one included, can read it
// back. Flow: upload a resource's files (with progress) -> POST /w/prepare (the exact bytes to
// sign) -> check them -> sign -> POST /w/submit -> (a resource's sources, the same way) -> go
// to the new entry's page.
'use strict';

(() => {
  const meta = (name) => document.querySelector(`meta[name="${name}"]`)?.content || '';
  const csrf = meta('staffroom-csrf');
  const teacher = meta('staffroom-teacher');
  const CONTEXT = new TextEncoder().encode('staffroom/entry/v1\n');
  // PKCS #8 for an Ed25519 private key is this fixed prefix, then the 32-byte seed.
  const PKCS8_PREFIX = '302e020100300506032b657004220420';

  const fromHex = (hex) => {
    if (!/^([0-9a-f]{2})*$/i.test(hex)) throw new Error('not hexadecimal');
    return Uint8Array.from(hex.match(/../g) || [], (b) => parseInt(b, 16));
  };
  const toHex = (bytes) => Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, '0')).join('');
  const b64urlToHex = (text) => toHex(Uint8Array.from(atob(text.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0)));
  const contains = (haystack, needle) => {
    if (needle.length === 0) return true;
    outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
      for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
      return true;
    }
    return false;
  };

  // IndexedDB: one store, keys by the teacher's author id.
  const db = () => new Promise((resolve, reject) => {
    const open = indexedDB.open('staffroom', 1);
    open.onupgradeneeded = () => open.result.createObjectStore('keys');
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => reject(open.error);
  });
  const keys = async (mode, act) => {
    const store = (await db()).transaction('keys', mode).objectStore('keys');
    return new Promise((resolve, reject) => {
      const request = act(store);
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  };
  const storedKey = () => keys('readonly', (s) => s.get(teacher));

  async function importKey(hex) {
    const seed = fromHex(hex.trim().toLowerCase());
    if (seed.length !== 32) throw new Error('a key is 64 hexadecimal characters');
    const pkcs8 = new Uint8Array([...fromHex(PKCS8_PREFIX), ...seed]);
    // Imported once extractable to learn its public half, then kept non-extractable.
    const open = await crypto.subtle.importKey('pkcs8', pkcs8, { name: 'Ed25519' }, true, ['sign']);
    const author = b64urlToHex((await crypto.subtle.exportKey('jwk', open)).x);
    if (author !== teacher) throw new Error(`this is the key of author ${author.slice(0, 8)}, not yours (${teacher.slice(0, 8)})`);
    const key = await crypto.subtle.importKey('pkcs8', pkcs8, { name: 'Ed25519' }, false, ['sign']);
    await keys('readwrite', (s) => s.put(key, teacher));
  }

  async function call(path, body, headers = {}) {
    const response = await fetch(path, {
      method: 'POST',
      headers: { 'x-csrf-token': csrf, 'content-type': 'application/json', ...headers },
      body,
    });
    const reply = await response.json().catch(() => ({ error: `the node answered ${response.status}` }));
    if (!response.ok) throw new Error(reply.error || `the node answered ${response.status}`);
    return reply;
  }

  // One file to the node (which seals it for a private network), reporting progress; the
  // root and size the resource lists back.
  const upload = (file, network, progress) => new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `/w/upload?name=${encodeURIComponent(file.name)}&network=${encodeURIComponent(network)}`);
    xhr.setRequestHeader('x-csrf-token', csrf);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) { progress.max = e.total; progress.value = e.loaded; } };
    xhr.onload = () => {
      let reply = {};
      try { reply = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
      if (xhr.status === 201) { progress.value = progress.max; resolve(reply); }
      else reject(new Error(reply.error || `upload failed (${xhr.status})`));
    };
    xhr.onerror = () => reject(new Error('the upload was cut off'));
    xhr.send(file);
  });

  const list = (text) => text.split(',').map((t) => t.trim()).filter(Boolean);
  // Each kind's tags in the clear: a resource with files is kind 8 (docs/protocol.md).
  const KIND_TAGS = { blog_post: [1], resource: [2, 8], enquiry: [3], enquiry_note: [4], comment: [5] };

  // The protocol's JSON form of what the form holds, and the texts the signed bytes must hold.
  function bodyOf(form, files) {
    const v = (name) => form.elements[name]?.value ?? '';
    switch (form.dataset.kind) {
      case 'blog_post': return [{ kind: 'blog_post', title: v('title'), body_md: v('body_md'), tags: list(v('tags')) }, [v('title'), v('body_md')]];
      case 'resource': return [{
        kind: 'resource', title: v('title'), description_md: v('description_md'), subjects: list(v('subjects')),
        age_min_years: Number(v('age_min_years')), age_max_years: Number(v('age_max_years')), key_stage: v('key_stage'),
        licence: v('licence'), language: v('language'), files,
      }, [v('title'), v('description_md')]];
      case 'enquiry': return [{ kind: 'enquiry', question: v('question'), description_md: v('description_md') }, [v('question'), v('description_md')]];
      case 'enquiry_note': return [{ kind: 'enquiry_note', stage: v('stage'), body_md: v('body_md') }, [v('body_md')]];
      default: return [{ kind: 'comment', body_md: v('body_md') }, [v('body_md')]];
    }
  }

  // "Based on" lines: an entry's page (on any school's node: ids are the same everywhere) or
  // its id, or a web page. A line that is neither stops everything before it is sent.
  function sourcesOf(form) {
    const entries = new Set(); const links = new Set();
    const lines = (form.elements.based_on?.value ?? '').split('\n').map((l) => l.trim());
    lines.forEach((line, i) => {
      if (!line) return;
      const id = line.match(/^(?:https?:\/\/\S*\/e\/)?([0-9a-f]{64})\/?$/i);
      if (id) entries.add(id[1].toLowerCase());
      else if (/^https?:\/\/./i.test(line) && URL.canParse(line)) links.add(new URL(line).href); // spaces and the like percent-encoded
      else throw new Error(`"Based on" line ${i + 1} is neither an entry's address nor a web page`);
    });
    // The protocol's bounds (docs/protocol.md, "Sources"), checked before the resource is sent.
    if (entries.size > 16 || links.size > 8) throw new Error('"Based on" names at most 16 entries and 8 web pages');
    for (const link of links) {
      if (link.length > 2048) throw new Error(`"Based on": ${link.slice(0, 40)}… is longer than 2,048 characters`);
    }
    return { entries: [...entries], links: [...links] };
  }

  // Where the prepared bytes keep the header's fields, after the signing context.
  const NETWORK_AT = CONTEXT.length + 1;
  const KIND_AT = CONTEXT.length + 1 + 32 + 32 + 8;
  const SEALED = 10;

  // Prepares `request` on the node, checks the bytes, signs them with `key`, submits them.
  // `kinds`: the kind tags the entry may have in the clear.
  async function signAndSubmit(key, request, texts, kinds) {
    const prepared = await call('/w/prepare', JSON.stringify(request));
    const message = fromHex(prepared.message);
    // Sign only what was written here: the context, this network, this kind, this teacher as
    // author, these texts. A private network's content comes sealed by the school's node (as
    // for the CLI): its kind is 10 and the texts cannot be seen in it.
    const needles = texts.map((t) => (typeof t === 'string' ? new TextEncoder().encode(t) : t));
    const written = prepared.sealed || needles.every((t) => contains(message, t));
    const network = fromHex(request.network);
    const sameNetwork = network.every((b, i) => message[NETWORK_AT + i] === b);
    const kind = (prepared.sealed ? [SEALED] : kinds).includes(message[KIND_AT]);
    const ok = contains(message.slice(0, CONTEXT.length), CONTEXT) && prepared.author === teacher
      && contains(message, fromHex(teacher)) && written && sameNetwork && kind;
    if (!ok) throw new Error('the node prepared something other than what you wrote; nothing was signed');
    const signature = await crypto.subtle.sign({ name: 'Ed25519' }, key, message);
    return call('/w/submit', JSON.stringify({ message: prepared.message, signature: toHex(signature) }));
  }

  async function post(form, status) {
    const key = await storedKey();
    if (!key) throw new Error('keep your key in this browser first (Your key, at the top)');
    const sources = form.dataset.kind === 'resource' ? sourcesOf(form) : { entries: [], links: [] };
    const files = [];
    for (const item of form.querySelectorAll('ul.uploads li')) {
      status.textContent = `Uploading ${item.file.name}…`;
      const sent = await upload(item.file, form.dataset.network, item.querySelector('progress'));
      files.push({ name: item.file.name, media_type: (item.file.type || 'application/octet-stream').toLowerCase(), size_bytes: sent.size_bytes, root: sent.root });
    }
    const [body, texts] = bodyOf(form, files);
    status.textContent = 'Signing…';
    const network = form.dataset.network;
    const done = await signAndSubmit(key, {
      network, body, reply_to: form.dataset.replyTo || null, enquiry: form.dataset.enquiry || null,
    }, texts, KIND_TAGS[body.kind]);
    if (sources.entries.length + sources.links.length > 0) {
      // A second entry beside the resource (kind 13), signed the same way.
      status.textContent = 'Signing its sources…';
      const stated = { kind: 'sources', resource: done.id, ...sources };
      try {
        await signAndSubmit(key, { network, body: stated, reply_to: null, enquiry: null },
          [fromHex(done.id), ...sources.entries.map(fromHex), ...sources.links], [13]);
      } catch (err) {
        const posted = new Error(`the resource was posted (${done.url}), but not its sources: ${err.message}`);
        posted.posted = true;
        throw posted;
      }
    }
    status.textContent = 'Posted.';
    location.assign(done.url);
  }

  function addFiles(form, fileList) {
    const ul = form.querySelector('ul.uploads');
    for (const file of fileList) {
      const li = document.createElement('li');
      li.file = file;
      const label = document.createElement('span');
      label.textContent = `${file.name} (${file.size} bytes) `;
      const progress = document.createElement('progress');
      progress.max = file.size || 1; progress.value = 0;
      progress.setAttribute('aria-label', `Upload of ${file.name}`);
      li.append(label, progress);
      ul.append(li);
    }
  }

  function wire() {
    for (const form of document.querySelectorAll('form.write')) {
      const status = form.querySelector('.status');
      const input = form.querySelector('input[type=file]');
      if (input) input.addEventListener('change', () => { addFiles(form, input.files); input.value = ''; });
      const drop = form.querySelector('.drop');
      if (drop) {
        drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
        drop.addEventListener('dragleave', () => drop.classList.remove('over'));
        drop.addEventListener('drop', (e) => { e.preventDefault(); drop.classList.remove('over'); addFiles(form, e.dataTransfer.files); });
      }
      form.addEventListener('submit', (e) => {
        e.preventDefault();
        const button = form.querySelector('button[type=submit]');
        button.disabled = true;
        post(form, status).catch((err) => {
          // A resource already posted stays so: posting again would make a second one.
          status.textContent = err.posted ? `Partly posted: ${err.message}` : `Not posted: ${err.message}`;
          button.disabled = Boolean(err.posted);
        });
      });
    }
    const importer = document.querySelector('form.key-import');
    if (importer) {
      const status = importer.querySelector('.status');
      importer.addEventListener('submit', async (e) => {
        e.preventDefault();
        try {
          const file = importer.elements.key_file.files[0];
          const hex = file ? (await file.text()) : importer.elements.key_hex.value;
          await importKey(hex);
          importer.reset();
          status.textContent = 'Your key is kept in this browser. You can write now.';
        } catch (err) { status.textContent = `Not kept: ${err.message}`; }
      });
    }
    const forget = document.querySelector('form.key-forget');
    if (forget) forget.addEventListener('submit', async (e) => {
      e.preventDefault();
      await keys('readwrite', (s) => s.delete(teacher));
      document.querySelector('form.key-import .status').textContent = 'This browser no longer holds your key.';
    });
    storedKey().then((key) => {
      for (const notice of document.querySelectorAll('.key-missing')) notice.hidden = Boolean(key);
    }).catch(() => {});
  }

  if (teacher && csrf) wire();
})();
