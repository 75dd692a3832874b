"""Batch-size-dependent test-time step multiplier for a shipped MEND editor (editor_config.json "lr_scale_batch":
the multiplier used when one edit holds more than one fact; docs/training.md "Run 3: batch scale").

    /usr/bin/python3 training/calibrate_batch_scale.py [--model public/models/facts-gpt]
        [--scales 0.9,1.0,1.05,1.1,1.15,1.2,1.25] [--n-val 300] [--out training/results/batch-scale.json]
    /usr/bin/python3 training/calibrate_batch_scale.py --apply training/results/batch-scale.json
        (writes the chosen scale into MODEL/editor_config.json "lr_scale_batch" and, with the results, into
        MODEL/eval.json "mend_lr_scale_batch" / "mend_batch_scale"; then regenerate benchmark.json's MEND batch
        outcomes: export_benchmark.py --only-runs mend.batch10 --outcome-groups all)

The rule, fixed before any test number is looked at: on VALIDATION subjects only, batch-of-10 edits are
evaluated at every grid scale; the chosen batch scale is the LARGEST grid scale whose validation batch-10 NS is
>= 0.90 (the issue's NS target), else the scale with the best validation batch-10 harmonic mean of ES/PS/NS.
Only then are the test batch-10 groups eval.json reports (the same 30 groups of 10) evaluated, at the chosen scale
and at the shipped lr_scale (the "before" column, re-run on this machine).

Validation edits: benchmark_cases.pipeline_validation_edits (EditSampler seed + 4 on val subjects), run_pipeline.py's draw
with a larger n (the sampler draws in order, so its first eval.n_val = 60 edits, the pipeline's 6 calibration
groups, are a prefix of these; they are reported separately as a check against eval.json's calibration).
Test edits: exactly run_pipeline.py's section 5 draw (seed + 2), checked by the neighbour-prompt fingerprint;
then the relation-balanced test batches of eval.json "balanced" (9 groups of 10), at both scales too.
"""
import argparse
import json
import os
import sys
import time


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mendlab.benchmark_cases import (VALIDATION_SAMPLER_OFFSET, benchmark_groups, check_pipeline_draw,  # noqa: E402
                                     pipeline_test_edits, pipeline_validation_edits)
from mendlab.evaluate import (distinct_subject_groups, evaluate_edits, neighbour_baseline, prose_nll,  # noqa: E402
                              relation_balanced_edits)
from mendlab.export import write_json  # noqa: E402
from mendlab.mend import mend_edit  # noqa: E402
from mendlab.model_folder import cpu_versions, load_shipped_cpu  # noqa: E402

NS_TARGET = 0.90
KEYS = ("es", "ps", "ps_novel", "ns", "harmonic_es_ps_ns", "n_groups", "n_neighbour_prompts")


def choose(grid):
    """The declared rule: the largest scale with validation batch-10 NS >= NS_TARGET, else the best harmonic."""
    ok = [g for g in grid if g["val_batch10"]["ns"] >= NS_TARGET]
    if ok:
        return max(ok, key=lambda g: g["lr_scale"])["lr_scale"], f"largest scale with validation batch-10 NS >= {NS_TARGET}"
    return (max(grid, key=lambda g: g["val_batch10"]["harmonic_es_ps_ns"])["lr_scale"],
            f"no scale has validation batch-10 NS >= {NS_TARGET}: best validation batch-10 harmonic mean")


