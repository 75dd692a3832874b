"""Can a perplexity check on pass 1 itself cut the rare single edit that damages the model? Validation first, then a
test stage on fresh draws by the rule declared after validation. (docs/training.md "A retry for single edits".)

The mean held-out perplexity increase of a single edit is small (+0.35 % on the pipeline's test edits), but the tail
is long: 2 of those 300 edits raise it by more than 10 %, the worst of 900 fresh test edits by +63 %, the worst of
the 300 validation edits by +244 %. batch_retry's prose guard only checks retry passes. This script asks, on the
VALIDATION edits only (test edits stay untouched for a later, declared test), what a guard on pass 1 would do:
after pass 1, if the perplexity of the app's own held-out prose (the 4 paragraphs batch_retry.prose_guard carries)
rises by more than G, pass 1's step is halved (the same rows and editor output, half the lr_scale) up to twice,
and the edit then goes on as the app's does (the guarded retry). G in {5 %, 10 %}.

    /usr/bin/python3 training/evaluate_pass1_guard.py [--model public/models/facts-gpt] [--n-val 300]
        [--out training/results/pass1-guard-validation.json]
    /usr/bin/python3 training/evaluate_pass1_guard.py --stage test [--draws 23-25] [--limit N]
        [--out training/results/pass1-guard-test.json]
    /usr/bin/python3 training/evaluate_pass1_guard.py --apply
        (after an adopted test stage: writes "first_pass_guard" into MODEL/editor_config.json and eval.json
        mend_first_pass_guard, recomputes every single-edit MEND key of eval.json on its own test edits with it, and
        records both stages under "mend_first_pass_guard_evaluation"; then export_benchmark.py --only-runs
        mend.single --outcome-groups all)

Reported per variant: ES / PS / NS / harmonic, mean and worst perplexity increase on the validation prose (held-out
paragraphs 64..127, which neither the guard's paragraphs nor any test reads), edits over +10 %, and how often the
guard fired; plus how well the guard's 4 paragraphs predict the 64-paragraph increase (rank correlation over the
shipped edits). An edit the guard does not fire on is the shipped edit, so only those it fires on are re-run.

The test stage (TEST_RULE, written down after validation and before any test number) compares the app's edit with the
app's edit behind the G = 5 % guard on draws 23..25 of evaluate_more_draws.draw_edits, which no evaluation has drawn,
with perplexity on the test prose (held-out paragraphs 0..63).
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
from evaluate_more_draws import DRAW_SEED_STRIDE, bootstrap, draw_edits, group_counts  # noqa: E402
from evaluate_single_retry import NS_TARGET, PPL_WRECK, recompute_single_edit_keys, summary  # noqa: E402
from mendlab.benchmark_cases import VALIDATION_SAMPLER_OFFSET, per_case_outcomes, pipeline_validation_edits  # noqa: E402
from mendlab.evaluate import neighbour_baseline, prose_nll  # noqa: E402
from mendlab.mend import capture_rows, mend_edit, mend_edit_passes  # noqa: E402
from mendlab.export import write_json  # noqa: E402
from mendlab.model_folder import cpu_versions, load_shipped_cpu, shipped_scales  # noqa: E402

GUARDS = (0.05, 0.10)
MAX_HALVINGS = 2
TEST_GUARD, HARMONIC_SLACK = 0.05, 0.003
TEST_RULE = ("G = 5 %, at most two halvings, then the app's retry; adopted only if, on fresh test draws 23..25 (900 "
             "single edits, test prose heldout[0:64]): (a) fewer edits over +10 % than the app's edit of the same facts, "
             "and none pushed over +10 % by the guard; (b) pooled harmonic >= the app's - 0.003; (c) pooled NS >= 0.95; "
             "(d) mean perplexity increase <= the app's (declared in docs/training.md 2026-11-29 10:50 UTC, before any "
             "test number)")


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


def score_edits(model, mend, edits, pre, prose, base_nll, dev, pad, scale, retry, guard_ids, base_guard, guards):
    """Per variant ("shipped" = the app's edit, then f"guard{g}"): per-edit outcome groups; how often each guard
    fired; the guard prose's rise under each shipped pass 1. Only the edits a guard fires on are re-run."""
    outs = {"shipped": [], **{f"guard{g}": [] for g in guards}}
    fired = {f"guard{g}": 0 for g in guards}
    guard_rise = []
    for i, e in enumerate(edits):
        ship = per_case_outcomes(model, edits, [[i]], lambda b: mend_edit(model, mend, b, dev, pad), pre, prose,
                                 base_nll, dev, pad)[0]
        outs["shipped"].append(ship)
        scales, r0 = guarded_first_scales(model, mend, e, dev, pad, scale, guard_ids, base_guard, guards)
        guard_rise.append(r0)
        for g, s in scales.items():
            name = f"guard{g}"
            if s == scale:
                outs[name].append(ship)
                continue
            fired[name] += 1
            w, _ = mend_edit_passes(model, mend, [e], dev, pad, int(mend.batch_retry["max_passes"]), s,
                                    float(mend.batch_retry["lr_scale"]),
                                    trust_region=bool(mend.batch_retry.get("trust_region")), prose_guard=retry)
            outs[name].append(per_case_outcomes(model, edits, [[i]], lambda b: w, pre, prose, base_nll, dev, pad)[0])
    return outs, fired, guard_rise


def variant_summary(oc):
    s = summary(oc)
    s["edits_over_10pct"] = sum(o["ppl_increase"] > PPL_WRECK for o in oc)
    s["edits_over_5pct"] = sum(o["ppl_increase"] > 0.05 for o in oc)
    return s


def adopt(guard_sum, app_sum, guard_oc, app_oc):
    """TEST_RULE -> (adopted, [reasons it failed])."""
    fails = []
    if not guard_sum["edits_over_10pct"] < app_sum["edits_over_10pct"]:
        fails.append(f"(a) edits over +10 %: {guard_sum['edits_over_10pct']} with the guard, not fewer than the "
                     f"app's {app_sum['edits_over_10pct']}")
    pushed = sum(g["ppl_increase"] > PPL_WRECK and a["ppl_increase"] <= PPL_WRECK for g, a in zip(guard_oc, app_oc))
    if pushed:
        fails.append(f"(a) the guard pushed {pushed} edits over +10 %")
    if guard_sum["harmonic_es_ps_ns"] < app_sum["harmonic_es_ps_ns"] - HARMONIC_SLACK:
        fails.append(f"(b) pooled harmonic {guard_sum['harmonic_es_ps_ns']:.5f} < the app's "
                     f"{app_sum['harmonic_es_ps_ns']:.5f} - {HARMONIC_SLACK}")
    if guard_sum["ns"] < NS_TARGET:
        fails.append(f"(c) pooled NS {guard_sum['ns']:.4f} < {NS_TARGET}")
    if guard_sum["ppl_increase"] > app_sum["ppl_increase"]:
        fails.append(f"(d) mean ppl increase {guard_sum['ppl_increase']} > the app's {app_sum['ppl_increase']}")
    return not fails, fails


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="public/models/facts-gpt")
    ap.add_argument("--stage", choices=("validation", "test"), default="validation")
    ap.add_argument("--n-val", type=int, default=300)
    ap.add_argument("--draws", default="23-25", help="test stage: the fresh test draws")
    ap.add_argument("--limit", type=int, default=None, help="test stage: only the first N edits of each draw (smoke runs)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--apply", action="store_true", help="write an adopted guard into the model folder")
    ap.add_argument("--validation-results", default="training/results/pass1-guard-validation.json")
    ap.add_argument("--test-results", default="training/results/pass1-guard-test.json")
    args = ap.parse_args(argv)
    if args.apply:
        return apply(args.model, args.validation_results, args.test_results, args.threads)
    sh = load_shipped_cpu(args.model, args.threads)
    dev = sh.device
    model, mend, tok, kb = sh.model, sh.mend, sh.tok, sh.kb
    pad = tok.eot_id
    scale, _ = shipped_scales(sh.ecfg, sh.eval_json)
    r = sh.ecfg.get("batch_retry") or {}
    if r.get("min_facts") != 1:
        raise SystemExit("the shipped editor does not retry single edits: this evaluation assumes it does")
    if sh.ecfg.get("first_pass_guard"):
        raise SystemExit("the shipped editor already guards pass 1 (first_pass_guard): these stages compare the app's "
                         "edit without the guard against the edit with it")
    retry = (r["prose_guard"]["prose_ids"], float(r["prose_guard"]["max_increase"]))
    guard_ids = retry[0]  # the app's held-out prose, as the editor config carries it for the retry's guard
    base_guard = prose_nll(model, guard_ids, dev)
    out_path = args.out or f"training/results/pass1-guard-{args.stage}.json"
    common = (dev, pad, scale, retry, guard_ids, base_guard)

    def write(out):
        os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
        with open(out_path, "w") as f:
            json.dump(out, f, indent=1)

    if args.stage == "test":
        return test_stage(sh, args, common, write)
    edits = pipeline_validation_edits(kb, sh.enc, tok, args.n_val, sh.seed)
    pre = neighbour_baseline(model, edits, dev, pad)
    prose, where = validation_prose(kb, sh.config["eval"]["n_prose"], "heldout-unused")
    prose = [tok.encode(p) for p in prose]
    base_nll = prose_nll(model, prose, dev)
    t0 = time.time()
    outs, fired, guard_rise = score_edits(model, mend, edits, pre, prose, base_nll, *common, GUARDS)
    res = {name: {**variant_summary(oc), **({"guard_fired": fired[name]} if name in fired else {})}
           for name, oc in outs.items()}
    val_ppl = [o["ppl_increase"] for o in outs["shipped"]]
    out = {"about": "Exploration on validation edits only: a perplexity guard on pass 1 of a single edit "
                    "(training/evaluate_pass1_guard.py); nothing adopted.",
           "model": args.model, "lr_scale": scale, "max_halvings": MAX_HALVINGS, "versions": cpu_versions(args.threads),
           "validation": {"sampler_seed": sh.seed + VALIDATION_SAMPLER_OFFSET, "n_edits": len(edits), "prose": where,
                          "seconds": round(time.time() - t0, 1)},
           "variants": res,
           "guard_vs_validation_prose": {
               "spearman": round(spearman(guard_rise, val_ppl), 4),
               "guard_rise_of_edits_over_10pct": [round(guard_rise[i], 4) for i, v in enumerate(val_ppl) if v > 0.10],
               "largest_guard_rises": sorted((round(x, 4) for x in guard_rise), reverse=True)[:10]}}
    write(out)
    print(json.dumps(out, indent=1))
    return out


