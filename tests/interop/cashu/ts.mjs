#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// cashu-ts as the independent reference wallet/decoder for scripts/interop/cashu.sh.
// Usage: node ts.mjs CMD MINT_URL [args...]; prints one JSON object on stdout.
//   mint AMOUNT                         -> {token}  (cashuB from a fresh mint; DLEQ kept)
//   mint-v3 AMOUNT                      -> {token}  (cashuA)
//   mint-locked AMOUNT PUBKEY [LOCKTIME REFUNDKEY] -> {token} locked P2PK proofs with DLEQ
//   decode TOKEN [LOCKPUBKEY]           -> {amount, n, mint, unit, dleq_all, locked_to_all}
//   receive TOKEN [PRIVKEY]             -> {amount}  (swap at the mint)
//   verify-bench TOKEN_FILE LOCKPUBKEY  -> {n, seconds, per_sec} offline decode+DLEQ+P2PK checks
import fs from 'node:fs';
import { Wallet, getDecodedToken, getEncodedToken, hasValidDleq, parseP2PKSecret, sumProofs }
  from '@cashu/cashu-ts';

const [cmd, mintUrl, ...args] = process.argv.slice(2);
const out = (o) => { process.stdout.write(JSON.stringify(o) + '\n'); };

async function wallet() {
  const w = new Wallet(mintUrl, { unit: 'sat' });
  await w.loadMint();
  return w;
}
async function mintProofs(w, amount) {
  const q = await w.createMintQuoteBolt11(amount);
  for (let i = 0; i < 100; i++) {
    const s = await w.checkMintQuoteBolt11(q.quote);
    if (s.state === 'PAID') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return w.mintProofsBolt11(amount, q.quote);
}
function keysetIds(w) {
  return w.keyChain ? w.keyChain.getKeysets().map((k) => k.id) : [];
}

try {
  if (cmd === 'mint' || cmd === 'mint-v3') {
    const w = await wallet();
    const proofs = await mintProofs(w, Number(args[0]));
    const token = { mint: mintUrl, proofs, unit: 'sat' };
    let s = getEncodedToken(token);
    if (cmd === 'mint-v3') {
      // cashu-ts 4.8 only writes v4; build a v3 JSON token by hand (full ids, plain numbers).
      const v3 = { token: [{ mint: mintUrl, proofs: proofs.map((p) => ({
        amount: Number(p.amount), id: p.id, secret: p.secret, C: p.C,
        ...(p.dleq ? { dleq: { e: p.dleq.e, s: p.dleq.s, r: p.dleq.r } } : {}) })) }], unit: 'sat' };
      s = 'cashuA' + Buffer.from(JSON.stringify(v3)).toString('base64url');
    }
    out({ token: s, amount: Number(sumProofs(proofs)) });
  } else if (cmd === 'mint-locked') {
    const w = await wallet();
    const [amount, pubkey, locktime, refund] = args;
    const proofs = await mintProofs(w, Number(amount) + 8);
    const options = { pubkey };
    if (locktime) options.locktime = Number(locktime);
    if (refund) options.refundKeys = [refund];
    const fee = Number(w.getFeesForProofs(proofs));
    const res = await w.send(Number(amount), proofs, { includeFees: false }, { send: { type: 'p2pk', options } });
    out({ token: getEncodedToken({ mint: mintUrl, proofs: res.send, unit: 'sat' }), fee });
  } else if (cmd === 'decode') {
    const w = await wallet();
    const ids = (await (await fetch(mintUrl + '/v1/keysets')).json()).keysets.map((k) => k.id);
    const t = getDecodedToken(args[0], ids);
    let dleqAll = true, lockedAll = true;
    for (const p of t.proofs) {
      const ks = w.getKeyset(p.id);
      if (!hasValidDleq(p, ks, { require: true })) dleqAll = false;
      if (args[1]) {
        try { const s = parseP2PKSecret(p.secret); if (s[1].data !== args[1]) lockedAll = false; }
        catch { lockedAll = false; }
      }
    }
    out({ amount: Number(sumProofs(t.proofs)), n: t.proofs.length, mint: t.mint, unit: t.unit,
      ids: [...new Set(t.proofs.map((p) => p.id))], dleq_all: dleqAll, locked_to_all: lockedAll });
  } else if (cmd === 'tamper-dleq') {
    const ids = (await (await fetch(mintUrl + '/v1/keysets')).json()).keysets.map((k) => k.id);
    const t = getDecodedToken(args[0], ids);
    const p = t.proofs[0];
    const e = p.dleq.e;
    p.dleq = { ...p.dleq, e: e.slice(0, -1) + (e.endsWith('0') ? '1' : '0') };
    out({ token: getEncodedToken(t) });
  } else if (cmd === 'receive') {
    const w = await wallet();
    const cfg = args[1] ? { privkey: args[1] } : {};
    const proofs = await w.receive(args[0], cfg);
    out({ amount: Number(sumProofs(proofs)) });
  } else if (cmd === 'verify-bench') {
    const w = await wallet();
    const tokens = fs.readFileSync(args[0], 'utf8').split('\n').filter(Boolean);
    const ids = (await (await fetch(mintUrl + '/v1/keysets')).json()).keysets.map((k) => k.id);
    const t0 = process.hrtime.bigint();
    let n = 0, bad = 0;
    for (const s of tokens) {
      const t = getDecodedToken(s, ids);
      for (const p of t.proofs) {
        const ks = w.getKeyset(p.id);
        const sec = parseP2PKSecret(p.secret);
        const ok = hasValidDleq(p, ks, { require: true }) && sec[0] === 'P2PK' && sec[1].data === args[1];
        if (!ok) bad++;
        n++;
      }
    }
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    out({ n, bad, seconds: secs, per_sec: n / secs });
  } else {
    console.error('ts.mjs: unknown command ' + cmd);
    process.exit(2);
  }
} catch (e) {
  out({ error: String(e && e.message || e), code: e && e.code });
  process.exit(1);
}
