"""Write the held-out edit benchmark of a shipped model as benchmark.json (mendlab/benchmark_cases.py), from the
shipped artifacts alone: no retraining. The TypeScript `npm run eval` replays it.

    /usr/bin/python3 training/export_benchmark.py [--model public/models/facts-gpt] [--out FILE] [--no-outcomes]
    /usr/bin/python3 training/export_benchmark.py --only-runs mend.batch10 --outcome-groups all

The pipeline's settings are read back from the model folder: the eval section and seed from
editor_config.json "training.config", the evaluated group counts, FT settings and MEND lr_scale from eval.json
(and mend_lr_scale_batch, the lr_scale of a group of more than one fact, where eval.json has it; absent =
mend_lr_scale, as editor_config.json's lr_scale_batch).
With outcomes (default), this Python implementation's per-case results (on CPU here) are stored too.
--only-runs recomputes the outcomes of the named runs only and keeps every other run's stored outcomes (and the
cases) of the existing benchmark.json; a recomputed run records the device and torch it ran on.
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mendlab.benchmark_cases import (RUNS, aggregate, benchmark_groups, benchmark_info, build_benchmark,  # noqa: E402
                                     check_pipeline_draw, per_case_outcomes, pipeline_test_edits)
from mendlab.evaluate import neighbour_baseline, prose_nll  # noqa: E402
from mendlab.finetune import finetune_weights  # noqa: E402
from mendlab.mend import mend_edit  # noqa: E402
from mendlab.model_folder import load_shipped_cpu, shipped_scales  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="public/models/facts-gpt")
    ap.add_argument("--out", default=None, help="default: MODEL/benchmark.json")
    ap.add_argument("--no-outcomes", action="store_true", help="cases only, without Python's per-case results")
    ap.add_argument("--outcome-groups", default="10,2,5,1",
                    help="per-case outcomes for the first N groups of mend.single, mend.batch10, ft.single, "
                         "ft.batch10 ('all' = every group; each group re-scores the held-out prose)")
    ap.add_argument("--only-runs", default=None,
                    help="comma-separated runs (e.g. mend.batch10) whose outcomes replace those in the existing file")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    d = args.model
    sh = load_shipped_cpu(d, args.threads)
    dev = sh.device
    tok, model, mend, ev_json, seed, kb, enc = sh.tok, sh.model, sh.mend, sh.eval_json, sh.seed, sh.kb, sh.enc
    shipped_scales(sh.ecfg, ev_json)  # mend_edit below runs at editor_config.json's lr_scale / lr_scale_batch
    ft = ev_json["ft_config"]

    # Exactly run_pipeline.py's draw (section 5 there).
    ev = sh.config["eval"]
    edits = pipeline_test_edits(kb, enc, tok, ev, seed)
    groups = benchmark_groups(len(edits), ev, ev_json.get("counts"))
    prose_ids = [tok.encode(p) for p in kb.prose["heldout"][:ev["n_prose"]]]

    def mend_apply(batch):
        return mend_edit(model, mend, batch, dev, tok.eot_id)

    def ft_apply(batch):
        return finetune_weights(model, batch, ft["weights"], ft["steps"], ft["lr"], dev, tok.eot_id)

    info = benchmark_info(d, seed, ev, ev_json)
    # The draw must be the one the pipeline evaluated: the neighbour-prompt counts are its fingerprint.
    check_pipeline_draw(edits, groups, ev_json["counts"], log=print)
    outcome_groups = None
    if args.outcome_groups != "all":
        outcome_groups = dict(zip(RUNS, (int(n) for n in args.outcome_groups.split(","))))
    out = args.out or os.path.join(d, "benchmark.json")
    if args.only_runs:
        return replace_runs(args.only_runs.split(","), out, model, edits, groups, outcome_groups, prose_ids, info,
                            {"mend": mend_apply, "ft": ft_apply}, dev, tok.eot_id)
    t0 = time.time()
    bench = build_benchmark(model, kb, enc, tok, edits, groups, prose_ids, mend_apply, ft_apply, info, dev,
                            outcomes=not args.no_outcomes, outcome_groups=outcome_groups,
                            log=lambda m: print(m, flush=True))
    with open(out, "w") as f:
        json.dump(bench, f, separators=(",", ":"))
    print(f"wrote {out} ({os.path.getsize(out) / 1e3:.0f} kB, {time.time() - t0:.0f} s)")


def replace_runs(runs, out, model, edits, groups, outcome_groups, prose_ids, info, apply_fns, dev, pad_id):
    """--only-runs: new outcomes for `runs` in the existing benchmark file, everything else kept."""
    t0 = time.time()
    with open(out) as f:
        bench = json.load(f)
    if bench["groups"] != groups or bench["prose_ids"] != prose_ids:
        raise SystemExit(f"{out} holds other groups or prose than this model's pipeline draw")
    ref = bench["python_outcomes"]
    base_nll = prose_nll(model, prose_ids, dev)
    for run in runs:
        if run not in RUNS:
            raise SystemExit(f"unknown run {run!r} (one of {', '.join(RUNS)})")
        gs = groups[run] if outcome_groups is None else groups[run][:outcome_groups[run]]
        used = sorted({i for g in gs for i in g})
        pre = neighbour_baseline(model, [edits[i] for i in used], dev, pad_id)
        pre = {(used[j], k): a for (j, k), a in pre.items()}
        for i in used:  # the unedited model's answers must be the ones stored for the other runs
            mine = [pre[(i, k)] for k in range(len(edits[i].neighbours))]
            if ref["neighbour_answers"].setdefault(str(i), mine) != mine:
                raise SystemExit(f"edit {i}: unedited neighbour answers differ from the stored ones")
        t = time.time()
        oc = per_case_outcomes(model, edits, gs, apply_fns[run.split(".")[0]], pre, prose_ids, base_nll, dev, pad_id)
        ref["runs"][run] = {"aggregate": aggregate(oc), "groups": oc, "seconds": round(time.time() - t, 1),
                            "device": str(dev), "torch": torch.__version__, "base_prose_nll": base_nll}
        print(f"{run}: {ref['runs'][run]['aggregate']} ({ref['runs'][run]['seconds']} s)", flush=True)
    for k in ("mend_lr_scale", "mend_lr_scale_batch", "mend_batch_retry", "mend_first_pass_guard", "reference"):
        if k in info:
            bench[k] = info[k]
        else:
            bench.pop(k, None)
    with open(out, "w") as f:
        json.dump(bench, f, separators=(",", ":"))
    print(f"wrote {out} ({os.path.getsize(out) / 1e3:.0f} kB, {time.time() - t0:.0f} s; runs {', '.join(runs)} replaced)")


if __name__ == "__main__":
    main()
