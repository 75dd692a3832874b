"""A batch-passes variant (calibrate_batch_passes.py) on the fresh test draws of evaluate_more_draws.py.

The trust region of grid v3 was designed after one batch of the pipeline's own test draw (draw 0) was wrecked by a
retry pass, so draw 0 cannot test it. Draws 1..9 (EditSampler seed + 2 + 1000·k on the test subjects, 30 batches of
10 each) were never looked at with any retry variant; training/results/more-draws-batch10.json holds the one-pass
MEND and FT numbers on exactly these batches.

    /usr/bin/python3 training/evaluate_batch_passes_draws.py --variant '1.1>retry2@0.5+tr' [--grid v3]
        [--draws 1-9] [--out training/results/batch-passes-draws.json]

Reported per draw and pooled (evaluate_more_draws.pooled over every prompt), with the perplexity increase of every
group, so that a single wrecked batch shows instead of hiding in a mean.
"""
import argparse
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402

from calibrate_batch_passes import variants  # noqa: E402
from evaluate_more_draws import draw_edits, group_counts, pooled  # noqa: E402
from mendlab.benchmark_cases import aggregate, benchmark_groups, per_case_outcomes  # noqa: E402
from mendlab.evaluate import harmonic, neighbour_baseline, prose_nll  # noqa: E402
from mendlab.mend import mend_edit_passes  # noqa: E402
from mendlab.model_folder import cpu_versions, load_shipped, shipped_scales  # noqa: E402


# Declared 2026-11-29 before draws 2..9 were run (draw 1 had been run, one batch of 30 looked at): the variant
# replaces one-pass batch editing in the shipped editor only if, over draws 1..9,
ADOPTION_RULE = ("adopt only if, over draws 1..9: (a) no batch raises held-out perplexity by more than 10 % "
                 "(one wrecked batch is a veto); (b) pooled NS >= 0.90; (c) pooled mean perplexity increase <= "
                 "one-pass's (0.0157, more-draws-batch10.json) + 0.02; (d) harmonic above one-pass MEND's in at least "
                 "7 of the 9 draws, and pooled harmonic >= one-pass pooled (0.902) + 0.02")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="public/models/facts-gpt")
    ap.add_argument("--variant", required=True)
    ap.add_argument("--grid", default="v3", choices=("v1", "v2", "v3"))
    ap.add_argument("--draws", default="1-9")
    ap.add_argument("--out", default="training/results/batch-passes-draws.json")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    dev = torch.device("cpu")
    sh = load_shipped(args.model, dev)
    model, mend, tok = sh.model, sh.mend, sh.tok
    ev = sh.config["eval"]
    _, batch_scale = shipped_scales(sh.ecfg, sh.eval_json)
    v = next(x for x in variants(batch_scale, args.grid) if x["name"] == args.variant)
    lo, hi = (int(x) for x in args.draws.split("-"))
    prose_ids = [tok.encode(p) for p in sh.kb.prose["heldout"][:ev["n_prose"]]]
    base_nll = prose_nll(model, prose_ids, dev)
    refusals, passes = {}, []
    group_ppl = []

    def apply_fn(batch):
        w, n = mend_edit_passes(model, mend, batch, dev, tok.eot_id, v["passes"], v["first"], v["retry"] or 1.0,
                                v["retry_all"], v.get("trust_region", False), refusals)
        passes.append(n)
        group_ppl.append(math.exp(prose_nll(model, prose_ids, dev, weights=w) - base_nll) - 1)
        return w

    out = {"about": "A calibrate_batch_passes.py variant on evaluate_more_draws.py's fresh test draws; "
                    "training/evaluate_batch_passes_draws.py, docs/training.md 'Batch edits in more than one pass'.",
           "variant": v, "adoption_rule": ADOPTION_RULE, "draws": [], "versions": cpu_versions(args.threads)}
    counts = []
    for k in range(lo, hi + 1):
        t = time.time()
        edits = draw_edits(sh, ev, k)
        groups = benchmark_groups(len(edits), ev)["mend.batch10"]
        pre = neighbour_baseline(model, edits, dev, tok.eot_id)
        refusals.clear(); passes.clear(); group_ppl.clear()
        oc = per_case_outcomes(model, edits, groups, apply_fn, pre, prose_ids, base_nll, dev, tok.eot_id)
        agg = aggregate(oc)
        agg["harmonic_es_ps_ns"] = harmonic([agg["es"], agg["ps"], agg["ns"]])
        counts.extend(group_counts(g) for g in oc)
        d = {"draw": k, **agg, "mean_passes": sum(passes) / len(passes), "refusals": refusals.get("refused", 0),
             "group_ppl_increase_max": max(group_ppl), "groups_over_10pct": sum(p > 0.10 for p in group_ppl),
             "seconds": round(time.time() - t, 1)}
        out["draws"].append(d)
        print(json.dumps({x: (round(y, 4) if isinstance(y, float) else y) for x, y in d.items()}), flush=True)
        out["pooled"] = {**pooled(counts), "n_groups": len(counts), "n_draws": len(out["draws"]),
                         "ppl_increase": sum(x["ppl_increase"] for x in out["draws"]) / len(out["draws"]),
                         "group_ppl_increase_max": max(x["group_ppl_increase_max"] for x in out["draws"]),
                         "groups_over_10pct": sum(x["groups_over_10pct"] for x in out["draws"])}
        with open(args.out, "w") as f:
            json.dump(out, f, indent=1)
    print(json.dumps(out["pooled"], indent=1))
    return out


if __name__ == "__main__":
    main()
