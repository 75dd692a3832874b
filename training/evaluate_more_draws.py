"""The held-out edit benchmark on more test draws: how precise are eval.json's numbers, and is MEND's gap to FT real?

eval.json scores one draw of test edits: 300 single edits, cut into 30 batches of 10. With 30 batches the batch-10
ES and NS carry a 95 % interval of about ±0.03, so 0.89 and 0.91 cannot be told apart, and the single-edit MEND/FT
harmonic means (0.976 / 0.983) differ by less than their own noise may be. There are only 357 test subjects and a
draw never repeats a subject, so more edits can only come from more draws over the same subjects: each further draw
k is EditSampler(seed + 2 + 1000·k) on the test subjects (a new relation per subject where it has several, a new
counterfactual object, new edit template, paraphrases and neighbours, new batch-mates). Draw 0 is the pipeline's own
draw (checked by eval.json's neighbour-prompt fingerprint), so its numbers are eval.json's.

    /usr/bin/python3 training/evaluate_more_draws.py [--model public/models/facts-gpt] [--batch-draws 10]
        [--single-draws 3] [--first-draw 0] [--runs mend.single,mend.batch10,ft.single,ft.batch10]
        [--out training/results/more-draws.json]

MEND runs as the app edits (mend_edit: the shipped lr_scale / lr_scale_batch and batch_retry), FT at eval.json's FT
settings, both on identical edits and groups. Perplexity is scored for batch groups only (it dominates the cost of
single edits on a CPU; eval.json has it). Reported: per draw and pooled ES / PS / NS / harmonic mean, 95 % percentile
intervals from a bootstrap over groups (a batch of 10, or one single edit), and for MEND − FT the paired difference
of the pooled harmonic means (the same resampled groups for both). Draws share subjects, so the pooled interval is somewhat too narrow; the
spread of the per-draw numbers is printed beside it.
"""
import argparse
import json
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from mendlab.benchmark_cases import (aggregate, benchmark_groups, check_pipeline_draw,  # noqa: E402
                                     per_case_outcomes, pipeline_test_edits)
from mendlab.edits import EditSampler  # noqa: E402
from mendlab.evaluate import harmonic, neighbour_baseline, prose_nll  # noqa: E402
from mendlab.finetune import finetune_weights  # noqa: E402
from mendlab.mend import mend_edit  # noqa: E402
from mendlab.model_folder import cpu_versions, load_shipped_cpu, shipped_scales  # noqa: E402

RUNS = ("mend.single", "mend.batch10", "ft.single", "ft.batch10")
DRAW_SEED_STRIDE = 1000


def draw_edits(sh, ev, k):
    """Draw k of the test edits; draw 0 is run_pipeline.py's own."""
    if k == 0:
        return pipeline_test_edits(sh.kb, sh.enc, sh.tok, ev, sh.seed)
    n = max(ev["n_single"], ev["n_batch_groups"] * 10)
    return EditSampler(sh.kb, sh.enc, sh.tok, sh.seed + 2 + DRAW_SEED_STRIDE * k).eval_edits(sh.kb.subjects("test"), n)


def group_counts(group):
    """(es hits, es n, ps hits, ps n, ns hits, ns n) of one group's per-case outcomes."""
    c = [0, 0, 0, 0, 0, 0]
    for r in group["edits"]:
        c[0] += r["es"]; c[1] += 1
        for v in r["ps"]:
            c[2] += v; c[3] += 1
        for v in r["ns"]:
            if v is not None:
                c[4] += v; c[5] += 1
    return c


def ns_by_kind(edits, groups, outcomes):
    """{neighbour kind: [unchanged, n]} over the groups' neighbour prompts (same_relation: the edited relation for
    other subjects; same_subject: other relations of the edited subject): where an editor's locality fails."""
    acc = {}
    for g, r in zip(groups, outcomes):
        for i, o in zip(g, r["edits"]):
            for nb, v in zip(edits[i].neighbours, o["ns"]):
                if v is not None:
                    c = acc.setdefault(nb[0], [0, 0])
                    c[0] += v; c[1] += 1
    return acc


