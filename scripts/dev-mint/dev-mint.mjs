#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// Development Cashu mint for tests and the demo, on top of @cashu/cashu-ts's mint-side
// primitives (createNewMintKeys, createBlindSignature, createDLEQProof, hashToCurve,
// verifyUnblindedSignature, verifyP2PKSpendingConditions, deriveKeysetId). NOT a production
// mint: fake Lightning, one process, state in one JSON file.
//
// NUTs: 00 01 02 03 04 05 06 07 09 10 11 12 (SIG_INPUTS only; SIG_ALL is refused with 11000).
// Listens on 127.0.0.1 only. Prints "dev-mint ready <url>" on stdout when ready.
//
// Options (or env DEV_MINT_*):
//   --port N            (0 = ephemeral; default 0)
//   --state-dir DIR     spent set, signatures (B_ -> C_ for NUT-09), quotes, key seed
//   --fee-ppk N         input_fee_ppk of the active keyset (default 0)
//   --max-inputs N      max inputs (and outputs) per request (default 1000): 11014 / 11015
//   --pay-delay-ms N    mint quotes become PAID this long after creation (default 0 = at once)
//   --keyset-version 1|2 (default 2)
//   --url-file PATH     also write the URL there when ready
// Fault switches (tests): POST /dev/fault {"mode":"none"|"500"|"hang"|"close_after_apply",
//   "path":"/v1/swap" (prefix; default any /v1/ POST), "count":N (default 1)}; GET /dev/state;
//   GET /dev/invoice?amount=N returns a foreign bolt11-looking invoice for melt tests.
//   Env DEV_MINT_FAULT="mode:path:count" sets one at start.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const ctsPath = path.resolve(here, '../../tests/interop/node_modules/@cashu/cashu-ts/lib/cashu-ts.es.js');
const cts = await import(pathToFileURL(ctsPath).href);
const {
  createNewMintKeys, createBlindSignature, createDLEQProof, hashToCurve, pointFromHex,
  verifyUnblindedSignature, verifyP2PKSpendingConditions, deriveKeysetId,
} = cts;

function opt(name, def) {
  const i = process.argv.indexOf('--' + name);
  if (i >= 0 && i + 1 < process.argv.length) return process.argv[i + 1];
  const e = process.env['DEV_MINT_' + name.toUpperCase().replace(/-/g, '_')];
  return e !== undefined && e !== '' ? e : def;
}
function intOpt(name, def) {
  const v = opt(name, String(def));
  if (!/^\d+$/.test(v)) { console.error(`dev-mint: --${name} must be a whole number`); process.exit(2); }
  return Number(v);
}

const port = intOpt('port', 0);
const stateDir = opt('state-dir', fs.mkdtempSync(path.join(process.env.TMPDIR || '/tmp', 'dev-mint-')));
const feePpk = intOpt('fee-ppk', 0);
const maxInputs = intOpt('max-inputs', 1000);
const payDelayMs = intOpt('pay-delay-ms', 0);
const keysetVersion = intOpt('keyset-version', 2);
const urlFile = opt('url-file', '');
fs.mkdirSync(stateDir, { recursive: true });
const stateFile = path.join(stateDir, 'mint-state.json');

const hex = (u8) => Buffer.from(u8).toString('hex');
const unhex = (s) => new Uint8Array(Buffer.from(s, 'hex'));
const te = new TextEncoder();

// ---- persistent state ----
let st = {
  seed: null, feePpk, spent: {}, sigs: {}, mintQuotes: {}, meltQuotes: {}, keysets: [],
};
if (fs.existsSync(stateFile)) st = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
function save() {
  const tmp = stateFile + '.tmp';
  const fd = fs.openSync(tmp, 'w', 0o600);
  fs.writeSync(fd, JSON.stringify(st));
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  fs.renameSync(tmp, stateFile);
  const dfd = fs.openSync(stateDir, 'r');
  fs.fsyncSync(dfd);
  fs.closeSync(dfd);
}
if (!st.seed) st.seed = hex(crypto.randomBytes(32));