def apply(results_path, d):
    with open(results_path) as f:
        res = json.load(f)
    chosen = res["chosen_lr_scale_batch"]
    ep, vp = os.path.join(d, "editor_config.json"), os.path.join(d, "eval.json")
    with open(ep) as f:
        ecfg = json.load(f)
    with open(vp) as f:
        ev = json.load(f)
    if ecfg["lr_scale"] != res["single_lr_scale"] or ev["mend_lr_scale"] != res["single_lr_scale"]:
        raise SystemExit("the results were computed for another lr_scale")
    strip = lambda r: {k: v for k, v in r.items() if k != "lr_scale"}
    # lr_scale_batch right after lr_scale
    ecfg = {k2: v2 for k, v in ecfg.items() if k != "lr_scale_batch"
            for k2, v2 in ([(k, v), ("lr_scale_batch", chosen)] if k == "lr_scale" else [(k, v)])}
    ev["mend_lr_scale_batch"] = chosen
    ev["mend_batch_scale"] = {
        "about": "The MEND lr_scale for edits of more than one fact (editor_config.json lr_scale_batch), chosen on "
                 "validation subjects after the pipeline run; the app edits batches at it. mend.batch10 and the other "
                 "batch-10 keys above stay the pipeline's numbers at mend_lr_scale; test_batch10.lr_scale_batch here "
                 "are the app's batch numbers (docs/training.md 'Run 3: a batch lr_scale').",
        "rule": res["rule"], "script": "training/calibrate_batch_scale.py", "versions": res["versions"],
        "validation": {k: res["validation"][k] for k in ("sampler_seed", "n_edits", "n_groups")},
        "grid": [{"lr_scale": g["lr_scale"], "val_batch10": g["val_batch10"]} for g in res["grid"]],
        "chosen": chosen,
        "test_batch10": {"lr_scale_batch": strip(res["test_batch10"]["chosen"]),
                         "lr_scale": strip(res["test_batch10"]["single_scale"])},
        "balanced_test_batch10": {"lr_scale_batch": strip(res["balanced_test_batch10"]["chosen"]),
                                  "lr_scale": strip(res["balanced_test_batch10"]["single_scale"])},
    }
    for path, obj in ((ep, ecfg), (vp, ev)):
        write_json(path, obj)
    print(f"lr_scale_batch {chosen} written to {ep} and {vp}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="public/models/facts-gpt")
    ap.add_argument("--scales", default="0.9,1.0,1.05,1.1,1.15,1.2,1.25")
    ap.add_argument("--n-val", type=int, default=300)
    ap.add_argument("--no-test", action="store_true", help="validation grid and choice only")
    ap.add_argument("--out", default="training/results/batch-scale.json")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--apply", default=None, metavar="RESULTS", help="write a finished run's choice into the model")
    args = ap.parse_args(argv)
    if args.apply:
        return apply(args.apply, args.model)
    d = args.model
    sh = load_shipped_cpu(d, args.threads)
    dev = sh.device
    tok, model, mend, ev_json, seed, kb, enc = sh.tok, sh.model, sh.mend, sh.eval_json, sh.seed, sh.kb, sh.enc
    ev = sh.config["eval"]
    single_scale = ev_json["mend_lr_scale"]

    def mend_apply(batch):
        return mend_edit(model, mend, batch, dev, tok.eot_id)

    out = {"about": "Validation grid for the batch (more than one fact per edit) lr_scale of the shipped editor, "
                    "and test batch-10 at the chosen scale; training/calibrate_batch_scale.py, docs/training.md.",
           "model": d, "rule": f"largest grid scale with validation batch-10 NS >= {NS_TARGET}, else the best "
                               "validation batch-10 harmonic mean of ES/PS/NS (stated before test was evaluated)",
           "single_lr_scale": single_scale,
           "versions": cpu_versions(args.threads)}

    def write():
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(out, f, indent=1)

    # Validation: the pipeline's draw (seed + 4), extended.
    t0 = time.time()
    val_edits = pipeline_validation_edits(kb, enc, tok, args.n_val, seed)
    val_pre = neighbour_baseline(model, val_edits, dev, tok.eot_id)
    val_batch = [list(range(i, i + 10)) for i in range(0, len(val_edits) - 9, 10)]
    n_pipe = ev["n_val"] // 10  # the pipeline's calibration groups (a prefix)
    out["validation"] = {"sampler_seed": seed + VALIDATION_SAMPLER_OFFSET, "n_edits": len(val_edits), "n_groups": len(val_batch),
                         "pipeline_prefix_groups": n_pipe}
    grid = []
    for sc in [float(s) for s in args.scales.split(",")]:
        mend.lr_scale_batch = sc  # every group here has 10 facts
        t = time.time()
        r = evaluate_edits(model, val_edits, val_batch, mend_apply, val_pre, None, 0.0, dev, tok.eot_id)
        rp = evaluate_edits(model, val_edits, val_batch[:n_pipe], mend_apply, val_pre, None, 0.0, dev, tok.eot_id)
        grid.append({"lr_scale": sc, "val_batch10": {k: r[k] for k in KEYS},
                     "val_batch10_pipeline_groups": {k: rp[k] for k in KEYS}, "seconds": round(time.time() - t, 1)})
        print(json.dumps(grid[-1]), flush=True)
        out["grid"] = grid
        write()
    chosen, why = choose(grid)
    out["chosen_lr_scale_batch"], out["chosen_because"] = chosen, why
    out["validation"]["seconds"] = round(time.time() - t0, 1)
    print(f"chosen batch scale {chosen} ({why})", flush=True)
    write()
    if args.no_test:
        return out

    # Test batch-10: run_pipeline.py's section 5 draw and the groups eval.json reports.
    edits = pipeline_test_edits(kb, enc, tok, ev, seed)
    all_groups = benchmark_groups(len(edits), ev, ev_json.get("counts"))
    check_pipeline_draw(edits, all_groups, ev_json["counts"], runs=("mend.batch10",))
    groups = all_groups["mend.batch10"]
    pre = neighbour_baseline(model, edits, dev, tok.eot_id)
    prose_ids = [tok.encode(p) for p in kb.prose["heldout"][:ev["n_prose"]]]
    base_nll = prose_nll(model, prose_ids, dev)
    out["test_batch10"] = {"n_groups": len(groups), "eval_json_gpu": ev_json["mend"]["batch10"]}
    for label, sc in (("chosen", chosen), ("single_scale", single_scale)):
        mend.lr_scale_batch = sc
        r = evaluate_edits(model, edits, groups, mend_apply, pre, prose_ids, base_nll, dev, tok.eot_id)
        out["test_batch10"][label] = {"lr_scale": sc, **{k: r[k] for k in KEYS + ("ppl_increase", "seconds")}}
        print(label, json.dumps(out["test_batch10"][label]), flush=True)
        write()

    # Relation-balanced test batch-10 (eval.json "balanced": sampler seed 7, the pipeline's groups), both scales.
    bal = relation_balanced_edits(kb, enc, tok, kb.subjects("test"), ev["balanced_per_relation"])
    bal_groups = distinct_subject_groups(bal)
    bal_pre = neighbour_baseline(model, bal, dev, tok.eot_id)
    out["balanced_test_batch10"] = {"n_groups": len(bal_groups), "eval_json_gpu": ev_json["balanced"]["mend"]["batch10"]}
    for label, sc in (("chosen", chosen), ("single_scale", single_scale)):
        mend.lr_scale_batch = sc
        r = evaluate_edits(model, bal, bal_groups, mend_apply, bal_pre, prose_ids, base_nll, dev, tok.eot_id)
        out["balanced_test_batch10"][label] = {"lr_scale": sc, **{k: r[k] for k in KEYS + ("ppl_increase", "seconds")}}
        print("balanced", label, json.dumps(out["balanced_test_batch10"][label]), flush=True)
        write()
    return out


if __name__ == "__main__":
    main()
