#!/usr/bin/env bash
# Makes the golden fixture of SentencePiece-style tokenizer.json files (Metaspace pre-tokenizer,
# BPE with byte_fallback, the Replace/ByteFallback/Fuse/Strip decoder chain): Hugging Face
# transformers converts the shared Mistral v0.3 tokenizer.model into the tokenizer.json it would
# publish (Metaspace prepend_scheme "first"; with legacy=True, "always"), and Hugging Face's Rust
# `tokenizers` (its Python binding) encodes and decodes the texts of
# ../shared/fixtures/tokenizers/encode_cases.jsonl with each. Writes
#   tests/data/tokenizers/mistral-v0.3-json{,-legacy}/tokenizer.json  (Apache-2.0, as the model)
#   tests/data/tokenizers/mistral_json_cases.jsonl
# in the format of encode_cases.jsonl. Needs bench/install-peers.sh (transformers, tokenizers,
# sentencepiece, protobuf); fixture generation only, never run by the build or the tests.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHARED="${SHARED:-$ROOT/../shared}"
OUT="$ROOT/tests/data/tokenizers"
WORK="$(mktemp -d /tmp/flywheel-sp-json-XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
cp "$SHARED/tokenizers/mistral-v0.3/tokenizer.model" "$SHARED/tokenizers/mistral-v0.3/tokenizer_config.json" "$WORK/"
mkdir -p "$OUT/mistral-v0.3-json" "$OUT/mistral-v0.3-json-legacy"
"$ROOT/.venv/bin/python" - "$WORK" "$SHARED" "$OUT" <<'PY'
import json, sys
from transformers import LlamaTokenizer
from tokenizers import Tokenizer
work, shared, out = sys.argv[1:4]
names = {"mistral-v0.3-json": False, "mistral-v0.3-json-legacy": True}
tokenizers = {}
for name, legacy in names.items():
    LlamaTokenizer.from_pretrained(work, legacy=legacy).save_pretrained(f"{work}/{name}")
    path = f"{out}/{name}/tokenizer.json"
    with open(f"{work}/{name}/tokenizer.json", encoding="utf-8") as f:
        spec = json.load(f)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(spec, f, ensure_ascii=False)
    tokenizers[name] = Tokenizer.from_file(path)
texts = []
with open(f"{shared}/fixtures/tokenizers/encode_cases.jsonl", encoding="utf-8") as f:
    for line in f:
        text = json.loads(line)["text"]
        if text not in texts:
            texts.append(text)
texts += ["[INST] Hello [/INST]", "[INST]hi", "  two leading spaces", "tab\tand\nnewline",
          "\u2581literal metaspace", "\U0001F9EC rare emoji \U0001FAE0", "</s>eos<s>"]
with open(f"{out}/mistral_json_cases.jsonl", "w", encoding="utf-8") as f:
    for name, tok in tokenizers.items():
        for text in texts:
            for special in (False, True):
                ids = tok.encode(text, add_special_tokens=special).ids
                row = {"tokenizer": name, "text": text, "add_special_tokens": special, "ids": ids,
                       "decoded": tok.decode(ids, skip_special_tokens=False),
                       "decoded_skip_special": tok.decode(ids, skip_special_tokens=True)}
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
print(f"{len(texts) * 2 * len(tokenizers)} cases -> {out}/mistral_json_cases.jsonl", file=sys.stderr)
PY