// Keysets: one per (fee, version) ever used with this state dir; the current one is active.
function makeKeyset(fee, version) {
  const seed = crypto.createHash('sha256').update(`${st.seed}:${fee}:${version}`).digest();
  const kp = createNewMintKeys(10, new Uint8Array(seed), { input_fee_ppk: fee, unit: 'sat', versionByte: version === 1 ? 0 : 1 });
  const pub = {}, priv = {};
  for (const [a, k] of Object.entries(kp.pubKeys)) pub[a] = typeof k === 'string' ? k : hex(k);
  for (const [a, k] of Object.entries(kp.privKeys)) priv[a] = typeof k === 'string' ? k : hex(k);
  const id = version === 1 ? deriveKeysetId(pub, { versionByte: 0 })
    : deriveKeysetId(pub, { versionByte: 1, unit: 'sat', input_fee_ppk: fee });
  return { id, fee, version, pub, priv };
}
const keysets = [];
const wanted = new Set([...(st.keysets || []), `${feePpk}:${keysetVersion}`]);
for (const k of wanted) {
  const [f, v] = k.split(':').map(Number);
  keysets.push(makeKeyset(f, v));
}
st.keysets = [...wanted];
const active = keysets.find((k) => k.fee === feePpk && k.version === keysetVersion);
const byId = new Map(keysets.map((k) => [k.id, k]));
save();

// ---- faults ----
let fault = { mode: 'none', path: '', count: 0 };
if (process.env.DEV_MINT_FAULT) {
  const [mode, p, c] = process.env.DEV_MINT_FAULT.split(':');
  fault = { mode, path: p || '', count: Number(c || 1) };
}
function takeFault(p) {
  if (fault.mode === 'none' || fault.count <= 0) return null;
  if (fault.path ? !p.startsWith(fault.path) : !p.startsWith('/v1/')) return null;
  fault.count--;
  const m = fault.mode;
  if (fault.count <= 0) fault = { mode: 'none', path: '', count: 0 };
  return m;
}

// ---- errors and checks ----
class MintErr extends Error { constructor(code, detail) { super(detail); this.code = code; } }
const err = (code, detail) => { throw new MintErr(code, detail); };

function amountOf(x) {
  if (typeof x === 'number' && Number.isSafeInteger(x) && x > 0) return BigInt(x);
  if (typeof x === 'string' && /^[1-9]\d*$/.test(x)) return BigInt(x);
  err(0, 'invalid amount');
}
function yOf(secret) { return hashToCurve(te.encode(secret)).toHex(true); }
function keyFor(ks, amount) {
  const k = ks.priv[amount.toString()];
  if (!k) err(11006, 'amount out of range');
  return k;
}

function checkInputs(inputs) {
  if (!Array.isArray(inputs) || inputs.length === 0) err(0, 'no inputs provided.');
  if (inputs.length > maxInputs) err(11014, `max inputs exceeded (${maxInputs})`);
  const ys = [];
  let sum = 0n, ppk = 0n;
  for (const p of inputs) {
    if (!p || typeof p.secret !== 'string' || typeof p.C !== 'string' || typeof p.id !== 'string') err(0, 'invalid proof');
    if (p.secret.length > 1024) err(0, 'secret too long');
    if (p.witness && p.witness.length > 4096) err(0, 'witness too long');
    const ks = byId.get(p.id);
    if (!ks) err(12001, 'unknown keyset');
    const amount = amountOf(p.amount);
    const k = keyFor(ks, amount);
    let ok = false;
    try {
      ok = verifyUnblindedSignature({ C: pointFromHex(p.C), secret: te.encode(p.secret), id: p.id }, unhex(k));
    } catch { ok = false; }
    if (!ok) err(10001, 'proof verification failed');
    if (p.secret.startsWith('[')) {
      let parsed = null;
      try { parsed = JSON.parse(p.secret); } catch { parsed = null; }
      if (Array.isArray(parsed) && parsed[0] === 'P2PK') {
        const tags = (parsed[1] && parsed[1].tags) || [];
        if (tags.some((t) => t[0] === 'sigflag' && t[1] === 'SIG_ALL')) err(11000, 'SIG_ALL not supported by the dev mint');
        let res;
        try { res = verifyP2PKSpendingConditions({ ...p, amount: Number(amount) }); } catch (e) { res = { success: false }; }
        if (!res.success) err(11000, p.witness ? 'signature verification failed' : 'no signatures in proof.');
      } else if (Array.isArray(parsed) && typeof parsed[0] === 'string') {
        err(10000, `spending condition ${parsed[0]} not supported`);
      }
    }
    const y = yOf(p.secret);
    if (ys.includes(y)) err(11007, 'duplicate inputs');
    ys.push(y);
    sum += amount;
    ppk += BigInt(ks.fee);
  }
  for (const y of ys) if (st.spent[y]) err(11001, 'proofs already spent');
  return { ys, sum, fee: (ppk + 999n) / 1000n };
}

