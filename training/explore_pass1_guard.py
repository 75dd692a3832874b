"""Exploration, no adoption: can a perplexity check on pass 1 itself cut the rare single edit that damages the model?
(docs/training.md "A retry for single edits", last paragraph.)

The mean held-out perplexity increase of a single edit is small (+0.35 % on the pipeline's test edits), but the tail
is long: 2 of those 300 edits raise it by more than 10 %, the worst of 900 fresh test edits by +63 %, the worst of
the 300 validation edits by +244 %. batch_retry's prose guard only checks retry passes. This script asks, on the
VALIDATION edits only (test edits stay untouched for a later, declared test), what a guard on pass 1 would do:
after pass 1, if the perplexity of the app's own held-out prose (the 4 paragraphs batch_retry.prose_guard carries)
rises by more than G, pass 1's step is halved (the same rows and editor output, half the lr_scale) up to twice,
and the edit then goes on as the app's does (the guarded retry). G in {5 %, 10 %}.

    /usr/bin/python3 training/explore_pass1_guard.py [--model public/models/facts-gpt] [--n-val 300]
        [--out training/results/pass1-guard-validation.json]

Reported per variant: ES / PS / NS / harmonic, mean and worst perplexity increase on the validation prose (held-out
paragraphs 64..127, which neither the guard's paragraphs nor any test reads), edits over +10 %, and how often the
guard fired; plus how well the guard's 4 paragraphs predict the 64-paragraph increase (rank correlation over the
shipped edits). An edit the guard does not fire on is the shipped edit, so only those it fires on are re-run.
"""
import argparse
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402

from calibrate_single_scale import validation_prose  # noqa: E402
from evaluate_single_retry import summary  # noqa: E402
from mendlab.benchmark_cases import VALIDATION_SAMPLER_OFFSET, per_case_outcomes, pipeline_validation_edits  # noqa: E402
from mendlab.evaluate import neighbour_baseline, prose_nll  # noqa: E402
from mendlab.mend import capture_rows, mend_edit, mend_edit_passes  # noqa: E402
from mendlab.model_folder import cpu_versions, load_shipped, shipped_scales  # noqa: E402

GUARDS = (0.05, 0.10)
MAX_HALVINGS = 2


def guarded_first_scales(model, mend, e, dev, pad, scale, guard_ids, base_guard_nll, guards):
    """Per guard g: pass 1's lr_scale after the guard, halved while the guard prose rises by more than g (at most
    MAX_HALVINGS times); and the guard's rise at the shipped scale. The edit's rows are captured once and each
    scale's rise is computed once, however many guards share it."""
    rows, _ = capture_rows(model, [(e.prompt_ids, e.target_ids)], mend.edited_weights, dev, pad)
    params = dict(model.named_parameters())
    with torch.no_grad():
        ups = mend.weight_updates(rows, lr_scale=1.0)  # linear in lr_scale: s · ups is the update at scale s
    rises = {}

    def rise(s):
        if s not in rises:
            w = {n: params[n] + s * u for n, u in ups.items()}
            rises[s] = math.exp(prose_nll(model, guard_ids, dev, weights=w) - base_guard_nll) - 1
        return rises[s]

    scales = {}
    for g in guards:
        s = scale
        for _ in range(MAX_HALVINGS):
            if rise(s) <= g:
                break
            s /= 2
        scales[g] = s
    return scales, rise(scale)


def spearman(a, b):
    rank = lambda v: {i: k for k, i in enumerate(sorted(range(len(v)), key=lambda i: v[i]))}
    ra, rb = rank(a), rank(b)
    n = len(a)
    return 1 - 6 * sum((ra[i] - rb[i]) ** 2 for i in range(n)) / (n * (n * n - 1))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="public/models/facts-gpt")
    ap.add_argument("--n-val", type=int, default=300)
    ap.add_argument("--out", default="training/results/pass1-guard-validation.json")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dev = torch.device("cpu")
    sh = load_shipped(args.model, dev)
    model, mend, tok, kb = sh.model, sh.mend, sh.tok, sh.kb
    pad = tok.eot_id
    scale, _ = shipped_scales(sh.ecfg, sh.eval_json)
    r = sh.ecfg.get("batch_retry") or {}
    if r.get("min_facts") != 1:
        raise SystemExit("the shipped editor does not retry single edits: this exploration assumes it does")
    retry = (r["prose_guard"]["prose_ids"], float(r["prose_guard"]["max_increase"]))
    guard_ids = retry[0]  # the app's held-out prose, as the editor config carries it for the retry's guard
    base_guard = prose_nll(model, guard_ids, dev)
    edits = pipeline_validation_edits(kb, sh.enc, tok, args.n_val, sh.seed)
    pre = neighbour_baseline(model, edits, dev, pad)
    prose, where = validation_prose(kb, sh.config["eval"]["n_prose"], "heldout-unused")
    prose = [tok.encode(p) for p in prose]
    base_nll = prose_nll(model, prose, dev)
    t0 = time.time()
    outs = {"shipped": [], **{f"guard{g}": [] for g in GUARDS}}
    fired = {f"guard{g}": 0 for g in GUARDS}
    guard_rise = []
    for i, e in enumerate(edits):
        ship = per_case_outcomes(model, edits, [[i]], lambda b: mend_edit(model, mend, b, dev, pad), pre, prose,
                                 base_nll, dev, pad)[0]
        outs["shipped"].append(ship)
        scales, r0 = guarded_first_scales(model, mend, e, dev, pad, scale, guard_ids, base_guard, GUARDS)
        guard_rise.append(r0)
        for g, s in scales.items():
            name = f"guard{g}"
            if s == scale:
                outs[name].append(ship)
                continue
            fired[name] += 1
            w, _ = mend_edit_passes(model, mend, [e], dev, pad, int(r["max_passes"]), s, float(r["lr_scale"]),
                                    trust_region=bool(r.get("trust_region")), prose_guard=retry)
            outs[name].append(per_case_outcomes(model, edits, [[i]], lambda b: w, pre, prose, base_nll, dev, pad)[0])
    res = {}
    for name, oc in outs.items():
        res[name] = summary(oc)
        res[name]["edits_over_10pct"] = sum(o["ppl_increase"] > 0.10 for o in oc)
        res[name]["edits_over_5pct"] = sum(o["ppl_increase"] > 0.05 for o in oc)
        if name != "shipped":
            res[name]["guard_fired"] = fired[name]
    val_ppl = [o["ppl_increase"] for o in outs["shipped"]]
    out = {"about": "Exploration on validation edits only: a perplexity guard on pass 1 of a single edit "
                    "(training/explore_pass1_guard.py); nothing adopted.",
           "model": args.model, "lr_scale": scale, "max_halvings": MAX_HALVINGS, "versions": cpu_versions(args.threads),
           "validation": {"sampler_seed": sh.seed + VALIDATION_SAMPLER_OFFSET, "n_edits": len(edits), "prose": where,
                          "seconds": round(time.time() - t0, 1)},
           "variants": res,
           "guard_vs_validation_prose": {
               "spearman": round(spearman(guard_rise, val_ppl), 4),
               "guard_rise_of_edits_over_10pct": [round(guard_rise[i], 4) for i, v in enumerate(val_ppl) if v > 0.10],
               "largest_guard_rises": sorted((round(x, 4) for x in guard_rise), reverse=True)[:10]}}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
