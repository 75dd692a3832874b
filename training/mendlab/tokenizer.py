"""Byte-level BPE (GPT-2 style): our own trainer and encoder, writing Hugging Face tokenizer.json.

Pipeline of the tokenizer (identical to HF `ByteLevel` pre-tokenizer + `BPE` model + `ByteLevel` decoder):
1. Split text with GPT-2's regex  's|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+
   (Debian's Python has no `regex` module, so `pretokenize` is a hand-written scanner for exactly that regex,
   using JavaScript's definition of \\s, since the TS side runs the regex in JS).
2. Map every UTF-8 byte of a piece to a printable unicode char (GPT-2's bytes_to_unicode).
3. Apply the learned merges, lowest rank first.
Vocabulary: ids 0..255 are the 256 byte symbols (in byte order), then one id per merge, then <|endoftext|>.
"""
import json
import unicodedata
from collections import Counter, defaultdict

EOT = "<|endoftext|>"
GPT2_PATTERN = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
# JavaScript's \s (what the regex above means in the TS tokenizer).
_JS_SPACE = set("\t\n\v\f\r \u00a0\u1680\u2028\u2029\u202f\u205f\u3000\ufeff") | {chr(c) for c in range(0x2000, 0x200B)}
_CONTRACTIONS = ("'s", "'t", "'re", "'ve", "'m", "'ll", "'d")


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable char map (printable latin-1 bytes map to themselves)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


BYTE_ENCODER = bytes_to_unicode()
BYTE_DECODER = {c: b for b, c in BYTE_ENCODER.items()}


def _cls(c):
    if c in _JS_SPACE:
        return "s"
    cat = unicodedata.category(c)
    if cat[0] == "L":
        return "L"
    if cat[0] == "N":
        return "N"
    return "o"