function checkOutputs(outputs, allowEmpty) {
  if (!Array.isArray(outputs) || (outputs.length === 0 && !allowEmpty)) err(0, 'no outputs provided.');
  if (outputs.length > maxInputs) err(11015, `max outputs exceeded (${maxInputs})`);
  const seen = new Set();
  let sum = 0n;
  for (const o of outputs) {
    if (!o || typeof o.B_ !== 'string' || typeof o.id !== 'string') err(0, 'invalid output');
    const ks = byId.get(o.id);
    if (!ks) err(12001, 'unknown keyset');
    if (ks !== active) err(12002, 'inactive keyset');
    const amount = amountOf(o.amount);
    keyFor(ks, amount);
    try { pointFromHex(o.B_); } catch { err(0, 'invalid B_'); }
    if (seen.has(o.B_)) err(11008, 'duplicate outputs');
    seen.add(o.B_);
    if (st.sigs[o.B_]) err(11003, 'outputs have already been signed before.');
    sum += amount;
  }
  return sum;
}

function sign(outputs) {
  return outputs.map((o) => {
    const ks = byId.get(o.id);
    const amount = amountOf(o.amount);
    const k = unhex(keyFor(ks, amount));
    const B = pointFromHex(o.B_);
    const bs = createBlindSignature(B, k, ks.id);
    const d = createDLEQProof(B, k);
    const sig = { amount: Number(amount), id: ks.id, C_: bs.C_.toHex(true), dleq: { e: hex(d.e), s: hex(d.s) } };
    st.sigs[o.B_] = sig;
    return sig;
  });
}

function newId() { return crypto.randomBytes(16).toString('base64url'); }
function fakeInvoice(amountSat, tag) {
  // Looks like bolt11 (hrp lnbc<amount*10>n) so wallets can read the amount; not payable anywhere.
  // The data part uses only bech32 characters (no '1'), so the hrp ends where wallets expect.
  const cs = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
  const rnd = [...crypto.randomBytes(40)].map((b) => cs[b & 31]).join('');
  return `lnbc${amountSat * 10}n1p${tag === 'm' ? 'q' : 'f'}${rnd}`;
}
function invoiceAmount(req) {
  const m = /^lnbc(\d+)([munp]?)1/.exec(req || '');
  if (!m) err(0, 'invalid bolt11 request');
  const n = BigInt(m[1]);
  const msat = { '': n * 100000000000n, m: n * 100000000n, u: n * 100000n, n: n * 100n, p: n / 10n }[m[2]];
  if (msat % 1000n !== 0n || msat === 0n) err(11011, 'amountless or sub-sat invoice unsupported');
  return msat / 1000n;
}
function mintQuoteView(q) {
  if (q.state === 'UNPAID' && Date.now() >= q.paidAt) { q.state = 'PAID'; save(); }
  return { quote: q.quote, request: q.request, amount: q.amount, unit: 'sat', state: q.state, expiry: q.expiry };
}

