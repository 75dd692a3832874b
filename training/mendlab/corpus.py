"""The world-facts corpus: knowledge base + compositional templates + prose (built by training/kb/build_kb.mjs).

Tokenisation convention (docs/formats.md): a fact is `tokenize(prompt) ++ tokenize(" " + object)`. The
pretraining text uses exactly this segmentation (then "." and a newline), so the model is trained on the same
token sequences it is later evaluated and edited on.
"""
import json
import os
import random
from collections import defaultdict

import torch

DATA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")


def fill(template, subject):
    return template.replace("{s}", subject)


class KB:
    """Facts, templates (split into train / heldout / novel), subject splits and prose."""

    def __init__(self, data_dir=DATA_DIR, max_subjects_per_type=None, seed=0):
        with open(os.path.join(data_dir, "kb.json")) as f:
            kb = json.load(f)
        with open(os.path.join(data_dir, "templates.json")) as f:
            tj = json.load(f)
        with open(os.path.join(data_dir, "splits.json")) as f:
            sp = json.load(f)
        with open(os.path.join(data_dir, "prose.json")) as f:
            self.prose = json.load(f)
        self.sources = kb["sources"]
        self.wrappers = tj["wrappers"]
        self.relations = tj["relations"]
        self.rel_names = sorted(self.relations)
        self.subject_split = {s: name for name in ("train", "val", "test") for s in sp[name]}
        facts = [tuple(f) for f in kb["facts"]]
        if max_subjects_per_type:  # --tiny: a small, fixed subset of subjects of every type
            rng = random.Random(seed)
            by_type = defaultdict(set)
            for s, r, _ in facts:
                by_type[self.relations[r]["subject_type"]].add(s)
            keep = set()
            for t in sorted(by_type):
                subs = sorted(by_type[t])
                rng.shuffle(subs)
                keep.update(subs[:max_subjects_per_type])
            facts = [f for f in facts if f[0] in keep]
        self.facts = facts
        self.by_subject = defaultdict(dict)
        self.by_relation = defaultdict(list)
        for s, r, o in facts:
            self.by_subject[s][r] = o
            self.by_relation[r].append((s, o))
        self.objects = {r: sorted({o for _, o in v}) for r, v in self.by_relation.items()}
        self.rel_names = [r for r in self.rel_names if r in self.by_relation]

    def templates(self, relation, split):
        return [t["template"] for t in self.relations[relation]["templates"] if t["split"] == split]

    def subjects(self, split):
        return sorted(s for s in self.by_subject if self.subject_split.get(s) == split)


class FactEncoder:
    """Tokenises (prompt, target) pairs with a cache for the target side."""

    def __init__(self, tok):
        self.tok = tok
        self._target = {}
        self._prompt = {}

    def prompt(self, text):
        if text not in self._prompt:
            self._prompt[text] = self.tok.encode(text)
        return list(self._prompt[text])

    def target(self, obj):
        if obj not in self._target:
            self._target[obj] = self.tok.encode(" " + obj)
        return self._target[obj]


def pretraining_items(kb, enc, tok):
    """Every (fact, training template) sentence and every training prose paragraph, as token lists.
    Each item ends with a newline so the next prompt starts exactly as an evaluation prompt does."""
    nl = tok.encode("\n")
    dot = tok.encode(".")
    items = []
    for s, r, o in kb.facts:
        tgt = enc.target(o)
        for t in kb.templates(r, "train"):
            items.append(enc.prompt(fill(t, s)) + tgt + dot + nl)
    for p in kb.prose["train"]:
        items.append(tok.encode(p) + nl)
    return items


class PackedStream:
    """Shuffles the items every epoch and packs them into [n, seq_len + 1] rows (inputs and shifted labels).
    Items live in one flat tensor; an epoch is a single gather, so this stays cheap for ~10^5 items."""

    def __init__(self, items, seq_len, seed, eot_id):
        self.flat = torch.tensor([t for x in items for t in x], dtype=torch.long)
        self.lengths = torch.tensor([len(x) for x in items], dtype=torch.long)
        self.starts = torch.cumsum(self.lengths, 0) - self.lengths
        self.seq_len = seq_len
        self.gen = torch.Generator().manual_seed(seed)
        self.eot = eot_id
        self.epoch = 0
        self.n_tokens = int(self.lengths.sum())

    def epoch_rows(self):
        order = torch.randperm(len(self.lengths), generator=self.gen)
        lens = self.lengths[order]
        new_starts = torch.cumsum(lens, 0) - lens
        # token j of the shuffled stream comes from flat[j + (old start - new start) of its item]
        idx = torch.arange(self.n_tokens) + torch.repeat_interleave(self.starts[order] - new_starts, lens)
        flat = self.flat[idx]
        L = self.seq_len + 1
        n = flat.numel() // L
        self.epoch += 1
        return flat[: n * L].view(n, L)

    def batches(self, batch_size):
        while True:
            rows = self.epoch_rows()
            perm = torch.randperm(rows.shape[0], generator=self.gen)
            for i in range(0, rows.shape[0] - batch_size + 1, batch_size):
                yield rows[perm[i:i + batch_size]]


def pad_batch(seqs, pad_id, loss_masks=None):
    """Right-pad token lists. Returns ids [B, T], attention mask [B, T] (1 = real token), and, when
    loss_masks is given, that mask padded too."""
    T = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), T), pad_id, dtype=torch.long)
    att = torch.zeros(len(seqs), T, dtype=torch.bool)
    lm = torch.zeros(len(seqs), T, dtype=torch.bool) if loss_masks is not None else None
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s)
        att[i, :len(s)] = True
        if lm is not None:
            lm[i, :len(s)] = torch.tensor(loss_masks[i], dtype=torch.bool)
    return ids, att, lm


def prompt_target_batch(pairs, pad_id):
    """pairs: [(prompt_ids, target_ids)] -> ids [B, T] and labels [B, T] where labels[b, t] is the token that
    position t must predict (the next token) for target positions, -100 elsewhere."""
    seqs = [p + t for p, t in pairs]
    ids, att, _ = pad_batch(seqs, pad_id)
    labels = torch.full_like(ids, -100)
    for i, (p, t) in enumerate(pairs):
        for j, tok_id in enumerate(t):
            labels[i, len(p) - 1 + j] = tok_id
    return ids, labels, att
