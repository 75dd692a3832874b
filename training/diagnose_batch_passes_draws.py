"""(training/diagnose_batch_passes_draws.py DRAWS, e.g. 8,2,4,5,9; run from the repository root.) Per-group held-out perplexity increase on one fresh draw: one pass at the shipped lr_scale_batch, pass 1 of the
variant alone (1.1), and the variant (1.1 + retry 0.5 + trust region); plus each pass's update norms for groups
over 10 %."""
import json, math, os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from evaluate_more_draws import draw_edits
from mendlab.benchmark_cases import benchmark_groups
from mendlab.evaluate import prose_nll
from mendlab.mend import mend_edit_passes
from mendlab.model_folder import load_shipped_cpu, shipped_scales
sh = load_shipped_cpu("public/models/facts-gpt", 2)
dev = sh.device
model, mend, tok = sh.model, sh.mend, sh.tok
ev = sh.config["eval"]
_, bs = shipped_scales(sh.ecfg, sh.eval_json)
prose_ids = [tok.encode(p) for p in sh.kb.prose["heldout"][:ev["n_prose"]]]
base = prose_nll(model, prose_ids, dev)
ppl = lambda w: math.exp(prose_nll(model, prose_ids, dev, weights=w) - base) - 1
out = {}
for k in [int(x) for x in sys.argv[1].split(",")]:
    edits = draw_edits(sh, ev, k)
    groups = benchmark_groups(len(edits), ev)["mend.batch10"]
    rows = []
    for gi, g in enumerate(groups):
        batch = [edits[i] for i in g]
        w_ship, _ = mend_edit_passes(model, mend, batch, dev, tok.eot_id, 1, bs, 1.0)
        w_p1, _ = mend_edit_passes(model, mend, batch, dev, tok.eot_id, 1, 1.1, 1.0)
        st = {}
        w_v, n = mend_edit_passes(model, mend, batch, dev, tok.eot_id, 2, 1.1, 0.5, False, True, st)
        r = {"group": gi, "one_pass_shipped": ppl(w_ship), "pass1_1.1": ppl(w_p1), "variant": ppl(w_v), "passes": n,
             "refused": st.get("refused", 0)}
        if max(r["one_pass_shipped"], r["variant"]) > 0.10:
            p = dict(model.named_parameters())
            r["norms_pass1"] = {x: float((w_p1[x] - p[x]).norm()) for x in w_p1}
            r["norms_retry"] = {x: float((w_v[x] - w_p1[x]).norm()) for x in w_v}
            r["relations"] = [e.relation for e in batch] if hasattr(batch[0], "relation") else None
        rows.append(r)
        print(k, json.dumps({a: (round(b, 4) if isinstance(b, float) else b) for a, b in r.items() if not a.startswith("norms")}), flush=True)
    out[k] = rows
    json.dump(out, open("training/results/batch-passes-draws-diag.json", "w"), indent=1)