// ---- handlers ----
const routes = {
  'GET /v1/info': () => ({
    name: 'swarmdvm dev mint', pubkey: active.pub['1'], version: 'swarmdvm-dev-mint/0.1',
    description: 'development mint: fake Lightning, not for real funds',
    nuts: {
      4: { methods: [{ method: 'bolt11', unit: 'sat' }], disabled: false },
      5: { methods: [{ method: 'bolt11', unit: 'sat' }], disabled: false },
      7: { supported: true }, 8: { supported: false }, 9: { supported: true },
      10: { supported: true }, 11: { supported: true }, 12: { supported: true },
    },
  }),
  'GET /v1/keysets': () => ({
    keysets: keysets.map((k) => ({ id: k.id, unit: 'sat', active: k === active, input_fee_ppk: k.fee })),
  }),
  'GET /v1/keys': () => ({ keysets: [active].map(keysView) }),
  'POST /v1/mint/quote/bolt11': (b) => {
    const amount = Number(amountOf(b.amount));
    if (b.unit && b.unit !== 'sat') err(11013, 'unit unsupported');
    const q = { quote: newId(), request: fakeInvoice(amount, 'm'), amount, state: 'UNPAID',
      expiry: Math.floor(Date.now() / 1000) + 3600, paidAt: Date.now() + payDelayMs };
    st.mintQuotes[q.quote] = q;
    save();
    return mintQuoteView(q);
  },
  'POST /v1/mint/bolt11': (b) => {
    const q = st.mintQuotes[b.quote];
    if (!q) err(20007, 'quote not found');
    mintQuoteView(q);
    if (q.state === 'ISSUED') err(20002, 'quote already issued');
    if (q.state !== 'PAID') err(20001, 'quote not paid');
    const sum = checkOutputs(b.outputs, false);
    if (sum !== BigInt(q.amount)) err(11005, `outputs (${sum}) do not match quote amount (${q.amount})`);
    const signatures = sign(b.outputs);
    q.state = 'ISSUED';
    save();
    return { signatures };
  },
  'POST /v1/swap': (b) => {
    const ins = checkInputs(b.inputs);
    const outSum = checkOutputs(b.outputs, false);
    if (ins.sum - ins.fee !== outSum) err(11005, `transaction not balanced: inputs ${ins.sum}, fee ${ins.fee}, outputs ${outSum}`);
    ins.ys.forEach((y, i) => { st.spent[y] = { at: Date.now(), amount: Number(amountOf(b.inputs[i].amount)) }; });
    const signatures = sign(b.outputs);
    st.swaps = (st.swaps || 0) + 1;
    save();
    return { signatures };
  },
  'POST /v1/melt/quote/bolt11': (b) => {
    if (b.unit && b.unit !== 'sat') err(11013, 'unit unsupported');
    const amount = Number(invoiceAmount(b.request));
    const q = { quote: newId(), request: b.request, amount, fee_reserve: 0, state: 'UNPAID',
      expiry: Math.floor(Date.now() / 1000) + 3600 };
    st.meltQuotes[q.quote] = q;
    save();
    return { ...q, unit: 'sat' };
  },
  'POST /v1/melt/bolt11': (b) => {
    const q = st.meltQuotes[b.quote];
    if (!q) err(20007, 'quote not found');
    if (q.state === 'PAID') err(20006, 'invoice already paid');
    const ins = checkInputs(b.inputs);
    const need = BigInt(q.amount + q.fee_reserve) + ins.fee;
    if (ins.sum < need) err(11005, `inputs ${ins.sum} < amount + fee_reserve + fee ${need}`);
    ins.ys.forEach((y, i) => { st.spent[y] = { at: Date.now(), amount: Number(amountOf(b.inputs[i].amount)) }; });
    q.state = 'PAID';
    q.payment_preimage = hex(crypto.randomBytes(32));
    q.paid_sats = Number(ins.sum - ins.fee);
    save();
    return { ...q, unit: 'sat', change: [] };
  },
  'POST /v1/checkstate': (b) => {
    if (!Array.isArray(b.Ys)) err(0, 'Ys required');
    if (b.Ys.length > maxInputs) err(11014, 'too many Ys');
    return { states: b.Ys.map((Y) => ({ Y, state: st.spent[Y] ? 'SPENT' : 'UNSPENT', witness: null })) };
  },
  'POST /v1/restore': (b) => {
    if (!Array.isArray(b.outputs)) err(0, 'outputs required');
    if (b.outputs.length > maxInputs) err(11015, 'too many outputs');
    const outputs = [], signatures = [];
    for (const o of b.outputs) {
      const s = o && st.sigs[o.B_];
      if (s) { outputs.push(o); signatures.push(s); }
    }
    return { outputs, signatures };
  },
  'POST /dev/fault': (b) => {
    fault = { mode: String(b.mode || 'none'), path: String(b.path || ''), count: Number(b.count || 1) };
    return { ok: true, fault };
  },
  'GET /dev/state': () => ({
    spent: Object.keys(st.spent).length, signatures: Object.keys(st.sigs).length, swaps: st.swaps || 0,
    issued_sats: Object.values(st.sigs).reduce((a, s) => a + s.amount, 0),
    spent_sats: Object.values(st.spent).reduce((a, s) => a + (s.amount || 0), 0),
    outstanding_sats: Object.values(st.sigs).reduce((a, s) => a + s.amount, 0)
      - Object.values(st.spent).reduce((a, s) => a + (s.amount || 0), 0),
    melted_sats: Object.values(st.meltQuotes).reduce((a, q) => a + (q.state === 'PAID' ? q.amount : 0), 0),
    minted_sats: Object.values(st.mintQuotes).reduce((a, q) => a + (q.state === 'ISSUED' ? q.amount : 0), 0),
    active_keyset: active.id, fee_ppk: active.fee, requests,
  }),
};
function keysView(k) {
  return { id: k.id, unit: 'sat', active: k === active, input_fee_ppk: k.fee, keys: k.pub };
}

