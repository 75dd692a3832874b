"""The held-out edit benchmark as data (docs/eval.md): the exact cases evaluate.evaluate_edits scored, so the
TypeScript harness (`npm run eval`) can replay the same benchmark through its own engine and editors.

What makes it "the same": the edits come from EditSampler(kb, enc, tok, seed + 2).eval_edits(test subjects, n)
exactly as run_pipeline.py draws them (same RNG order), the groups are the ones eval.json reports as evaluated
(the GPU run's time budget can cut a list short: eval.json "counts" says how many groups ran), and the prose is
the first n_prose held-out paragraphs. Token ids are stored so both sides score identical sequences; texts are
kept beside them for people (and so the TS tokenizer can be checked against them).

Optionally, per-case outcomes of *this* Python implementation (on whatever device runs the export) are stored
too, so any subset of the benchmark can be compared case by case, not only in aggregate.
"""
import json
import math
import os
import time

import torch

from .evaluate import argmax_match, neighbour_baseline, prose_nll

FORMAT = "mendlab-benchmark"
VERSION = 1
RUNS = ("mend.single", "mend.batch10", "ft.single", "ft.batch10")


def benchmark_groups(n_edits, eval_cfg, counts=None):
    """Groups per run as run_pipeline.py builds them, cut to the number eval.json says were evaluated."""
    n_batch = eval_cfg["n_batch_groups"] * 10
    single = [[i] for i in range(min(eval_cfg["n_single"], n_edits))]
    batch = [list(range(i, i + 10)) for i in range(0, min(n_batch, n_edits) - 9, 10)]
    groups = {"mend.single": single, "mend.batch10": batch,
              "ft.single": single[:eval_cfg["ft_single"]], "ft.batch10": batch[:eval_cfg["ft_batch_groups"]]}
    if counts:
        for run in RUNS:
            m, k = run.split(".")
            groups[run] = groups[run][:counts[m][k]["n_groups"]]
    return groups


def pipeline_test_edits(kb, enc, tok, eval_cfg, seed):
    """run_pipeline.py's test edits (its section 5): the same sampler seed and count, so the same edits in order."""
    from .edits import EditSampler
    n = max(eval_cfg["n_single"], eval_cfg["n_batch_groups"] * 10)
    return EditSampler(kb, enc, tok, seed + 2).eval_edits(kb.subjects("test"), n)


VALIDATION_SAMPLER_OFFSET = 4


def pipeline_validation_edits(kb, enc, tok, n, seed):
    """run_pipeline.py's lr_scale calibration edits on validation subjects (seed + 4). The sampler draws in order, so
    the first eval.n_val of a larger n are the pipeline's own: the scale calibration scripts extend its draw."""
    from .edits import EditSampler
    return EditSampler(kb, enc, tok, seed + VALIDATION_SAMPLER_OFFSET).eval_edits(kb.subjects("val"), n)


def check_pipeline_draw(edits, groups, counts, runs=RUNS, log=None):
    """Stops unless `edits` cut into `groups` give eval.json's neighbour-prompt count for each run: the count
    fingerprints the draw, so a script that rebuilds the edits evaluates the ones the pipeline evaluated."""
    for run in runs:
        m, k = run.split(".")
        want = counts[m][k]["n_neighbour_prompts"]
        got = neighbour_prompts(edits, groups[run])
        if log:
            log(f"{run}: {got} neighbour prompts (eval.json: {want}){'' if got == want else '  MISMATCH'}")
        if got != want:
            raise SystemExit(f"the reconstructed test edits differ from the ones the pipeline evaluated ({run})")


def neighbour_prompts(edits, groups):
    """How many neighbour prompts evaluate_edits scores for these groups (it skips neighbours edited in the same
    group): eval.json "counts" records it, so it fingerprints the draw."""
    n = 0
    for g in groups:
        edited = {(edits[i].subject, edits[i].relation) for i in g}
        n += sum((nb[1], nb[2]) not in edited for i in g for nb in edits[i].neighbours)
    return n


