"""A relation-balanced evaluation of a model folder's editor (the same evaluation run_pipeline.py writes into
eval.json "balanced"; this script runs it on an already exported model, e.g. the shipped one). Its edits draw the
relation first, whereas eval.json's own edits follow the test subjects' mix and are ~90 % city -> country.

    /usr/bin/python3 training/evaluate_balanced.py [--model public/models/facts-gpt] [--per-relation 8]
        [--ft-per-relation 3] [--device cpu|cuda] [--split test|val|test,val] [--out training/results/balanced-eval.json]
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mendlab.corpus import KB, FactEncoder  # noqa: E402
from mendlab.evaluate import (balanced_plan, prose_nll, relation_balanced_edits, run_balanced,  # noqa: E402
                              validation_summary)
from mendlab.finetune import finetune_weights  # noqa: E402
from mendlab.mend import mend_edit  # noqa: E402
from mendlab.model_folder import load_model_folder  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="public/models/facts-gpt")
    ap.add_argument("--per-relation", type=int, default=8)
    ap.add_argument("--ft-per-relation", type=int, default=3, help="FT is 20x slower: evaluate it on fewer edits "
                    "(0: no FT)")
    ap.add_argument("--n-prose", type=int, default=16)
    ap.add_argument("--ft-steps", type=int, default=20)
    ap.add_argument("--ft-lr", type=float, default=None, help="default: the lr eval.json's FT used")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--split", default="test", help="test, val or test,val: whose subjects the edits use (val "
                    "results are stored as val_mend_single, ... plus val_score, MEND only: the selection score)")
    ap.add_argument("--out", default="training/results/balanced-eval.json")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    dev = torch.device(args.device)
    if dev.type == "cpu":
        torch.set_num_threads(2)
    d = args.model
    tok, model, ecfg, mend = load_model_folder(d, dev)
    ft_lr = args.ft_lr
    if ft_lr is None:
        with open(os.path.join(d, "eval.json")) as f:
            ft_lr = json.load(f)["ft_config"]["lr"]
    kb = KB()
    enc = FactEncoder(tok)
    prose = [tok.encode(p) for p in kb.prose["heldout"][:args.n_prose]]
    base_nll = prose_nll(model, prose, dev)
    names = mend.edited_weights

    def mend_apply(batch):
        return mend_edit(model, mend, batch, dev, tok.eot_id)

    def ft_apply(batch):
        return finetune_weights(model, batch, names, args.ft_steps, ft_lr, dev, tok.eot_id)

    res = {"model": d, "per_relation_requested": args.per_relation, "ft": {"steps": args.ft_steps, "lr": ft_lr},
           "relations": kb.rel_names, "device": str(dev), "torch": torch.__version__,
           "lr_scale": mend.lr_scale, "lr_scale_batch": mend.scale_for(10)}  # mend_edit: batches at lr_scale_batch
    t = [time.time()]

    def write():
        with open(args.out, "w") as f:
            json.dump(res, f, indent=1)

    for split in args.split.split(","):
        prefix = "" if split == "test" else split + "_"
        edits = relation_balanced_edits(kb, enc, tok, kb.subjects(split), args.per_relation)
        res[prefix + "edits"] = len(edits)
        plan = balanced_plan(edits, len(kb.rel_names), args.ft_per_relation if split == "test" else 0)
        plan = {k: v for k, v in plan.items() if k[0] == "mend" or v}  # FT only on test edits, if asked for

        def save(key, r):  # after every stage, so a partial run still leaves its numbers
            res[prefix + key] = r
            print(prefix + key, {k: v for k, v in r.items() if k != "per_relation"}, f"{time.time() - t[0]:.0f}s",
                  flush=True)
            t[0] = time.time()
            write()

        results = run_balanced(model, edits, plan, {"mend": mend_apply, "ft": ft_apply}, prose, base_nll, dev,
                               tok.eot_id, on_result=save)
        if split != "test":
            res[prefix + "score"] = validation_summary(results)["score"]
            print(prefix + "score", res[prefix + "score"], flush=True)
            write()
    return res


if __name__ == "__main__":
    main()