const requests = {}; // per "METHOD /path" since start (GET /dev/state shows them)
const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  let body = '';
  let tooBig = false;
  req.on('data', (c) => { body += c; if (body.length > 4 * 1024 * 1024) { tooBig = true; req.destroy(); } });
  req.on('end', () => {
    if (tooBig) return;
    const send = (code, obj) => {
      const s = JSON.stringify(obj);
      res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(s) });
      res.end(s);
    };
    let key = `${req.method} ${url.pathname}`;
    let handler = routes[key];
    let arg = null;
    const m1 = /^\/v1\/keys\/([0-9a-f]+)$/.exec(url.pathname);
    const m2 = /^\/v1\/(mint|melt)\/quote\/bolt11\/([A-Za-z0-9_-]+)$/.exec(url.pathname);
    if (req.method === 'GET' && m1) handler = () => {
      const k = byId.get(m1[1]);
      if (!k) err(12001, 'unknown keyset');
      return { keysets: [keysView(k)] };
    };
    else if (req.method === 'GET' && m2) handler = () => {
      const q = (m2[1] === 'mint' ? st.mintQuotes : st.meltQuotes)[m2[2]];
      if (!q) err(20007, 'quote not found');
      return m2[1] === 'mint' ? mintQuoteView(q) : { ...q, unit: 'sat' };
    };
    else if (req.method === 'GET' && url.pathname === '/dev/invoice') handler = () => {
      const a = Number(url.searchParams.get('amount') || '0');
      if (!Number.isSafeInteger(a) || a <= 0) err(0, 'amount required');
      return { request: fakeInvoice(a, 'f') };
    };
    if (!handler) return send(404, { detail: 'not found', code: 0 });
    requests[key] = (requests[key] || 0) + 1;
    const f = req.method === 'POST' || url.pathname.startsWith('/v1/') ? takeFault(url.pathname) : null;
    if (f === '500') return send(500, { detail: 'injected fault', code: 0 });
    if (f === 'hang') return; // never answer
    try {
      if (req.method === 'POST') {
        try { arg = JSON.parse(body || '{}'); } catch { return send(400, { detail: 'invalid JSON', code: 0 }); }
      }
      const out = handler(arg || {});
      if (f === 'close_after_apply') { req.socket.destroy(); return; }
      send(200, out);
    } catch (e) {
      if (e instanceof MintErr) send(400, { detail: e.message, code: e.code });
      else { console.error('dev-mint: internal error', e); send(500, { detail: 'internal error', code: 0 }); }
    }
  });
});
server.listen(port, '127.0.0.1', () => {
  const url = `http://127.0.0.1:${server.address().port}`;
  if (urlFile) fs.writeFileSync(urlFile, url + '\n');
  console.log(`dev-mint ready ${url} keyset=${active.id} fee_ppk=${active.fee} state=${stateDir}`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
