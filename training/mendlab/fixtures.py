"""Golden values for the TypeScript MEND implementation (tests/fixtures/mend-tiny/golden.json; the format is
documented in training/README.md). Computed in float64 from the float32 weights that are shipped."""
import copy
import json
import os

import torch

from .mend import capture_rows, edited_weights_from

SLICE = 8


def _r(obj, digits=8):
    if isinstance(obj, float):
        return float(f"{obj:.{digits}g}")
    if isinstance(obj, list):
        return [_r(v, digits) for v in obj]
    if isinstance(obj, dict):
        return {k: _r(v, digits) for k, v in obj.items()}
    return obj


@torch.no_grad()
def _last_logits(model, ids, weights):
    return model(torch.tensor([ids], dtype=torch.long), weights=weights)[0, -1].tolist()


def mend_golden(model, mend, edit_cases, tok):
    """edit_cases: list of lists of Edit (each inner list is edited simultaneously)."""
    m64 = copy.deepcopy(model).cpu().double()
    e64 = copy.deepcopy(mend).cpu().double()
    e64.eval()
    for p in m64.parameters():
        p.requires_grad_(False)
    cases = []
    for ci, edits in enumerate(edit_cases):
        rows, loss = capture_rows(m64, [(e.prompt_ids, e.target_ids) for e in edits], e64.edited_weights,
                                  torch.device("cpu"), tok.eot_id)
        with torch.no_grad():
            upd, parts = e64.weight_updates(rows, return_parts=True)
        new_w = edited_weights_from(m64, upd)
        per_weight = {}
        for k, n in enumerate(e64.edited_weights):
            x, d = rows[n]
            xt, dt, dw = parts[n]
            per_weight[n] = {"x": x.tolist(), "delta": d.tolist(), "x_tilde": xt.tolist(), "delta_tilde": dt.tolist(),
                             "delta_w_slice": dw[:SLICE, :SLICE].tolist(), "update_slice": upd[n][:SLICE, :SLICE].tolist()}
        e = edits[0]
        probes = [("edit", e.prompt, e.prompt_ids), ("paraphrase",) + tuple(e.paraphrases[0]),
                  ("neighbour", e.neighbours[0][3], e.neighbours[0][4])]
        cases.append({
            "name": f"case{ci}-{len(edits)}edit{'s' if len(edits) > 1 else ''}",
            "edits": [{"subject": x.subject, "relation": x.relation, "prompt": x.prompt, "target": " " + x.new_object,
                       "prompt_ids": x.prompt_ids, "target_ids": x.target_ids} for x in edits],
            "loss": loss,
            "weights": per_weight,
            "probes": [{"kind": k, "prompt": text, "input_ids": ids, "pre_logits": _last_logits(m64, ids, None),
                        "post_logits": _last_logits(m64, ids, new_w)} for k, text, ids in probes],
        })
    return {
        "about": "MEND golden values from training/mendlab/fixtures.py (float64 from the shipped float32 weights). "
                 "See training/README.md for every field.",
        "edited_weights": e64.edited_weights, "sign": e64.sign, "lr_scale": e64.lr_scale,
        "edit_lrs": [float(v) for v in e64.edit_lrs], "slice": SLICE, "cases": cases,
    }


def write_golden(folder, golden):
    with open(os.path.join(folder, "golden.json"), "w", encoding="utf-8") as f:
        json.dump(_r(golden), f, ensure_ascii=False)