def pretokenize(text):
    """Split `text` exactly as GPT2_PATTERN does (leftmost alternative wins at each position)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        m = next((k for k in _CONTRACTIONS if text.startswith(k, i)), None)
        if m:
            out.append(m)
            i += len(m)
            continue
        # ' ?X+' for X in letters, numbers, other: optional single space, then a run of one class.
        start = i + 1 if (c == " " and i + 1 < n) else i
        k = _cls(text[start])
        if k != "s" and (start == i + 1 or _cls(c) == k):
            j = start
            while j < n and _cls(text[j]) == k:
                j += 1
            out.append(text[i:j])
            i = j
            continue
        # whitespace: '\s+(?!\S)' then '\s+'
        j = i
        while j < n and text[j] in _JS_SPACE:
            j += 1
        if j < n and j - i >= 2:
            j -= 1  # leave the last space to prefix the next word
        out.append(text[i:j])
        i = j
    return out


def _to_symbols(piece):
    return "".join(BYTE_ENCODER[b] for b in piece.encode("utf-8"))


def train_bpe(texts, vocab_size, min_frequency=2):
    """Learn merges until the vocabulary (256 bytes + merges + EOT) reaches vocab_size.
    Incremental pair counting: each merge only revisits the words that contain the merged pair.
    Ties are broken by the pair itself so training is deterministic."""
    word_counts = Counter()
    for t in texts:
        word_counts.update(_to_symbols(p) for p in pretokenize(t))
    words = [list(w) for w in word_counts]
    freqs = [word_counts[w] for w in word_counts]
    pair_counts = Counter()
    where = defaultdict(set)
    for wi, w in enumerate(words):
        for a, b in zip(w, w[1:]):
            pair_counts[a, b] += freqs[wi]
            where[a, b].add(wi)
    merges = []
    n_merges = vocab_size - 256 - 1
    while len(merges) < n_merges and pair_counts:
        best = max(pair_counts.items(), key=lambda kv: (kv[1], kv[0]))
        (a, b), cnt = best
        if cnt < min_frequency:
            break
        merges.append((a, b))
        ab = a + b
        for wi in sorted(where.pop((a, b), ())):
            w, f = words[wi], freqs[wi]
            for x, y in zip(w, w[1:]):  # remove this word's old pairs
                pair_counts[x, y] -= f
                if pair_counts[x, y] <= 0:
                    del pair_counts[x, y]
            nw, j = [], 0
            while j < len(w):
                if j + 1 < len(w) and w[j] == a and w[j + 1] == b:
                    nw.append(ab)
                    j += 2
                else:
                    nw.append(w[j])
                    j += 1
            words[wi] = nw
            for x, y in zip(nw, nw[1:]):  # add the new pairs
                pair_counts[x, y] += f
                where[x, y].add(wi)
        pair_counts.pop((a, b), None)
    return merges


class ByteBPETokenizer:
    def __init__(self, merges, vocab=None):
        """Our layout (vocab=None): 256 byte symbols, then one id per merge, then <|endoftext|>. An explicit
        vocab (e.g. GPT-2's own tokenizer.json from the Hub) keeps its ids; the algorithm is the same."""
        self.merges = [tuple(m) for m in merges]
        self.ranks = {m: i for i, m in enumerate(self.merges)}
        if vocab is None:
            self.vocab = {BYTE_ENCODER[b]: b for b in range(256)}
            for a, b in self.merges:
                self.vocab.setdefault(a + b, len(self.vocab))
            self.eot_id = len(self.vocab)
            self.vocab[EOT] = self.eot_id
        else:
            self.vocab = dict(vocab)
            self.eot_id = self.vocab[EOT]
        self.id_to_token = {i: t for t, i in self.vocab.items()}
        self._cache = {}

    def __len__(self):
        return len(self.vocab)

    def _bpe(self, sym):
        if sym in self._cache:
            return self._cache[sym]
        w = list(sym)
        while len(w) > 1:
            pairs = [(self.ranks.get((x, y), 1 << 30), i) for i, (x, y) in enumerate(zip(w, w[1:]))]
            r, _ = min(pairs)
            if r == 1 << 30:
                break
            a, b = self.merges[r]
            nw, j = [], 0
            while j < len(w):
                if j + 1 < len(w) and w[j] == a and w[j + 1] == b:
                    nw.append(a + b)
                    j += 2
                else:
                    nw.append(w[j])
                    j += 1
            w = nw
        ids = [self.vocab[t] for t in w]
        self._cache[sym] = ids
        return ids

    def encode(self, text):
        ids = []
        for p in pretokenize(text):
            ids.extend(self._bpe(_to_symbols(p)))
        return ids

    def decode(self, ids):
        parts = []
        for i in ids:
            t = self.id_to_token[int(i)]
            parts.append(t.encode("utf-8") if t == EOT else bytes(BYTE_DECODER[c] for c in t))
        return b"".join(parts).decode("utf-8", errors="replace")

    # ---- Hugging Face files ----
    def to_hf_json(self):
        return {
            "version": "1.0",
            "truncation": None,
            "padding": None,
            "added_tokens": [{"id": self.eot_id, "content": EOT, "single_word": False, "lstrip": False,
                              "rstrip": False, "normalized": True, "special": True}],
            "normalizer": None,
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
            "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
            "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                      "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                      "vocab": self.vocab, "merges": [f"{a} {b}" for a, b in self.merges]},
        }

    def config_json(self, model_max_length):
        return {"tokenizer_class": "GPT2Tokenizer", "bos_token": EOT, "eos_token": EOT, "unk_token": EOT,
                "add_prefix_space": False, "add_bos_token": False, "clean_up_tokenization_spaces": False,
                "model_max_length": model_max_length, "errors": "replace"}

    def save(self, folder, model_max_length):
        import os
        with open(os.path.join(folder, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(self.to_hf_json(), f, ensure_ascii=False)
        with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
            json.dump(self.config_json(model_max_length), f, indent=1)

    @classmethod
    def load(cls, folder):
        import os
        with open(os.path.join(folder, "tokenizer.json"), encoding="utf-8") as f:
            j = json.load(f)
        merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in j["model"]["merges"]]
        vocab = dict(j["model"]["vocab"])
        for t in j.get("added_tokens", []):
            vocab[t["content"]] = t["id"]
        tok = cls(merges)
        return tok if tok.vocab == vocab else cls(merges, vocab)
