"""A batch-passes variant (calibrate_batch_passes.py) on the fresh test draws of evaluate_more_draws.py.

The trust region of grid v3 was designed after one batch of the pipeline's own test draw (draw 0) was wrecked by a
retry pass, so draw 0 cannot test it. Draws 1..9 (EditSampler seed + 2 + 1000·k on the test subjects, 30 batches of
10 each) were never looked at with any retry variant; training/results/more-draws-batch10.json holds the one-pass
MEND and FT numbers on exactly these batches.

    /usr/bin/python3 training/evaluate_batch_passes_draws.py --variant '1.1>retry2@0.5+tr' [--grid v3]
        [--draws 1-9] [--one-pass] [--out training/results/batch-passes-draws.json]

Reported per draw and pooled (evaluate_more_draws.pooled over every prompt), with the perplexity increase of every
group, so that a single wrecked batch shows instead of hiding in a mean. --one-pass evaluates the shipped one-pass
edit on the same groups too (draws 10..19 have no more-draws-batch10.json numbers).

Draws 1..9 were used by grid v3 (rule ADOPTION_RULE below: vetoed, docs/training.md); grid v4 (a prose guard on
retry passes, designed after seeing v3's vetoed batches on draws 2, 4, 5, 8, 9) is tested on draws 10..19, which
nothing has looked at, under ADOPTION_RULE_V4.
"""
import argparse
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from calibrate_batch_passes import edit_with_variant, guard_prose_ids, variants  # noqa: E402
from evaluate_more_draws import draw_edits, group_counts, pooled  # noqa: E402
from mendlab.benchmark_cases import aggregate, benchmark_groups, per_case_outcomes  # noqa: E402
from mendlab.evaluate import harmonic, neighbour_baseline, prose_nll  # noqa: E402
from mendlab.model_folder import cpu_versions, load_shipped_cpu, shipped_scales  # noqa: E402


# Declared 2026-11-29 before draws 2..9 were run (draw 1 had been run, one batch of 30 looked at):
ADOPTION_RULE = ("adopt only if, over draws 1..9: (a) no batch raises held-out perplexity by more than 10 % "
                 "(one wrecked batch is a veto); (b) pooled NS >= 0.90; (c) pooled mean perplexity increase <= "
                 "one-pass's (0.0157, more-draws-batch10.json) + 0.02; (d) harmonic above one-pass MEND's in at least "
                 "7 of the 9 draws, and pooled harmonic >= one-pass pooled (0.902) + 0.02")
# Declared 2026-11-29 05:45 UTC, before grid v4 or draws 10..19 were run:
ADOPTION_RULE_V4 = ("v4's validation choice (calibrate_batch_passes.py rule) is adopted only if, over draws 10..19 "
                    "(--one-pass, the same groups): (a) no batch raises held-out perplexity by more than 10 % unless "
                    "the one-pass edit of that batch does too, and the variant's largest batch increase is at most "
                    "the one-pass edit's largest; (b) pooled NS >= 0.90; (c) pooled mean perplexity increase <= "
                    "one-pass's + 0.02; (d) harmonic above one-pass's in at least 8 of the 10 draws, and pooled "
                    "harmonic >= one-pass pooled + 0.02")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="public/models/facts-gpt")
    ap.add_argument("--variant", required=True)
    ap.add_argument("--grid", default="v3", choices=("v1", "v2", "v3", "v4"))
    ap.add_argument("--draws", default="1-9")
    ap.add_argument("--one-pass", action="store_true", help="the shipped one-pass edit on the same groups too")
    ap.add_argument("--out", default="training/results/batch-passes-draws.json")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    sh = load_shipped_cpu(args.model, args.threads)
    dev = sh.device
    model, mend, tok = sh.model, sh.mend, sh.tok
    ev = sh.config["eval"]
    _, batch_scale = shipped_scales(sh.ecfg, sh.eval_json)
    v = next(x for x in variants(batch_scale, args.grid) if x["name"] == args.variant)
    runs = [v] + ([variants(batch_scale, "v1")[0]] if args.one_pass else [])  # v1's first = the shipped one pass
    lo, hi = (int(x) for x in args.draws.split("-"))
    prose_ids = [tok.encode(p) for p in sh.kb.prose["heldout"][:ev["n_prose"]]]
    guard_ids = guard_prose_ids(sh.kb, tok)
    base_nll = prose_nll(model, prose_ids, dev)
    refusals, passes, group_ppl = {}, [], []

    def apply_fn(r):
        def f(batch):
            w, n = edit_with_variant(model, mend, batch, dev, tok.eot_id, r, guard_ids, refusals)
            passes.append(n)
            group_ppl.append(math.exp(prose_nll(model, prose_ids, dev, weights=w) - base_nll) - 1)
            return w
        return f

    out = {"about": "A calibrate_batch_passes.py variant on evaluate_more_draws.py's fresh test draws; "
                    "training/evaluate_batch_passes_draws.py, docs/training.md 'Batch edits in more than one pass'.",
           "variant": v, "adoption_rule": ADOPTION_RULE_V4 if args.grid == "v4" else ADOPTION_RULE,
           "runs": [r["name"] for r in runs], "draws": [], "versions": cpu_versions(args.threads)}
    counts = {r["name"]: [] for r in runs}
    for k in range(lo, hi + 1):
        edits = draw_edits(sh, ev, k)
        groups = benchmark_groups(len(edits), ev)["mend.batch10"]
        pre = neighbour_baseline(model, edits, dev, tok.eot_id)
        for r in runs:
            t = time.time()
            refusals.clear(); passes.clear(); group_ppl.clear()
            oc = per_case_outcomes(model, edits, groups, apply_fn(r), pre, prose_ids, base_nll, dev, tok.eot_id)
            agg = aggregate(oc)
            agg["harmonic_es_ps_ns"] = harmonic([agg["es"], agg["ps"], agg["ns"]])
            counts[r["name"]].extend(group_counts(g) for g in oc)
            d = {"draw": k, "run": r["name"], **agg, "mean_passes": sum(passes) / len(passes),
                 "refusals": refusals.get("refused", 0), "prose_refusals": refusals.get("refused_prose", 0),
                 "group_ppl_increase_max": max(group_ppl), "groups_over_10pct": sum(p > 0.10 for p in group_ppl),
                 "group_ppl_increase": [round(p, 4) for p in group_ppl], "seconds": round(time.time() - t, 1)}
            out["draws"].append(d)
            print(json.dumps({x: (round(y, 4) if isinstance(y, float) else y) for x, y in d.items()
                              if x != "group_ppl_increase"}), flush=True)
        out["pooled"] = {}
        for r in runs:
            ds = [x for x in out["draws"] if x["run"] == r["name"]]
            out["pooled"][r["name"]] = {
                **pooled(counts[r["name"]]), "n_groups": len(counts[r["name"]]), "n_draws": len(ds),
                "ppl_increase": sum(x["ppl_increase"] for x in ds) / len(ds),
                "group_ppl_increase_max": max(x["group_ppl_increase_max"] for x in ds),
                "groups_over_10pct": sum(x["groups_over_10pct"] for x in ds)}
        with open(args.out, "w") as f:
            json.dump(out, f, indent=1)
    print(json.dumps(out["pooled"], indent=1))
    return out


if __name__ == "__main__":
    main()