def test_stage(sh, args, common, write):
    """TEST_RULE on fresh test draws: the app's edit against the app's edit with the pass-1 guard at TEST_GUARD."""
    model, mend, tok, kb = sh.model, sh.mend, sh.tok, sh.kb
    dev, pad, scale, retry, guard_ids, base_guard = common
    ev = sh.config["eval"]
    prose = [tok.encode(p) for p in kb.prose["heldout"][:ev["n_prose"]]]
    base_nll = prose_nll(model, prose, dev)
    lo, hi = (int(x) for x in args.draws.split("-"))
    name = f"guard{TEST_GUARD}"
    out = {"about": "Test stage of a perplexity guard on pass 1 of a single edit (training/evaluate_pass1_guard.py, "
                    "docs/training.md 'A retry for single edits')", "model": args.model, "lr_scale": scale,
           "guard": TEST_GUARD, "max_halvings": MAX_HALVINGS, "test_rule": TEST_RULE,
           "versions": cpu_versions(args.threads), "prose": f"heldout[0:{ev['n_prose']}]", "draws": []}
    all_oc = {"app": [], "guard": []}
    for k in range(lo, hi + 1):
        edits = draw_edits(sh, ev, k)[:args.limit]
        pre = neighbour_baseline(model, edits, dev, pad)
        t = time.time()
        outs, fired, rise = score_edits(model, mend, edits, pre, prose, base_nll, dev, pad, scale, retry, guard_ids,
                                        base_guard, (TEST_GUARD,))
        row = {"draw": k, "seed": sh.seed + 2 + DRAW_SEED_STRIDE * k, "n_edits": len(edits),
               "seconds": round(time.time() - t, 1), "app": variant_summary(outs["shipped"]),
               "guard": {**variant_summary(outs[name]), "guard_fired": fired[name]},
               "fired_edits": [{"subject": e.subject, "relation": e.relation, "prompt": e.prompt, "new_object": e.new_object,
                                "guard_rise": round(rise[i], 4), "app_ppl": round(outs["shipped"][i]["ppl_increase"], 4),
                                "guard_ppl": round(outs[name][i]["ppl_increase"], 4)}
                               for i, e in enumerate(edits) if outs[name][i] is not outs["shipped"][i]]}
        all_oc["app"] += outs["shipped"]
        all_oc["guard"] += outs[name]
        out["draws"].append(row)
        print(json.dumps(row), flush=True)
        write(out)
    pool = {n: variant_summary(oc) for n, oc in all_oc.items()}
    pool["guard"]["guard_fired"] = sum(d["guard"]["guard_fired"] for d in out["draws"])
    out["pooled"] = pool
    out["adopted"], out["adoption_failures"] = adopt(pool["guard"], pool["app"], all_oc["guard"], all_oc["app"])
    counts = {n: [group_counts(g) for g in all_oc[n]] for n in ("guard", "app")}  # bootstrap reports first - second
    out["intervals"] = {"guard - app": bootstrap(counts)}
    write(out)
    print(json.dumps({"pooled": pool, "adopted": out["adopted"], "failures": out["adoption_failures"],
                      "intervals": out["intervals"]}, indent=1))
    return out