def edit_case(e):
    return {
        "subject": e.subject, "relation": e.relation, "true_object": e.true_object, "new_object": e.new_object,
        "prompt": e.prompt, "prompt_ids": e.prompt_ids, "target_ids": e.target_ids,
        "paraphrases": [{"text": t, "ids": ids} for t, ids in e.paraphrases],
        "novel": [{"text": t, "ids": ids} for t, ids in e.novel],
        "neighbours": [{"kind": k, "subject": s, "relation": r, "text": t, "ids": ids, "true_target_ids": tgt}
                       for k, s, r, t, ids, tgt in e.neighbours],
    }


@torch.no_grad()
def per_case_outcomes(model, edits, groups, apply_fn, pre_answers, prose_ids, base_nll, device, pad_id):
    """evaluate_edits, keeping every flag: per group, per edit in the group, es (0/1), ps/psn/ns lists (ns is
    None for a neighbour that is itself edited in the same group, which evaluate_edits skips), and the group's
    perplexity increase (None without prose_ids). Uses the same scoring functions, so the aggregates equal
    evaluate_edits'."""
    out = []
    for g in groups:
        batch = [edits[i] for i in g]
        w = apply_fn(batch)
        edited = {(e.subject, e.relation) for e in batch}
        pairs, where = [], []
        rec = []
        for j, i in enumerate(g):
            e = edits[i]
            r = {"es": None, "ps": [None] * len(e.paraphrases), "psn": [None] * len(e.novel),
                 "ns": [None] * len(e.neighbours)}
            rec.append(r)
            pairs.append((e.prompt_ids, e.target_ids)); where.append((j, "es", None))
            for k, (_, p) in enumerate(e.paraphrases):
                pairs.append((p, e.target_ids)); where.append((j, "ps", k))
            for k, (_, p) in enumerate(e.novel):
                pairs.append((p, e.target_ids)); where.append((j, "psn", k))
            for k, nb in enumerate(e.neighbours):
                if (nb[1], nb[2]) in edited:
                    continue
                pairs.append((nb[4], pre_answers[(i, k)])); where.append((j, "ns", k))
        ok = argmax_match(model, pairs, device, pad_id, weights=w)
        for (j, kind, k), v in zip(where, ok):
            if kind == "es":
                rec[j]["es"] = int(v)
            else:
                rec[j][kind][k] = int(v)
        ppl = None
        if prose_ids is not None:
            ppl = math.exp(prose_nll(model, prose_ids, device, weights=w) - base_nll) - 1.0
        out.append({"edits": rec, "ppl_increase": ppl})
    return out


def aggregate(outcomes):
    """The eval.json numbers from per-case outcomes (same means as evaluate_edits)."""
    flat = {"es": [], "ps": [], "psn": [], "ns": []}
    for g in outcomes:
        for r in g["edits"]:
            flat["es"].append(r["es"])
            for k in ("ps", "psn", "ns"):
                flat[k].extend(v for v in r[k] if v is not None)
    mean = lambda v: sum(v) / len(v) if v else None
    return {"es": mean(flat["es"]), "ps": mean(flat["ps"]), "ps_novel": mean(flat["psn"]), "ns": mean(flat["ns"]),
            "ppl_increase": mean([g["ppl_increase"] for g in outcomes if g["ppl_increase"] is not None]),
            "n_groups": len(outcomes),
            "n_neighbour_prompts": len(flat["ns"])}


