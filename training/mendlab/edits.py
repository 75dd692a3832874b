"""Counterfactual edits: (subject, relation, new object of the same type), with paraphrase prompts,
neighbour prompts and locality sequences. Used by editor training, the FT baseline and the evaluation."""
import random
from dataclasses import dataclass, field

from .corpus import fill

SAMPLINGS = ("subject", "relation", "sqrt")  # how training edits are drawn (editor.sampling)


@dataclass
class Edit:
    subject: str
    relation: str
    true_object: str
    new_object: str
    prompt: str
    prompt_ids: list
    target_ids: list  # tokens of " " + new_object
    paraphrases: list = field(default_factory=list)  # [(text, prompt_ids)]
    novel: list = field(default_factory=list)  # [(text, prompt_ids)]
    neighbours: list = field(default_factory=list)  # [(kind, subject, relation, text, prompt_ids, true_target_ids)]
    locality: list = field(default_factory=list)  # [(token ids, loss mask)]  (training only)


class EditSampler:
    def __init__(self, kb, enc, tok, seed):
        self.kb, self.enc, self.tok = kb, enc, tok
        self.rng = random.Random(seed)
        self.all_facts = kb.facts
        self.prose_ids = None
        self._pools = (None, None)  # (subjects list, {relation: its subjects}) for relation-first sampling

    def _counterfactual(self, subjects):
        rng, kb = self.rng, self.kb
        while True:
            s = rng.choice(subjects)
            r = rng.choice(sorted(kb.by_subject[s]))
            if len(kb.objects[r]) > 1:
                break
        true = kb.by_subject[s][r]
        new = rng.choice([o for o in kb.objects[r] if o != true])
        return s, r, true, new

    def _relation_pools(self, subjects):
        if self._pools[0] is not subjects:
            kb = self.kb
            pools = {r: [s for s in subjects if r in kb.by_subject[s]] for r in kb.rel_names if len(kb.objects[r]) > 1}
            self._pools = (subjects, {r: v for r, v in pools.items() if v})
        return self._pools[1]

    def _relation_first(self, subjects, used, sampling):
        """(subject, relation, true, new) with the relation drawn first -- uniformly ("relation") or in proportion
        to the square root of how many of `subjects` have it ("sqrt") -- then a subject that has it and is not in
        `used`. Relations whose subjects are all used are left out of the draw."""
        rng, kb = self.rng, self.kb
        pools = self._relation_pools(subjects)
        rels = [r for r in pools if any(s not in used for s in pools[r])]
        if not rels:
            raise ValueError("no relation has an unused subject left")
        weights = [len(pools[r]) ** 0.5 if sampling == "sqrt" else 1.0 for r in rels]
        r = rng.choices(rels, weights)[0]
        s = rng.choice([s for s in pools[r] if s not in used])
        true = kb.by_subject[s][r]
        new = rng.choice([o for o in kb.objects[r] if o != true])
        return s, r, true, new

    def draw_edits(self, subjects, n_edits, sampling="subject"):
        """n_edits (subject, relation, true, new) with distinct subjects. sampling: "subject" draws a subject, then
        one of its relations (edits follow the subjects' mix: ~90 % city -> country on the full KB); "relation"
        draws the relation uniformly first; "sqrt" draws it in proportion to sqrt(number of subjects having it)."""
        out, used = [], set()
        while len(out) < n_edits:
            out.append(self._draw_one(subjects, used, sampling))
        return out

    def _draw_one(self, subjects, used, sampling):
        """One edit key whose subject is not in `used` (which it joins)."""
        if sampling not in SAMPLINGS:
            raise ValueError(f"unknown edit sampling {sampling!r} (one of {SAMPLINGS})")
        while True:
            if sampling == "subject":
                s, r, true, new = self._counterfactual(subjects)
                if s in used:
                    continue
            else:
                s, r, true, new = self._relation_first(subjects, used, sampling)
            used.add(s)
            return s, r, true, new

    def _fact_seq(self, s, r, split):
        """A locality sequence for a true fact: KL is taken at the positions that predict the object."""
        t = self.rng.choice(self.kb.templates(r, split))
        p = self.enc.prompt(fill(t, s))
        o = self.enc.target(self.kb.by_subject[s][r])
        return p + o, [0] * (len(p) - 1) + [1] * len(o) + [0]

    def _prose_seq(self):
        if self.prose_ids is None:
            self.prose_ids = [self.tok.encode(p) for p in self.kb.prose["train"][:2000]]
        ids = self.rng.choice(self.prose_ids)
        return ids, [1] * (len(ids) - 1) + [0]

    def training_batch(self, subjects, n_edits, n_paraphrases=2, n_same_subject=2, n_same_relation=1, n_random=1,
                       n_prose=1, sampling="subject"):
        """n_edits edits with distinct subjects (drawn as draw_edits' `sampling` says) and their locality
        sequences, all from training templates."""
        kb, rng = self.kb, self.rng
        edits, used = [], set()
        while len(edits) < n_edits:
            # one draw, then its templates, in this order: the "subject" stream is the one the shipped editor saw
            s, r, true, new = self._draw_one(subjects, used, sampling)
            t_edit, *t_para = rng.sample(kb.templates(r, "train"), 1 + n_paraphrases)
            e = Edit(s, r, true, new, fill(t_edit, s), self.enc.prompt(fill(t_edit, s)), self.enc.target(new))
            e.paraphrases = [(fill(t, s), self.enc.prompt(fill(t, s))) for t in t_para]
            edits.append(e)
        for e in edits:
            others = [r for r in sorted(kb.by_subject[e.subject]) if r != e.relation]
            for r in rng.sample(others, min(n_same_subject, len(others))):
                e.locality.append(self._fact_seq(e.subject, r, "train"))
            same_rel = [s for s, _ in kb.by_relation[e.relation] if s not in used]
            for s in rng.sample(same_rel, min(n_same_relation, len(same_rel))):
                e.locality.append(self._fact_seq(s, e.relation, "train"))
            for _ in range(n_random):
                s, r, _ = rng.choice(self.all_facts)
                if s not in used:
                    e.locality.append(self._fact_seq(s, r, "train"))
            for _ in range(n_prose):
                e.locality.append(self._prose_seq())
        return edits

    def _balanced(self, subjects, n):
        """(subject, relation, true, new) with relations in turn (each relation equally often); a subject may
        recur under different relations, never the same (subject, relation) twice."""
        kb, rng = self.kb, self.rng
        rels = [r for r in kb.rel_names if len(kb.objects[r]) > 1]
        pool = {r: [s for s in subjects if r in kb.by_subject[s]] for r in rels}
        out, used = [], set()
        while len(out) < n and any(pool.values()):
            for r in rels:
                cands = [s for s in pool[r] if (s, r) not in used]
                if not cands or len(out) >= n:
                    continue
                s = rng.choice(cands)
                used.add((s, r))
                true = kb.by_subject[s][r]
                out.append((s, r, true, rng.choice([o for o in kb.objects[r] if o != true])))
            if all(not [s for s in pool[r] if (s, r) not in used] for r in rels):
                break
        return out

    def eval_edits(self, subjects, n, n_paraphrases=4, n_novel=2, n_same_relation=3, balance_relations=False):
        """Evaluation edits on held-out subjects: edit prompt from a training template, paraphrases from
        held-out (core, wrapper) combinations, novel-phrasing prompts, and neighbours (same relation with
        other subjects; every other relation of the same subject). By default a subject is drawn first (so
        edits follow the subjects' mix, mostly cities) and all subjects are distinct; balance_relations
        draws the relation first so every relation gets the same number of edits."""
        kb, rng = self.kb, self.rng
        subjects = [s for s in subjects if any(len(kb.objects[r]) > 1 for r in kb.by_subject[s])]
        edits, used = [], set()
        planned = self._balanced(subjects, n) if balance_relations else None
        while len(edits) < n and len(used) < len(subjects):
            if planned is not None:
                if not planned:
                    break
                s, r, true, new = planned.pop(0)
            else:
                s, r, true, new = self._counterfactual(subjects)
                if s in used:
                    continue
            used.add(s)
            t_edit = rng.choice(kb.templates(r, "train"))
            e = Edit(s, r, true, new, fill(t_edit, s), self.enc.prompt(fill(t_edit, s)), self.enc.target(new))
            held = kb.templates(r, "heldout")
            for t in rng.sample(held, min(n_paraphrases, len(held))):
                e.paraphrases.append((fill(t, s), self.enc.prompt(fill(t, s))))
            nov = kb.templates(r, "novel")
            for t in rng.sample(nov, min(n_novel, len(nov))):
                e.novel.append((fill(t, s), self.enc.prompt(fill(t, s))))
            others = [x for x, _ in kb.by_relation[r] if x != s]
            for x in rng.sample(others, min(n_same_relation, len(others))):
                e.neighbours.append(self._neighbour("same_relation", x, r))
            for r2 in sorted(kb.by_subject[s]):
                if r2 != r:
                    e.neighbours.append(self._neighbour("same_subject", s, r2))
            edits.append(e)
        return edits

    def _neighbour(self, kind, s, r):
        t = self.rng.choice(self.kb.templates(r, "train"))
        text = fill(t, s)
        return (kind, s, r, text, self.enc.prompt(text), self.enc.target(self.kb.by_subject[s][r]))