def kind_rates(acc):
    return {k: {"ns": c[0] / c[1], "n": c[1]} for k, c in sorted(acc.items())}


def pooled(counts):
    """ES / PS / NS / harmonic of summed group counts (the same means evaluate_edits takes over all prompts)."""
    s = [sum(c[i] for c in counts) for i in range(6)]
    es, ps, ns = (s[0] / s[1] if s[1] else 0.0), (s[2] / s[3] if s[3] else 0.0), (s[4] / s[5] if s[5] else 0.0)
    h = 3.0 / (1 / es + 1 / ps + 1 / ns) if min(es, ps, ns) > 0 else 0.0  # unrounded, for paired differences
    return {"es": es, "ps": ps, "ns": ns, "harmonic_es_ps_ns": h}


def bootstrap(counts_by_run, n_resamples=2000, seed=0):
    """95 % percentile intervals of each run's pooled metrics, resampling groups (the same indices for every run,
    which must hold the same groups: so differences between runs are paired)."""
    runs = list(counts_by_run)
    n = len(counts_by_run[runs[0]])
    assert all(len(counts_by_run[r]) == n for r in runs), "paired bootstrap needs the same groups in every run"
    rng = random.Random(seed)
    samples = {r: {k: [] for k in ("es", "ps", "ns", "harmonic_es_ps_ns")} for r in runs}
    diffs = {}
    for _ in range(n_resamples):
        idx = [rng.randrange(n) for _ in range(n)]
        got = {r: pooled([counts_by_run[r][i] for i in idx]) for r in runs}
        for r in runs:
            for k, v in got[r].items():
                samples[r][k].append(v)
        if len(runs) == 2:
            diffs.setdefault("harmonic_es_ps_ns", []).append(got[runs[0]]["harmonic_es_ps_ns"] - got[runs[1]]["harmonic_es_ps_ns"])
            for k in ("es", "ps", "ns"):
                diffs.setdefault(k, []).append(got[runs[0]][k] - got[runs[1]][k])

    def interval(v):
        v = sorted(v)
        return [round(v[int(0.025 * (len(v) - 1))], 4), round(v[int(0.975 * (len(v) - 1))], 4)]

    out = {r: {k: interval(v) for k, v in samples[r].items()} for r in runs}
    if diffs:
        out[f"{runs[0]} - {runs[1]}"] = {k: {"interval": interval(v), "share_above_0": round(sum(x > 0 for x in v) / len(v), 4)}
                                         for k, v in diffs.items()}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="public/models/facts-gpt")
    ap.add_argument("--batch-draws", type=int, default=10, help="draws whose 30 batches of 10 are evaluated")
    ap.add_argument("--single-draws", type=int, default=3, help="draws whose 300 single edits are evaluated")
    ap.add_argument("--first-draw", type=int, default=0, help="start at draw F (draws F, F+1, ...; default 0)")
    ap.add_argument("--runs", default=",".join(RUNS))
    ap.add_argument("--resamples", type=int, default=2000)
    ap.add_argument("--out", default="training/results/more-draws.json")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    runs = [r for r in args.runs.split(",") if r]
    if not set(runs) <= set(RUNS):
        raise SystemExit(f"--runs: choose from {', '.join(RUNS)}")
    sh = load_shipped_cpu(args.model, args.threads)
    dev = sh.device
    model, mend, tok, ev_json = sh.model, sh.mend, sh.tok, sh.eval_json
    ev = sh.config["eval"]
    single_scale, batch_scale = shipped_scales(sh.ecfg, ev_json)
    ft_cfg = ev_json["ft_config"]
    names = mend.edited_weights
    apply_fns = {"mend": lambda b: mend_edit(model, mend, b, dev, tok.eot_id),
                 "ft": lambda b: finetune_weights(model, b, names, ft_cfg["steps"], ft_cfg["lr"], dev, tok.eot_id)}
    prose_ids = [tok.encode(p) for p in sh.kb.prose["heldout"][:ev["n_prose"]]]
    base_nll = prose_nll(model, prose_ids, dev)

    out = {"about": "MEND and FT on more draws of held-out test edits (draw 0 = eval.json's); "
                    "training/evaluate_more_draws.py, docs/training.md 'How precise are the test numbers'",
           "model": args.model, "mend_lr_scale": single_scale, "mend_lr_scale_batch": batch_scale,
           "mend_batch_retry": {k: (v if k != "prose_guard" else {"max_increase": v["max_increase"]})
                                for k, v in (sh.ecfg.get("batch_retry") or {}).items()} or None,
           "mend_first_pass_guard": {k: v for k, v in (sh.ecfg.get("first_pass_guard") or {}).items()
                                     if k != "prose_ids"} or None,
           "ft": {"steps": ft_cfg["steps"], "lr": ft_cfg["lr"]}, "draw_seeds": {}, "versions": cpu_versions(args.threads),
           "draws": {r: [] for r in runs}}

    def write():
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(out, f, indent=1)

    counts = {r: [] for r in runs}
    kinds = {}  # run -> {neighbour kind: [unchanged, n]} over every draw
    for k in range(args.first_draw, args.first_draw + max(args.batch_draws, args.single_draws)):
        edits = draw_edits(sh, ev, k)
        groups = benchmark_groups(len(edits), ev)  # every group, no time budget
        if k == 0:
            check_pipeline_draw(edits, benchmark_groups(len(edits), ev, ev_json["counts"]), ev_json["counts"],
                                runs=("mend.single", "mend.batch10"))
        out["draw_seeds"][k] = sh.seed + 2 + (DRAW_SEED_STRIDE * k if k else 0)
        pre = neighbour_baseline(model, edits, dev, tok.eot_id)
        for run in runs:
            method, kind = run.split(".")
            if k - args.first_draw >= (args.batch_draws if kind == "batch10" else args.single_draws):
                continue
            t = time.time()
            oc = per_case_outcomes(model, edits, groups[f"mend.{kind}"], apply_fns[method], pre,
                                   prose_ids if kind == "batch10" else None, base_nll, dev, tok.eot_id)
            agg = aggregate(oc)
            agg["harmonic_es_ps_ns"] = harmonic([agg["es"], agg["ps"], agg["ns"]])
            draw_kinds = ns_by_kind(edits, groups[f"mend.{kind}"], oc)
            agg["ns_by_kind"] = kind_rates(draw_kinds)
            for k2, (hits, n) in draw_kinds.items():  # summed over the draws for the pooled split
                total = kinds.setdefault(run, {}).setdefault(k2, [0, 0])
                total[0] += hits; total[1] += n
            agg["seconds"] = round(time.time() - t, 1)
            out["draws"][run].append({"draw": k, **agg})
            counts[run].extend(group_counts(g) for g in oc)
            print(f"draw {k} {run}: " + json.dumps({x: (round(v, 4) if isinstance(v, float) else v) for x, v in agg.items()}),
                  flush=True)
            write()

    out["pooled"], out["intervals"] = {}, {}
    for run in runs:
        per = out["draws"][run]
        if not per:
            continue
        p = pooled(counts[run])
        p["n_groups"], p["n_draws"] = len(counts[run]), len(per)
        ppl = [d["ppl_increase"] for d in per if d["ppl_increase"] is not None]
        if ppl:
            p["ppl_increase"] = sum(ppl) / len(ppl)
        p["per_draw_range"] = {x: [min(d[x] for d in per), max(d[x] for d in per)] for x in ("es", "ps", "ns", "harmonic_es_ps_ns")}
        p["ns_by_kind"] = kind_rates(kinds.get(run, {}))
        out["pooled"][run] = p
    for kind in ("single", "batch10"):
        pair = [r for r in (f"mend.{kind}", f"ft.{kind}") if counts.get(r)]
        n = min(len(counts[r]) for r in pair) if pair else 0
        if n:  # paired on the groups both runs evaluated (the first draws)
            out["intervals"][kind] = bootstrap({r: counts[r][:n] for r in pair}, args.resamples)
            out["intervals"][kind]["n_groups"] = n
    write()
    print(json.dumps({"pooled": out["pooled"], "intervals": out["intervals"]}, indent=1))
    return out


if __name__ == "__main__":
    main()
