"""A relation-balanced evaluation of a shipped model + editor (supplements eval.json, whose edits follow the test
subjects' mix and are therefore ~90 % city -> country). Runs on CPU in a few minutes.

    /usr/bin/python3 training/evaluate_balanced.py [--model public/models/facts-gpt] [--per-relation 10]
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mendlab.corpus import KB, FactEncoder  # noqa: E402
from mendlab.edits import EditSampler  # noqa: E402
from mendlab.evaluate import evaluate_edits, neighbour_baseline, prose_nll  # noqa: E402
from mendlab.finetune import finetune_weights  # noqa: E402
from mendlab.gpt import GPT, GPTConfig, load_hf_state_dict  # noqa: E402
from mendlab.mend import MEND, capture_rows, edited_weights_from  # noqa: E402
from mendlab.safetensors_io import load_file, load_model  # noqa: E402
from mendlab.tokenizer import ByteBPETokenizer  # noqa: E402


def batch_groups(edits, size=10):
    """Greedy groups of `size` edits with distinct subjects."""
    left, groups = list(range(len(edits))), []
    while True:
        g, subs = [], set()
        for i in left:
            if edits[i].subject not in subs:
                g.append(i)
                subs.add(edits[i].subject)
            if len(g) == size:
                break
        if len(g) < size:
            return groups
        groups.append(g)
        left = [i for i in left if i not in g]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="public/models/facts-gpt")
    ap.add_argument("--per-relation", type=int, default=8)
    ap.add_argument("--ft-per-relation", type=int, default=3, help="FT is 20x slower: evaluate it on fewer edits")
    ap.add_argument("--n-prose", type=int, default=16)
    ap.add_argument("--ft-steps", type=int, default=20)
    ap.add_argument("--ft-lr", type=float, default=None, help="default: the lr eval.json's FT used")
    ap.add_argument("--out", default="training/results/balanced-eval.json")
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)
    dev = torch.device("cpu")
    d = args.model
    tok = ByteBPETokenizer.load(d)
    with open(os.path.join(d, "config.json")) as f:
        model = load_hf_state_dict(GPT(GPTConfig.from_hf(json.load(f))), load_model(d))
    for p in model.parameters():
        p.requires_grad_(False)
    with open(os.path.join(d, "editor_config.json")) as f:
        ecfg = json.load(f)
    mend = MEND.from_files(ecfg, load_file(os.path.join(d, "editor.safetensors")))
    ft_lr = args.ft_lr
    if ft_lr is None:
        with open(os.path.join(d, "eval.json")) as f:
            ft_lr = json.load(f)["ft_config"]["lr"]
    kb = KB()
    enc = FactEncoder(tok)
    n = args.per_relation * len(kb.rel_names)
    edits = EditSampler(kb, enc, tok, 7).eval_edits(kb.subjects("test"), n, balance_relations=True)
    pre = neighbour_baseline(model, edits, dev, tok.eot_id)
    prose = [tok.encode(p) for p in kb.prose["heldout"][:args.n_prose]]
    base_nll = prose_nll(model, prose, dev)
    single = [[i] for i in range(len(edits))]
    groups = batch_groups(edits)
    names = mend.edited_weights

    def mend_apply(batch):
        rows, _ = capture_rows(model, [(e.prompt_ids, e.target_ids) for e in batch], names, dev, tok.eot_id)
        with torch.no_grad():
            return edited_weights_from(model, mend.weight_updates(rows))

    def ft_apply(batch):
        return finetune_weights(model, batch, names, args.ft_steps, ft_lr, dev, tok.eot_id)

    res = {"model": d, "edits": len(edits), "per_relation_requested": args.per_relation, "ft": {"steps": args.ft_steps,
           "lr": ft_lr}, "relations": sorted({e.relation for e in edits})}
    # FT subset: the first ft_per_relation edits of every relation (edits come in relation order, round robin)
    ft_single = single[:args.ft_per_relation * len(res["relations"])]
    ft_groups = batch_groups([edits[i[0]] for i in ft_single])
    plan = (("mend", "single", mend_apply, single), ("mend", "batch10", mend_apply, groups),
            ("ft", "single", ft_apply, ft_single), ("ft", "batch10", ft_apply, [[ft_single[j][0] for j in g] for g in ft_groups]))
    for name, kind, fn, gs in plan:
        t = time.time()
        r = evaluate_edits(model, edits, gs, fn, pre, prose, base_nll, dev, tok.eot_id)
        res[f"{name}_{kind}"] = r
        print(name, kind, {k: v for k, v in r.items() if k != "per_relation"}, f"{time.time() - t:.0f}s", flush=True)
        with open(args.out, "w") as f:  # after every stage, so a partial run still leaves its numbers
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