def apply(d, val_path, test_path, threads):
    """Writes an adopted pass-1 guard into the model folder (see the module docstring's --apply)."""
    with open(val_path) as f:
        val = json.load(f)
    with open(test_path) as f:
        test = json.load(f)
    if not test.get("adopted"):
        raise SystemExit("the test stage did not adopt the guard: nothing to write")
    sh = load_shipped_cpu(d, threads)
    dev = sh.device
    if sh.ecfg.get("first_pass_guard"):
        print("the editor already guards pass 1: nothing to write")
        return None
    r = sh.ecfg.get("batch_retry") or {}
    if r.get("min_facts") != 1 or "prose_guard" not in r:
        raise SystemExit("the guard was evaluated on an editor that retries single edits with a prose guard; this one does not")
    # the prose the evaluation's guard read: the retry's prose guard's, the app's 4 held-out paragraphs
    new = {"max_increase": test["guard"], "max_halvings": test["max_halvings"], "prose_ids": r["prose_guard"]["prose_ids"]}
    sh.mend.first_pass_guard = new
    previous = recompute_single_edit_keys(sh, dev)
    ev_json = sh.eval_json
    ev_json["mend_first_pass_guard"] = new
    ev_json["mend_first_pass_guard_evaluation"] = {
        "about": "Pass 1 of a single-fact edit is halved (at most max_halvings times) while it raises the perplexity of "
                 "the guard's prose by more than max_increase (editor_config.json first_pass_guard). Explored on "
                 "validation, adopted on fresh test draws 23..25 by a rule declared before running; the single-edit "
                 "MEND keys above were recomputed with it on the same test edits (docs/training.md 'A guard on pass 1').",
        "script": "training/evaluate_pass1_guard.py", "test_rule": test["test_rule"], "versions": test["versions"],
        "validation": {**val["validation"], "variants": val["variants"]},
        "test_draws": {"draws": [{k: x for k, x in row.items() if k != "fired_edits"} for row in test["draws"]],
                       "pooled": test["pooled"], "intervals": test["intervals"], "adopted": test["adopted"]},
        "eval_json_single": previous,
    }
    ecfg = dict(sh.ecfg)
    ecfg["first_pass_guard"] = new
    write_json(os.path.join(d, "editor_config.json"), ecfg)
    write_json(os.path.join(d, "eval.json"), ev_json)
    print(f"first_pass_guard written to {d}/editor_config.json and eval.json")
    return ev_json


if __name__ == "__main__":
    main()
