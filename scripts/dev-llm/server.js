#!/usr/bin/env node
// SPDX-License-Identifier: MIT
//
// dev-llm: canned text, not a model.
//
// A faithful test double of Ollama's native API (/api/generate, /api/chat, /api/tags,
// /api/show, /api/pull, /api/version, GET /) and of the OpenAI-compatible streaming API
// (/v1/chat/completions, /v1/models), per shared/docs/llm-backends.md section 3. It is the
// test server of agent/agent_llm_* and the demo's default backend. It never runs a model: the
// text is drawn from a fixed list of tokens by a seeded generator.
//
// HTTP is written by hand on a raw TCP socket so that every byte, write boundary and fault is
// under control: headers go out only with the first token, chunked framing, FIN or RST
// without a final line, stalls, byte-by-byte and merged writes, split UTF-8 sequences.
//
// Faults and pacing are chosen per request by a directive, either embedded in the prompt
// (any message) as  [[dev:{"fault":"fin","after":3}]]  or queued for the next generation
// request(s) with  POST /_dev/next {"fault":"fin","after":3}.  Directive fields:
//   n               tokens to generate before a natural stop (default --tokens)
//   tokens          explicit list of token strings to emit (overrides the canned text)
//   first_token_ms  delay before the first byte (model load)    token_ms / jitter_ms: pacing
//   status          pre-stream HTTP error: 400 401 402 404 429 500 502 503 (+ message)
//   fault           error | fin | rst | eof | stall | malformed | longline  (after: chunk index)
//   stall_ms        length of a stall (fault stall)             bytes: long line size
//   write           normal | bytes (one body byte per write) | merged | split
//   split_utf8      split multibyte characters across chunks (raw bytes inside JSON strings)
//   multi / empty   occasional multi-token chunks / empty-content chunks (default true)
//   comments        SSE ": OPENROUTER PROCESSING" comment lines (openai)
//   crlf            SSE lines end with \r\n (openai)           nospace: "data:" without space
//   multiline       one SSE event's JSON spread over two data: lines (openai)
//   role_style      "null" (llama-server: role chunk with content null) | "content" (Ollama /v1)
//   error_style     "openrouter" | "llama" (mid-stream error event shape, openai)
//   stamp           each token is the server's monotonic send time in ns followed by a space
//   tag             a label to find this request in /_dev/stats?tag=...
//
// Observability: GET /_dev/stats[?tag=T] lists generation records: request fields (never the
// API key), tokens sent and their text, the end, and client disconnects with monotonic
// timestamps (process.hrtime, the same CLOCK_MONOTONIC as libuv's uv_hrtime) so tests can
// assert cancellation latency. --log FILE appends every record as NDJSON.
'use strict';

const net = require('net');
const fs = require('fs');

// ---------------------------------------------------------------------------------------
// Options
const HELP = `usage: node scripts/dev-llm/server.js [options]
dev-llm: canned text, not a model. A test double of Ollama and OpenAI-compatible servers.
  --port N            TCP port on 127.0.0.1 (0: ephemeral; default 11434)
  --models A,B        models listed by /api/tags and /v1/models (default llama3.2:latest,dev-llm:latest)
  --tokens N          tokens per answer before a natural stop (default 48)
  --first-token-ms N  model load delay before the first byte (default 0)
  --token-ms N        delay between chunks (default 20)      --jitter-ms N (default 0)
  --api-key KEY       require "Authorization: Bearer KEY" on /v1/* (env DEV_LLM_API_KEY)
  --parallel N        generations at once; others wait, headers included (default 1)
  --max-queue N       waiting requests before 503 server busy (default 512)
  --pull-ms N         delay between /api/pull progress lines (default 20)
  --log FILE          append one NDJSON record per request
  --quiet             no per-request lines on stderr`;

function parseArgs(argv) {
  const o = {
    port: 11434, models: ['llama3.2:latest', 'dev-llm:latest'], tokens: 48, firstTokenMs: 0,
    tokenMs: 20, jitterMs: 0, apiKey: process.env.DEV_LLM_API_KEY || null, parallel: 1,
    maxQueue: 512, pullMs: 20, log: null, quiet: false,
  };
  const num = (name, v) => {
    if (!/^\d+$/.test(v || '')) { console.error(`dev-llm: ${name}: not a number: '${v}'`); process.exit(2); }
    return Number(v);
  };
  for (let i = 2; i < argv.length; i++) {
    let a = argv[i], v = null;
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0) { v = a.slice(eq + 1); a = a.slice(0, eq); }
    const next = () => (v !== null ? v : argv[++i]);
    switch (a) {
      case '--port': o.port = num(a, next()); break;
      case '--models': o.models = next().split(',').filter(Boolean); break;
      case '--tokens': o.tokens = num(a, next()); break;
      case '--first-token-ms': o.firstTokenMs = num(a, next()); break;
      case '--token-ms': o.tokenMs = num(a, next()); break;
      case '--jitter-ms': o.jitterMs = num(a, next()); break;
      case '--api-key': o.apiKey = next(); break;
      case '--parallel': o.parallel = Math.max(1, num(a, next())); break;
      case '--max-queue': o.maxQueue = num(a, next()); break;
      case '--pull-ms': o.pullMs = num(a, next()); break;
      case '--log': o.log = next(); break;
      case '--quiet': o.quiet = true; break;
      case '-h': case '--help': console.log(HELP); process.exit(0); break;
      default: console.error(`dev-llm: unknown option '${a}'\n${HELP}`); process.exit(2);
    }
  }
  return o;
}
const opt = parseArgs(process.argv);