def build_benchmark(model, kb, enc, tok, edits, groups, prose_ids, mend_apply, ft_apply, info, device,
                    outcomes=True, outcome_groups=None, log=print):
    """The benchmark.json object. mend_apply / ft_apply(batch of edits) -> new weights (as in run_pipeline).
    outcome_groups: {run: n} stores per-case outcomes for the first n groups of that run only (each group
    re-scores the whole held-out prose, which is slow on a CPU); None = all groups."""
    bench = {
        "format": FORMAT, "version": VERSION,
        "about": "The held-out edit benchmark of training/run_pipeline.py (issue 3 §4) as data: edits on test "
                 "subjects, paraphrases from held-out (core, wrapper) combinations, novel phrasings, neighbours, "
                 "the groups each run evaluated, and the held-out prose for perplexity. See docs/eval.md.",
        **info,
        "edits": [edit_case(e) for e in edits],
        "groups": groups,
        "prose_ids": prose_ids,
    }
    if not outcomes:
        return bench
    t0 = time.time()
    used = sorted({i for run in RUNS for g in (groups[run] if outcome_groups is None else groups[run][:outcome_groups[run]])
                   for i in g})
    pre = neighbour_baseline(model, [edits[i] for i in used], device, tok.eot_id)
    pre = {(used[j], k): a for (j, k), a in pre.items()}
    base_nll = prose_nll(model, prose_ids, device)
    ref = {"device": str(device), "torch": torch.__version__, "base_prose_nll": base_nll,
           "neighbour_answers": {str(i): [pre[(i, k)] for k in range(len(edits[i].neighbours))] for i in used},
           "runs": {}}
    for run in RUNS:
        fn = mend_apply if run.startswith("mend") else ft_apply
        t = time.time()
        gs = groups[run] if outcome_groups is None else groups[run][:outcome_groups[run]]
        oc = per_case_outcomes(model, edits, gs, fn, pre, prose_ids, base_nll, device, tok.eot_id)
        ref["runs"][run] = {"aggregate": aggregate(oc), "groups": oc, "seconds": round(time.time() - t, 1)}
        log(f"{run}: {ref['runs'][run]['aggregate']} ({ref['runs'][run]['seconds']} s)")
    ref["seconds"] = round(time.time() - t0, 1)
    bench["python_outcomes"] = ref
    return bench


def benchmark_info(model_dir, seed, eval_cfg, eval_json):
    """The settings the benchmark was run with: MEND lr_scale (and lr_scale_batch, batch_retry and first_pass_guard,
    where eval.json has them) and FT config as eval.json records them."""
    ft = eval_json["ft_config"]
    return {"model": os.path.basename(os.path.normpath(model_dir)), "seed": seed, "sampler_seed": seed + 2,
            "mend_lr_scale": eval_json["mend_lr_scale"],
            **({"mend_lr_scale_batch": eval_json["mend_lr_scale_batch"]} if "mend_lr_scale_batch" in eval_json else {}),
            **({"mend_batch_retry": eval_json["mend_batch_retry"]} if "mend_batch_retry" in eval_json else {}),
            **({"mend_first_pass_guard": eval_json["mend_first_pass_guard"]} if "mend_first_pass_guard" in eval_json else {}),
            "ft_config": {k: ft[k] for k in ("steps", "lr", "optimizer", "weights")},
            "eval_config": eval_cfg, "reference": {k: eval_json[k] for k in ("mend", "ft", "counts", "versions")}}


def write_from_pipeline(model_dir, model, kb, enc, tok, edits, eval_cfg, eval_json, prose_ids, mend_apply, ft_apply,
                        device, seed, outcome_groups=None):
    """run_pipeline.py's hook: benchmark.json beside eval.json, from the objects the pipeline just evaluated
    (on its device, per-case outcomes for every group are as cheap as the evaluation itself)."""
    groups = benchmark_groups(len(edits), eval_cfg, eval_json["counts"])
    info = benchmark_info(model_dir, seed, eval_cfg, eval_json)
    bench = build_benchmark(model, kb, enc, tok, edits, groups, prose_ids, mend_apply, ft_apply, info, device,
                            outcome_groups=outcome_groups, log=lambda m: None)
    with open(os.path.join(model_dir, "benchmark.json"), "w") as f:
        json.dump(bench, f, separators=(",", ":"))
    return bench
