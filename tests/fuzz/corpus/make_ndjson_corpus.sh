#!/usr/bin/env bash
# Regenerate tests/fuzz/corpus/ndjson/ from the reference traces (dvm-protocol.md §9) plus a
# few extension-field lines. Each seed = one piece-size byte + one or more NDJSON lines.
# Truncated tokens in the traces are closed ("}) so the seeds are complete messages.
set -euo pipefail
cd "$(dirname "$0")/../../.."
traces=tests/protocol/data/reference-traces
out=tests/fuzz/corpus/ndjson
mkdir -p "$out"
rm -f "$out"/trace-* "$out"/ext-*
for f in "$traces"/trace-*.log; do
  base=$(basename "$f" .log)
  # every protocol line of the trace, repaired, as one stream (piece size byte 0x07)
  { printf '\x07'
    sed -n 's/^ *[0-9.]* \(=>\|<=\) \((split write) \)\{0,1\}//p' "$f" |
      awk '{ if ($0 ~ /"token":"/ && $0 !~ /}$/) print $0 "\"}"; else print }'
  } > "$out/$base-stream"
  # each line alone (piece size 0xff: one feed)
  n=0
  sed -n 's/^ *[0-9.]* \(=>\|<=\) \((split write) \)\{0,1\}//p' "$f" |
    awk '{ if ($0 ~ /"token":"/ && $0 !~ /}$/) print $0 "\"}"; else print }' | sort -u |
    while IFS= read -r line; do
      n=$((n + 1)); printf '\xff%s\n' "$line" > "$out/$base-$n"
    done
done
i=0
while IFS= read -r line; do
  i=$((i + 1)); printf '\x03%s\n' "$line" > "$out/ext-$i"
done <<'LINES'
{"type":"skill_response","id":"s","skill":{"kind":5100,"model":"llama3.2","pricing":{"sats_per_chunk":2,"chunks_per_payment":5,"unit":"sat"},"mints":["http://127.0.0.1:3338"],"pubkey":"02aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899","capacity":{"active":1,"max":3},"version":"0.1.0"}}
{"type":"request","id":"a-B_9","kind":5302,"input":"x\u00e9\n","budget":0,"params":{"model":"m","max_tokens":256,"temperature":0.7,"seed":42,"system":"be brief"}}
{"type":"offer","id":"j","sats_per_chunk":3,"chunks_per_payment":4,"mints":["https://a","https://b"],"unit":"sat","pubkey":"03aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899","min_locktime":600}
{"type":"payment_ack","id":"j","amount":25,"credit":25,"locked":true}
{"type":"chunk","id":"j","data":"\"\\\t\ud83d\ude00","seq":14}
{"type":"result","id":"j","output":"o","total_sats":10,"chunks":10,"usage":{"prompt_tokens":3,"completion_tokens":10},"reason":"stopped"}
{"type":"error","id":"j","message":"No capacity (3/3 slots used)","code":"capacity"}
LINES
echo "$(ls "$out" | wc -l) seeds in $out"