// ---------------------------------------------------------------------------------------
// Canned text: tokens of varying byte length, multibyte UTF-8 (accents, CJK, emoji with
// ZWJ and flags) and characters that need JSON escaping (" \ newline tab U+2028 < > &).
const CANNED = [
  'Once', ' upon', ' a', ' time', ',', ' the', ' café', ' served', ' 日本', '語', ' tea', ' 🎉',
  '.', ' She', ' said', ': "', 'hello', '"', ' —', ' back', 'slash', ' \\', ' path', '\n',
  'line', ' two', ' \u2028', 'sep', ' naïve', ' 👩‍💻', ' coder', ' ✓', ' <b>', ' &', ' done',
  ' 🇫🇷', ' Ω', ' ∑', ' 한국어', ' ☕', '\t', 'tab', ' token', ' stream', ' of', ' words', '!',
];

function mulberry32(a) {
  return function () {
    a |= 0; a = (a + 0x6D2B79F5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const nowNs = () => process.hrtime.bigint();

// Go's time.RFC3339Nano: nanoseconds with trailing zeros trimmed.
function createdAt() {
  const d = new Date();
  const sub = Number(nowNs() % 1000000n);
  let frac = String(d.getUTCMilliseconds()).padStart(3, '0') + String(sub).padStart(6, '0');
  frac = frac.replace(/0+$/, '');
  return d.toISOString().slice(0, 19) + (frac ? '.' + frac : '') + 'Z';
}

// Go's encoding/json escapes <, >, & and U+2028/U+2029; JSON.stringify does not.
function goJson(obj) {
  return JSON.stringify(obj).replace(/[<>&\u2028\u2029]/g,
    (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
}

// ---------------------------------------------------------------------------------------
// State
let nextId = 1;
const records = [];           // generation records, newest last (bounded)
const MAX_RECORDS = 2000;
const pendingDirectives = []; // queued by POST /_dev/next
let active = 0;
const waiting = [];           // generation starts waiting for a slot
const models = new Set(opt.models);
const loaded = new Set();
const logStream = opt.log ? fs.createWriteStream(opt.log, { flags: 'a' }) : null;

function note(msg) { if (!opt.quiet) process.stderr.write(`dev-llm: ${msg}\n`); }

function modelKnown(name) {
  if (!name) return false;
  for (const m of models) if (m === name || m === name + ':latest' || m.startsWith(name + ':') && !name.includes(':')) return true;
  return false;
}

// ---------------------------------------------------------------------------------------
// HTTP server on raw sockets
const STATUS_TEXT = {
  200: 'OK', 400: 'Bad Request', 401: 'Unauthorized', 402: 'Payment Required', 403: 'Forbidden',
  404: 'Not Found', 405: 'Method Not Allowed', 411: 'Length Required', 413: 'Payload Too Large',
  429: 'Too Many Requests', 500: 'Internal Server Error', 502: 'Bad Gateway',
  503: 'Service Unavailable',
};
const MAX_REQUEST = 8 << 20;

const server = net.createServer({ allowHalfOpen: false }, (sock) => {
  sock.setNoDelay(true);
  const conn = { sock, buf: Buffer.alloc(0), busy: false, gone: false, ctx: null };
  sock.on('data', (d) => {
    conn.buf = Buffer.concat([conn.buf, d]);
    if (conn.buf.length > MAX_REQUEST) { sendSimple(conn, 413, 'text/plain', 'too large', false); return; }
    if (!conn.busy) tryRequest(conn);
  });
  const gone = (how) => {
    if (conn.gone) return;
    conn.gone = true;
    if (conn.ctx) conn.ctx.clientGone(how);
  };
  sock.on('end', () => gone('fin'));
  sock.on('error', (e) => gone(e.code || 'error'));
  sock.on('close', () => gone('close'));
});

function tryRequest(conn) {
  const i = conn.buf.indexOf('\r\n\r\n');
  if (i < 0) return;
  const head = conn.buf.slice(0, i).toString('latin1').split('\r\n');
  const [method, target] = head[0].split(' ');
  const headers = {};
  for (const l of head.slice(1)) {
    const c = l.indexOf(':');
    if (c > 0) headers[l.slice(0, c).trim().toLowerCase()] = l.slice(c + 1).trim();
  }
  if (headers['transfer-encoding']) {
    conn.buf = Buffer.alloc(0);
    sendSimple(conn, 411, 'text/plain', 'chunked request bodies are not supported', false);
    return;
  }
  const len = Number(headers['content-length'] || 0);
  if (conn.buf.length < i + 4 + len) return;
  const body = conn.buf.slice(i + 4, i + 4 + len);
  conn.buf = conn.buf.slice(i + 4 + len);
  conn.busy = true;
  const keep = (headers.connection || '').toLowerCase() !== 'close';
  route(conn, { method, target, headers, body, keep });
}

function finishResponse(conn, keep) {
  conn.ctx = null;
  conn.busy = false;
  if (!keep) { conn.sock.end(); return; }
  if (conn.buf.length) tryRequest(conn);
}

function sendSimple(conn, status, ctype, body, keep = true) {
  if (conn.gone) return;
  const b = Buffer.from(body);
  conn.sock.write(`HTTP/1.1 ${status} ${STATUS_TEXT[status] || 'Status'}\r\n` +
    `Content-Type: ${ctype}\r\nDate: ${new Date().toUTCString()}\r\nContent-Length: ${b.length}\r\n` +
    (keep ? '' : 'Connection: close\r\n') + '\r\n');
  conn.sock.write(b);
  finishResponse(conn, keep);
}
const sendJson = (conn, status, obj, keep = true) =>
  sendSimple(conn, status, 'application/json; charset=utf-8', goJson(obj), keep);

function parseTarget(t) {
  const q = t.indexOf('?');
  const path = q < 0 ? t : t.slice(0, q);
  const query = new URLSearchParams(q < 0 ? '' : t.slice(q + 1));
  return { path, query };
}

function route(conn, req) {
  const { path, query } = parseTarget(req.target);
  const m = req.method;
  if (path === '/' && m === 'GET') return sendSimple(conn, 200, 'text/plain; charset=utf-8', 'Ollama is running', req.keep);
  if (path === '/' && m === 'HEAD') return sendSimple(conn, 200, 'text/plain; charset=utf-8', '', req.keep);
  if (path === '/api/version' && m === 'GET') return sendJson(conn, 200, { version: '0.0.0-dev-llm' }, req.keep);
  if (path === '/api/tags' && m === 'GET') return sendJson(conn, 200, { models: [...models].map(tagEntry) }, req.keep);
  if (path === '/v1/models' && m === 'GET') {
    if (!authOk(req)) return sendOpenAiError(conn, 401, 'Invalid API Key', req.keep);
    return sendJson(conn, 200, { object: 'list', data: [...models].map((id) => ({ id, object: 'model', created: 1700000000, owned_by: 'library' })) }, req.keep);
  }
  if (path === '/_dev/stats' && m === 'GET') {
    const tag = query.get('tag');
    return sendJson(conn, 200, { note: 'dev-llm: canned text, not a model', active, waiting: waiting.length,
      requests: tag ? records.filter((r) => r.tag === tag) : records }, req.keep);
  }
  if (path === '/_dev/next' && m === 'POST') {
    let d;
    try { d = JSON.parse(req.body.toString('utf8') || '{}'); } catch (e) { return sendJson(conn, 400, { error: 'bad directive: ' + e.message }, req.keep); }
    const count = Math.max(1, Number(d.count || 1));
    for (let k = 0; k < count; k++) pendingDirectives.push(d);
    return sendJson(conn, 200, { queued: pendingDirectives.length }, req.keep);
  }
  if (path === '/_dev/reset' && m === 'POST') {
    records.length = 0; pendingDirectives.length = 0;
    return sendJson(conn, 200, { ok: true }, req.keep);
  }
  if (m !== 'POST' && ['/api/generate', '/api/chat', '/api/show', '/api/pull', '/v1/chat/completions'].includes(path))
    return sendSimple(conn, 405, 'text/plain', '405 method not allowed', req.keep);
  if (path === '/api/show') return apiShow(conn, req);
  if (path === '/api/pull') return apiPull(conn, req);
  if (path === '/api/generate' || path === '/api/chat') return generation(conn, req, path === '/api/chat' ? 'chat' : 'generate');
  if (path === '/v1/chat/completions') return generation(conn, req, 'openai');
  return sendSimple(conn, 404, 'text/plain', '404 page not found', req.keep);
}

function tagEntry(name) {
  return { name, model: name, modified_at: '2026-01-01T00:00:00Z', size: 2019393189,
    digest: 'a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72',
    details: { parent_model: '', format: 'gguf', family: 'llama', families: ['llama'],
      parameter_size: '3.2B', quantization_level: 'Q4_K_M' } };
}

function authState(req) {
  const h = req.headers.authorization;
  if (!h) return 'none';
  if (!opt.apiKey) return 'bearer';
  return h === 'Bearer ' + opt.apiKey ? 'bearer-ok' : 'bearer-bad';
}
const authOk = (req) => !opt.apiKey || authState(req) === 'bearer-ok';

function sendOpenAiError(conn, status, message, keep) {
  const type = { 400: 'invalid_request_error', 401: 'authentication_error', 404: 'not_found_error' }[status] || 'api_error';
  return sendJson(conn, status, { error: { code: status, message, type } }, keep);
}

function parseBody(req) {
  const s = req.body.toString('utf8');
  if (!s.length) return { err: 'missing request body' };
  try {
    const v = JSON.parse(s);
    if (!v || typeof v !== 'object' || Array.isArray(v)) return { err: 'invalid request body: expected an object' };
    return { v };
  } catch (e) { return { err: e.message }; }
}

function apiShow(conn, req) {
  const p = parseBody(req);
  if (p.err) return sendJson(conn, 400, { error: p.err }, req.keep);
  const name = p.v.model || p.v.name;
  if (!name) return sendJson(conn, 400, { error: 'model is required' }, req.keep);
  if (!modelKnown(name)) return sendJson(conn, 404, { error: `model '${name}' not found` }, req.keep);
  return sendJson(conn, 200, { modelfile: '# dev-llm: canned text, not a model', parameters: '', template: '{{ .Prompt }}',
    details: tagEntry(name).details, model_info: { 'general.architecture': 'llama', 'llama.context_length': 131072 },
    capabilities: ['completion'] }, req.keep);
}

// /api/pull: NDJSON progress over three layers; 'completed' is missing at first; a model
// name containing "missing" fails in band after HTTP 200.
function apiPull(conn, req) {
  const p = parseBody(req);
  if (p.err) return sendJson(conn, 400, { error: p.err }, req.keep);
  const name = p.v.model || p.v.name;
  if (!name) return sendJson(conn, 400, { error: 'model is required' }, req.keep);
  const lines = [{ status: 'pulling manifest' }];
  const fail = name.includes('missing');
  if (fail) lines.push({ error: 'pull model manifest: file does not exist' });
  else {
    const layers = [['sha256:dde5aa3fc5ffc17176b5e8bdc82f587b24b2678c6c66101bf7da77af9f7ccdff', 2019377376],
      ['sha256:966de95ca8a62200913e3f8bfbf84c8494536f1b94b49166851e76644e966396', 1429],
      ['sha256:fcc5a6bec9daf9b561a68827b67ab6088e1dba9d1fa2a50d7bbcc8384e0a265d', 7711]];
    for (const [digest, total] of layers) {
      lines.push({ status: `pulling ${digest.slice(7, 19)}`, digest, total });
      for (let k = 1; k <= 4; k++) lines.push({ status: `pulling ${digest.slice(7, 19)}`, digest, total, completed: Math.floor(total * k / 4) });
    }
    lines.push({ status: 'verifying sha256 digest' }, { status: 'writing manifest' },
      { status: 'removing any unused layers' }, { status: 'success' });
  }
  if (p.v.stream === false) {
    const last = lines[lines.length - 1];
    if (!fail) models.add(name.includes(':') ? name : name + ':latest');
    return sendJson(conn, fail ? 500 : 200, last, req.keep);
  }
  const s = new ChunkedWriter(conn, 200, 'application/x-ndjson', 'normal');
  let k = 0;
  const step = () => {
    if (conn.gone) return;
    if (k >= lines.length) {
      if (!fail) models.add(name.includes(':') ? name : name + ':latest');
      s.end(); finishResponse(conn, false); return;
    }
    s.write(goJson(lines[k++]) + '\n');
    setTimeout(step, opt.pullMs);
  };
  conn.ctx = { clientGone() {} };
  step();
}

// Writes a chunked HTTP response; the status line and headers go out with the first body
// bytes (like Go's net/http when a handler first writes).
class ChunkedWriter {
  constructor(conn, status, ctype, mode) {
    this.conn = conn; this.mode = mode; this.headSent = false; this.splitDelay = 2;
    this.head = `HTTP/1.1 ${status} ${STATUS_TEXT[status]}\r\nContent-Type: ${ctype}\r\n` +
      `Date: ${new Date().toUTCString()}\r\nTransfer-Encoding: chunked\r\n\r\n`;
    this.merged = [];
    this.queue = Promise.resolve();
  }
  raw(buf) {
    const sock = this.conn.sock;
    if (this.conn.gone || sock.destroyed) return false;
    if (!this.headSent) { buf = Buffer.concat([Buffer.from(this.head, 'latin1'), buf]); this.headSent = true; this.headersAt = nowNs(); }
    return sock.write(buf);
  }
  frame(b) { return Buffer.concat([Buffer.from(b.length.toString(16) + '\r\n'), b, Buffer.from('\r\n')]); }
  // mode: normal (one chunk), bytes (one chunk and one write per body byte), merged (held
  // until flush()), split (two chunks, the second a few ms later, cut inside the line).
  write(data, splitAt) {
    this.flushSplit();
    const b = Buffer.isBuffer(data) ? data : Buffer.from(data, 'utf8');
    if (this.mode === 'merged') { this.merged.push(b); return true; }
    if (this.mode === 'bytes') {
      let ok = true;
      for (let i = 0; i < b.length; i++) ok = this.raw(this.frame(b.slice(i, i + 1)));
      return ok;
    }
    if (this.mode === 'split' && b.length > 1) {
      const at = splitAt && splitAt > 0 && splitAt < b.length ? splitAt : b.length >> 1;
      const ok = this.raw(this.frame(b.slice(0, at)));
      this.pendingSplit = b.slice(at);
      return ok;
    }
    return this.raw(this.frame(b));
  }
  // The second half of a split line (called by the generator before its next step).
  flushSplit() {
    if (!this.pendingSplit) return;
    const b = this.pendingSplit; this.pendingSplit = null;
    this.raw(this.frame(b));
  }
  flush() {
    if (this.mode !== 'merged' || !this.merged.length) return;
    const b = Buffer.concat(this.merged); this.merged = [];
    this.raw(this.frame(b));
  }
  end() { this.flushSplit(); this.flush(); this.raw(Buffer.from('0\r\n\r\n')); }
}

// ---------------------------------------------------------------------------------------
// Generation

function findDirective(text) {
  const m = /\[\[dev:(\{.*?\})\]\]/s.exec(text || '');
  if (!m) return null;
  try { return JSON.parse(m[1]); } catch (e) { return { status: 400, message: 'bad dev directive: ' + e.message }; }
}
const stripDirective = (t) => (t || '').replace(/\[\[dev:\{.*?\}\]\]/gs, '');

function planTokens(d, seed, limit) {
  if (Array.isArray(d.tokens)) return d.tokens.slice(0, limit).map(String);
  const rnd = mulberry32(seed);
  const out = [];
  for (let i = 0; i < limit; i++) out.push(CANNED[Math.floor(rnd() * CANNED.length)]);
  return out;
}

function countPromptTokens(s) { return 1 + Math.ceil(Buffer.byteLength(s, 'utf8') / 4); }

function generation(conn, req, api) {
  const id = nextId++;
  const auth = authState(req);
  const p = parseBody(req);
  const fmtErr = (status, msg) => (api === 'openai' ? sendOpenAiError(conn, status, msg, req.keep)
    : sendJson(conn, status, { error: msg }, req.keep));
  const rec = { id, api, path: req.target, auth, tag: null, model: null, status: 0, started_ns: String(nowNs()),
    started_unix_ms: Date.now(), end: null, chunks_sent: 0, content_chunks: 0, tokens_sent: 0, text: '',
    prompt_eval_count: 0, eval_count: 0, done_reason: null, disconnect: null, request: null };
  const keepRecord = () => { records.push(rec); if (records.length > MAX_RECORDS) records.shift(); };
  const fin = () => {
    rec.end_ns = String(nowNs());
    if (logStream) logStream.write(JSON.stringify(rec) + '\n');
    note(`#${id} ${api} ${rec.model} → ${rec.status} ${rec.end} tokens=${rec.tokens_sent}${rec.disconnect ? ' client gone (' + rec.disconnect.how + ')' : ''}`);
  };
  keepRecord();
  if (p.err) { rec.status = 400; rec.end = 'http_error'; fin(); return fmtErr(400, p.err); }
  const b = p.v;
  // What the client sent, minus secrets (there are none in bodies) and minus long texts.
  rec.request = { model: b.model, stream: b.stream, options: b.options, keep_alive: b.keep_alive,
    system: b.system, max_tokens: b.max_tokens, temperature: b.temperature, seed: b.seed, stop: b.stop,
    stream_options: b.stream_options, n_messages: Array.isArray(b.messages) ? b.messages.length : undefined,
    roles: Array.isArray(b.messages) ? b.messages.map((x) => x && x.role) : undefined,
    prompt: typeof b.prompt === 'string' ? stripDirective(b.prompt) : undefined,
    contents: Array.isArray(b.messages) ? b.messages.map((x) => x && stripDirective(x.content)) : undefined };
  rec.model = b.model || null;
  if (api === 'openai' && !authOk(req)) { rec.status = 401; rec.end = 'http_error'; fin(); return fmtErr(401, 'Invalid API Key'); }
  if (!b.model) { rec.status = 400; rec.end = 'http_error'; fin(); return fmtErr(400, 'model is required'); }
  let promptText = '';
  if (api === 'generate') {
    if (b.prompt !== undefined && typeof b.prompt !== 'string') { rec.status = 400; rec.end = 'http_error'; fin(); return fmtErr(400, 'json: cannot unmarshal prompt'); }
    promptText = (b.system || '') + (b.prompt || '');
  } else {
    if (b.messages !== undefined && !Array.isArray(b.messages)) { rec.status = 400; rec.end = 'http_error'; fin(); return fmtErr(400, 'json: cannot unmarshal messages'); }
    if (api === 'openai' && !Array.isArray(b.messages)) { rec.status = 400; rec.end = 'http_error'; fin(); return fmtErr(400, "'messages' is required"); }
    promptText = (b.messages || []).map((x) => (x && typeof x.content === 'string' ? x.content : '')).join('\n');
  }
  const o = b.options || {};
  for (const k of ['num_predict', 'temperature', 'seed', 'top_k', 'top_p', 'num_ctx'])
    if (o[k] !== undefined && typeof o[k] !== 'number') { rec.status = 400; rec.end = 'http_error'; fin(); return fmtErr(400, `option "${k}" must be of type number`); }
  let d = findDirective(promptText);
  if (!d && pendingDirectives.length) d = pendingDirectives.shift();
  d = d || {};
  rec.tag = d.tag || null;
  promptText = stripDirective(promptText);
  if (!modelKnown(b.model)) {
    rec.status = 404; rec.end = 'http_error'; fin();
    return api === 'openai' ? sendJson(conn, 404, { error: { message: `model "${b.model}" not found, try pulling it first`, type: 'not_found_error', param: null, code: null } }, req.keep)
      : fmtErr(404, `model '${b.model}' not found`);
  }
  if (d.status) {
    const msgs = { 400: 'invalid request', 401: 'Invalid API Key', 402: 'Insufficient credits', 404: `model '${b.model}' not found`,
      429: 'rate limited', 500: 'an error was encountered while loading the model', 502: 'upstream unreachable',
      503: 'server busy, please try again.  maximum pending requests exceeded' };
    rec.status = d.status; rec.end = 'http_error'; fin();
    return fmtErr(d.status, d.message || msgs[d.status] || 'error');
  }
  // Load / unload on an empty prompt (Ollama native only).
  const empty = api === 'generate' ? !(b.prompt || '').length : api === 'chat' ? !(b.messages || []).length : false;
  if (empty) {
    const unload = b.keep_alive === 0 || b.keep_alive === '0' || b.keep_alive === '0s';
    if (unload) loaded.delete(b.model); else loaded.add(b.model);
    const obj = { model: b.model, created_at: createdAt() };
    if (api === 'generate') obj.response = ''; else obj.message = { role: 'assistant', content: '' };
    obj.done = true; obj.done_reason = unload ? 'unload' : 'load';
    rec.status = 200; rec.end = obj.done_reason; rec.done_reason = obj.done_reason; fin();
    return sendSimple(conn, 200, b.stream === false ? 'application/json; charset=utf-8' : 'application/x-ndjson',
      goJson(obj) + (b.stream === false ? '' : '\n'), req.keep);
  }
  // Limits and sampling.
  const numPredict = api === 'openai' ? (typeof b.max_tokens === 'number' ? b.max_tokens : (typeof b.max_completion_tokens === 'number' ? b.max_completion_tokens : -1))
    : (typeof o.num_predict === 'number' ? o.num_predict : -1);
  const temperature = api === 'openai' ? b.temperature : o.temperature;
  let seed = api === 'openai' ? b.seed : o.seed;
  if (temperature === 0) seed = 0;
  else if (typeof seed !== 'number' || seed < 0) seed = Math.floor(Math.random() * 2 ** 31);
  const natural = typeof d.n === 'number' ? d.n : opt.tokens;
  const limit = numPredict >= 0 ? Math.min(natural, numPredict) : natural;
  let tokens = planTokens(d, seed, limit);
  let reason = numPredict >= 0 && numPredict < (Array.isArray(d.tokens) ? d.tokens.length : natural) ? 'length' : 'stop';
  const stops = api === 'openai' ? (typeof b.stop === 'string' ? [b.stop] : b.stop) : o.stop;
  if (Array.isArray(stops) && stops.length) {
    let acc = '';
    for (let i = 0; i < tokens.length; i++) {
      const before = acc.length;
      acc += tokens[i];
      let at = -1;
      for (const s of stops) { const k = typeof s === 'string' && s ? acc.indexOf(s) : -1; if (k >= 0 && (at < 0 || k < at)) at = k; }
      if (at >= 0) {
        tokens = tokens.slice(0, i);
        if (at > before) tokens.push(acc.slice(before, at));
        reason = 'stop';
        break;
      }
    }
  }
  if (d.stamp) reason = 'stop';
  // Chunks: occasionally two tokens in one chunk, occasionally an empty chunk.
  const multi = d.multi !== false && !d.stamp, emptyChunks = d.empty !== false && !d.stamp;
  const chunks = [];
  for (let i = 0, k = 0; i < tokens.length; k++) {
    if (emptyChunks && k % 11 === 5) { chunks.push({ text: '', n: 0 }); continue; }
    if (multi && k % 7 === 3 && i + 1 < tokens.length) { chunks.push({ text: tokens[i] + tokens[i + 1], n: 2 }); i += 2; continue; }
    chunks.push({ text: tokens[i], n: 1 }); i++;
  }
  if (typeof d.fault === 'string' && d.fault === 'longline') {
    const at = Math.min(d.after || 0, chunks.length);
    chunks.splice(at, 0, { text: 'x'.repeat(d.bytes || (2 << 20)), n: 1 });
  }
  rec.prompt_eval_count = countPromptTokens(promptText);
  rec.tokens_planned = chunks.reduce((a, c) => a + c.n, 0);
  rec.request.directive = d;
  const streaming = b.stream !== false;
  const ctx = new Gen({ conn, req, api, b, d, rec, chunks, reason, streaming, fin, id });
  conn.ctx = ctx;
  // NUM_PARALLEL semantics: wait for a slot, headers included; 503 when the queue is full.
  if (active >= opt.parallel) {
    if (waiting.length >= opt.maxQueue) {
      conn.ctx = null; rec.status = 503; rec.end = 'http_error'; fin();
      return fmtErr(503, 'server busy, please try again.  maximum pending requests exceeded');
    }
    rec.queued = true;
    waiting.push(ctx);
    return;
  }
  active++;
  ctx.start();
}

function releaseSlot() {
  active--;
  while (waiting.length && active < opt.parallel) {
    const next = waiting.shift();
    if (next.stopped) continue;
    active++;
    next.start();
  }
}

class Gen {
  constructor(a) {
    Object.assign(this, a);
    this.i = 0; this.timer = null; this.stopped = false; this.holdsSlot = false;
    this.tokensSent = 0; this.evalStart = null;
    this.created = Math.floor(Date.now() / 1000);
    this.cid = 'chatcmpl-dev' + this.id;
    this.mode = this.d.write || 'normal';
    this.crlf = !!this.d.crlf;
    this.firstTokenMs = typeof this.d.first_token_ms === 'number' ? this.d.first_token_ms : opt.firstTokenMs;
    this.tokenMs = typeof this.d.token_ms === 'number' ? this.d.token_ms : opt.tokenMs;
    this.jitterMs = typeof this.d.jitter_ms === 'number' ? this.d.jitter_ms : opt.jitterMs;
    this.rnd = mulberry32(this.id * 7919);
  }
  start() {
    this.holdsSlot = true;
    if (this.conn.gone) { this.clientGone('before-start'); return; }
    this.t0 = nowNs();
    this.rec.status = 200;
    this.w = new ChunkedWriter(this.conn, 200, this.api === 'openai' ? 'text/event-stream' : 'application/x-ndjson',
      this.streaming ? this.mode : 'normal');
    if (this.api === 'openai' && this.d.comments && this.streaming) this.commentTimer = setInterval(() => this.comment(), 100);
    this.timer = setTimeout(() => this.loaded(), this.firstTokenMs);
  }
  comment() { this.w.raw(this.w.frame(Buffer.from(': OPENROUTER PROCESSING' + (this.crlf ? '\r\n\r\n' : '\n\n')))); }
  loaded() {
    if (this.commentTimer) { clearInterval(this.commentTimer); this.commentTimer = null; }
    this.t1 = nowNs();
    loaded.add(this.b.model);
    if (!this.streaming) return this.whole();
    // fault at after:-1: before any byte (no status line, no headers).
    if ((this.d.fault === 'rst' || this.d.fault === 'fin') && this.d.after === -1) {
      this.rec.text_at_fault = '';
      return this.abort(this.d.fault, () => (this.d.fault === 'rst' ? this.conn.sock.resetAndDestroy() : this.conn.sock.end()));
    }
    if (this.api === 'openai') this.emitRole();
    this.step();
  }
  delay() {
    const j = this.jitterMs ? Math.floor(this.rnd() * (2 * this.jitterMs + 1)) - this.jitterMs : 0;
    return Math.max(0, this.tokenMs + j);
  }
  schedule(fn, ms) {
    if (this.stopped) return;
    if (ms <= 0) this.timer = setImmediate(fn); else this.timer = setTimeout(fn, ms);
  }
  clearTimer() {
    if (this.timer) { clearTimeout(this.timer); clearImmediate(this.timer); this.timer = null; }
    if (this.commentTimer) { clearInterval(this.commentTimer); this.commentTimer = null; }
  }
  sse(obj) {
    const nl = this.crlf ? '\r\n' : '\n';
    let json = goJson(obj);
    const pre = this.d.nospace ? 'data:' : 'data: ';
    if (this.d.multiline) {
      const cut = json.indexOf(',"object"');
      if (cut > 0) json = json.slice(0, cut + 1) + nl + pre + json.slice(cut + 1);
    }
    return pre + json + nl + nl;
  }
  chunkObj(delta, finish) {
    return { id: this.cid, object: 'chat.completion.chunk', created: this.created, model: this.b.model,
      system_fingerprint: 'fp_dev_llm', choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] };
  }
  emitRole() {
    if (this.d.role_style === 'content') return; // Ollama /v1: the role rides on the first content chunk
    this.w.write(this.sse(this.chunkObj({ role: 'assistant', content: null }, null)));
  }
  line(text) {
    const base = { model: this.b.model, created_at: createdAt() };
    if (this.api === 'generate') return goJson({ ...base, response: text, done: false }) + '\n';
    if (this.api === 'chat') return goJson({ ...base, message: { role: 'assistant', content: text }, done: false }) + '\n';
    const delta = this.d.role_style === 'content' && this.i === 0 ? { role: 'assistant', content: text } : { content: text };
    return this.sse(this.chunkObj(delta, null));
  }
  // Encodes a line whose text may be split inside a multibyte character: raw UTF-8 bytes
  // inside the JSON string, as a backend without hold-back would send them.
  lineBytes(textBuf) {
    const marker = '\u0000SPLIT\u0000';
    const s = this.line(marker);
    const k = s.indexOf('\\u0000SPLIT\\u0000');
    const pre = Buffer.from(s.slice(0, k)), post = Buffer.from(s.slice(k + '\\u0000SPLIT\\u0000'.length));
    // JSON-escape the ASCII specials byte by byte; bytes >= 0x80 stay raw (possibly a part
    // of a character).
    const out = [];
    for (const c of textBuf) {
      if (c === 0x22) out.push(0x5c, 0x22);
      else if (c === 0x5c) out.push(0x5c, 0x5c);
      else if (c < 0x20) out.push(...Buffer.from('\\u' + c.toString(16).padStart(4, '0')));
      else out.push(c);
    }
    return Buffer.concat([pre, Buffer.from(out), post]);
  }
  fault(kind) {
    const d = this.d;
    const hit = d.fault === kind && this.i === (d.after || 0);
    if (hit && this.rec.text_at_fault === undefined) this.rec.text_at_fault = this.rec.text;
    return hit;
  }
  step() {
    if (this.stopped) return;
    this.w.flushSplit();
    const d = this.d;
    if (this.fault('stall') && !this.stalled) {
      this.stalled = true;
      this.w.flush();
      this.schedule(() => this.step(), d.stall_ms || 60000);
      return;
    }
    if (this.fault('error')) return this.midError();
    if (this.fault('fin')) { this.w.flush(); return this.abort('fin', () => this.conn.sock.end()); }
    if (this.fault('rst')) { this.w.flush(); return this.abort('rst', () => this.conn.sock.resetAndDestroy()); }
    if (this.fault('eof')) {
      // Clean end of the HTTP body with no final line (Ollama /v1 after a runner error).
      if (this.api === 'openai') this.w.write(this.sse(this.chunkObj({ content: '' }, null)));
      this.w.end();
      return this.finishStream('eof', false);
    }
    if (this.fault('malformed') && !this.malformedSent) {
      this.malformedSent = true;
      const bad = this.api === 'openai' ? 'data: {"id":"' + this.cid + '","choices":[{"delta":{"content":"oops"' + (this.crlf ? '\r\n\r\n' : '\n\n')
        : '{"model":"' + this.b.model + '","response":"oops","done":fal\n';
      this.w.write(bad);
    }
    if (this.i >= this.chunks.length) return this.final();
    const c = this.chunks[this.i];
    let text = c.text;
    if (d.stamp) text = String(nowNs()) + ' ';
    let buf;
    if (d.split_utf8 && this.api !== 'none') {
      // Emit the chunk in two lines cut inside its first multibyte character, if any.
      const tb = Buffer.from(text, 'utf8');
      let cut = -1;
      for (let j = 1; j < tb.length; j++) if ((tb[j] & 0xC0) === 0x80) { cut = j; break; }
      if (cut > 0) {
        this.w.write(this.lineBytes(tb.slice(0, cut)));
        buf = this.lineBytes(tb.slice(cut));
      }
    }
    if (!buf) buf = Buffer.from(this.line(text), 'utf8');
    // split mode: cut inside the JSON string (and inside a multibyte character when there is one).
    let splitAt = 0;
    if (this.mode === 'split') {
      const q = buf.indexOf(Buffer.from(this.api === 'openai' ? '"content":"' : this.api === 'chat' ? '"content":"' : '"response":"'));
      splitAt = q >= 0 ? q + 12 : 0;
      for (let j = splitAt; j < buf.length && j < splitAt + 8; j++) if ((buf[j] & 0xC0) === 0x80) { splitAt = j; break; }
    }
    this.w.write(buf, splitAt);
    if (this.evalStart === null) this.evalStart = nowNs();
    this.rec.chunks_sent++;
    if (text.length) this.rec.content_chunks++;
    this.tokensSent += c.n;
    this.rec.tokens_sent = this.tokensSent;
    this.rec.text += text;
    this.i++;
    if (this.api === 'openai' && d.comments && this.i % 5 === 0) this.comment();
    if (this.mode === 'merged' && this.i % 8 === 0) this.w.flush();
    this.schedule(() => this.step(), this.delay());
  }
  stats() {
    const end = nowNs();
    const load = this.t1 - this.t0;
    const loadD = (load * 8n) / 10n, promptD = load - loadD;
    const evalD = this.evalStart === null ? 0n : end - this.evalStart;
    const total = end - this.t0 + 1000n;
    return { total_duration: Number(total), load_duration: Number(loadD), prompt_eval_count: this.rec.prompt_eval_count,
      prompt_eval_duration: Number(promptD), eval_count: this.tokensSent, eval_duration: Number(evalD) };
  }
  final() {
    const reason = this.reason;
    const st = this.stats();
    if (this.api === 'openai') {
      this.w.write(this.sse(this.chunkObj({}, reason)));
      const so = this.b.stream_options;
      if (so && so.include_usage) {
        this.w.write(this.sse({ id: this.cid, object: 'chat.completion.chunk', created: this.created, model: this.b.model,
          system_fingerprint: 'fp_dev_llm', choices: [],
          usage: { prompt_tokens: st.prompt_eval_count, completion_tokens: st.eval_count, total_tokens: st.prompt_eval_count + st.eval_count } }));
      }
      this.w.write('data: [DONE]' + (this.crlf ? '\r\n\r\n' : '\n\n'));
    } else {
      const base = { model: this.b.model, created_at: createdAt() };
      const obj = this.api === 'generate' ? { ...base, response: '', done: true, done_reason: reason, context: [1, 2, 3] }
        : { ...base, message: { role: 'assistant', content: '' }, done: true, done_reason: reason };
      this.w.write(goJson({ ...obj, ...st }) + '\n');
    }
    this.w.end();
    this.rec.eval_count = st.eval_count;
    this.rec.done_reason = reason;
    this.finishStream(reason === 'length' ? 'length' : 'done', true);
  }
  midError() {
    const msg = 'an error was encountered while running the model';
    if (this.api === 'openai') {
      const ev = this.d.error_style === 'llama' ? { error: { code: 500, message: msg, type: 'server_error' } }
        : { id: this.cid, object: 'chat.completion.chunk', created: this.created, model: this.b.model,
          error: { code: 502, message: msg }, choices: [{ index: 0, delta: { content: '' }, finish_reason: 'error' }] };
      this.w.write(this.sse(ev));
    } else this.w.write(goJson({ error: msg }) + '\n');
    this.w.end();
    this.finishStream('error', false);
  }
  finishStream(end, keep) {
    this.stopped = true;
    this.clearTimer();
    this.rec.end = end;
    this.fin();
    if (this.holdsSlot) { this.holdsSlot = false; releaseSlot(); }
    finishResponse(this.conn, keep && this.req.keep);
  }
  abort(end, how) {
    this.stopped = true;
    this.clearTimer();
    this.rec.end = end;
    how();
    this.conn.ctx = null;
    this.fin();
    if (this.holdsSlot) { this.holdsSlot = false; releaseSlot(); }
  }
  whole() {
    const text = this.chunks.map((c) => c.text).join('');
    this.tokensSent = this.chunks.reduce((a, c) => a + c.n, 0);
    this.evalStart = this.t1;
    const st = this.stats();
    let obj;
    if (this.api === 'openai') {
      obj = { id: this.cid, object: 'chat.completion', created: this.created, model: this.b.model, system_fingerprint: 'fp_dev_llm',
        choices: [{ index: 0, message: { role: 'assistant', content: text }, logprobs: null, finish_reason: this.reason }],
        usage: { prompt_tokens: st.prompt_eval_count, completion_tokens: st.eval_count, total_tokens: st.prompt_eval_count + st.eval_count } };
    } else {
      const base = { model: this.b.model, created_at: createdAt() };
      obj = this.api === 'generate' ? { ...base, response: text, done: true, done_reason: this.reason, context: [1, 2, 3], ...st }
        : { ...base, message: { role: 'assistant', content: text }, done: true, done_reason: this.reason, ...st };
    }
    this.rec.text = text; this.rec.tokens_sent = this.tokensSent; this.rec.eval_count = st.eval_count;
    this.rec.done_reason = this.reason; this.rec.end = this.reason === 'length' ? 'length' : 'done';
    this.stopped = true;
    this.fin();
    this.holdsSlot = false; releaseSlot();
    sendJson(this.conn, 200, obj, this.req.keep);
  }
  // The client closed the connection (FIN seen, write failed, or reset): stop generating.
  clientGone(how) {
    if (this.stopped) return;
    const at = nowNs();
    this.stopped = true;
    this.clearTimer();
    const idx = waiting.indexOf(this);
    if (idx >= 0) waiting.splice(idx, 1);
    this.rec.disconnect = { how, at_ns: String(at), at_unix_ms: Date.now(), canceled_at_token: this.tokensSent,
      canceled_at_chunk: this.i, tokens_unsent: this.chunks.slice(this.i).reduce((a, c) => a + c.n, 0),
      headers_sent: !!(this.w && this.w.headSent), gen_stopped_ns: String(nowNs()),
      notice_us: Number(nowNs() - at) / 1000 };
    this.rec.end = 'disconnect';
    this.fin();
    if (this.holdsSlot) { this.holdsSlot = false; releaseSlot(); }
  }
}

// ---------------------------------------------------------------------------------------
server.on('error', (e) => { console.error(`dev-llm: ${e.message}`); process.exit(1); });
server.listen({ host: '127.0.0.1', port: opt.port, backlog: 511 }, () => {
  const port = server.address().port;
  // The first stdout line is parsed by tests: keep "http://127.0.0.1:<port>" in it.
  process.stdout.write(`dev-llm: canned text, not a model; listening on http://127.0.0.1:${port}\n`);
  note(`models: ${[...models].join(', ')}; ${opt.tokens} tokens per answer, first token after ${opt.firstTokenMs} ms, ` +
    `then every ${opt.tokenMs}±${opt.jitterMs} ms; parallel ${opt.parallel}${opt.apiKey ? '; API key required on /v1' : ''}`);
});
const stop = () => { server.close(); if (logStream) logStream.end(); process.exit(0); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
