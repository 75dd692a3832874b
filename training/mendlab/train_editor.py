"""Training the MEND editor (mend-spec §4): for each step sample 1 edit or a batch of 2..max_batch simultaneous
edits, edit the frozen model through the editor, and minimise
c_edit * L_edit(paraphrase [+ edit prompt]) + c_loc * KL(pre || post on locality sequences)
w.r.t. the editor parameters and the per-weight edit learning rates only.

Which steps are batch steps and how big they are (config, defaults = the shipped editor's training):
- batch_share (0.5): the fraction of steps that are batch steps, spread evenly (0.5 = every odd step);
- p_max_batch (0.0): the probability that a batch step has exactly max_batch edits, else 2..max_batch uniformly
  (the issue's batch target is 10 edits at once);
- sampling ("subject"): how the edits are drawn, see EditSampler.draw_edits ("relation" / "sqrt" draw the
  relation first, so rare relations such as currency or calling_code are trained on as often as city -> country);
- n_same_relation (1): locality facts per edit from other subjects of the edited relation (the evaluation's
  neighbours are 3 of them; in a batch of 10 city edits they are where the summed update does its damage);
- n_paraphrases (2): training-template paraphrases per edit in the edit loss (next to the edit prompt itself)."""
import math
import random
import time

import torch

from .corpus import pad_batch, prompt_target_batch
from .mend import capture_rows, edited_weights_from, kl_loc, seq_nll


def editing_losses(model, mend, edits, device, pad_id, edit_loss_on_edit_prompt=True):
    rows, _ = capture_rows(model, [(e.prompt_ids, e.target_ids) for e in edits], mend.edited_weights, device, pad_id)
    new_w = edited_weights_from(model, mend.weight_updates(rows))
    outer = [(p, e.target_ids) for e in edits for (_, p) in e.paraphrases]
    if edit_loss_on_edit_prompt:
        outer += [(e.prompt_ids, e.target_ids) for e in edits]
    loc = [x for e in edits for x in e.locality]
    n_out = len(outer)
    ids_o, labels_o, _ = prompt_target_batch(outer, pad_id)
    ids_l, _, mask_l = pad_batch([s for s, _ in loc], pad_id, [m for _, m in loc])
    T = max(ids_o.shape[1], ids_l.shape[1])
    ids = torch.full((n_out + len(loc), T), pad_id, dtype=torch.long)
    ids[:n_out, :ids_o.shape[1]] = ids_o
    ids[n_out:, :ids_l.shape[1]] = ids_l
    labels = torch.full((n_out, T), -100, dtype=torch.long)
    labels[:, :labels_o.shape[1]] = labels_o
    mask = torch.zeros(len(loc), T, dtype=torch.bool)
    mask[:, :mask_l.shape[1]] = mask_l
    ids, labels, mask = ids.to(device), labels.to(device), mask.to(device)
    post = model(ids, weights=new_w)
    with torch.no_grad():
        pre = model(ids[n_out:])
    nll = seq_nll(post[:n_out], labels)
    l_edit = nll.mean()
    l_loc = kl_loc(pre, post[n_out:], mask)
    with torch.no_grad():
        am = post[:n_out].argmax(-1)
        ok = ((am == labels) | (labels == -100)).all(1).float().mean()
    return l_edit, l_loc, float(ok)


def is_batch_step(step, share):
    """True for an evenly spread `share` of the steps: step k is a batch step when floor((k+1)·share) moves past
    floor(k·share). share 0.5 gives exactly the odd steps."""
    return math.floor((step + 1) * share) > math.floor(step * share)


def batch_size(rng, step, cfg):
    """Edits in this step's problem: 1, or for a batch step max_batch with probability p_max_batch, else uniform
    in 2..max_batch. (No random draw is spent when p_max_batch is 0, so the default stream is the shipped one.)"""
    if not is_batch_step(step, cfg.get("batch_share", 0.5)):
        return 1
    p_max = cfg.get("p_max_batch", 0.0)
    if p_max > 0 and rng.random() < p_max:
        return cfg["max_batch"]
    return rng.randint(2, cfg["max_batch"])


def train_editor(model, mend, sampler, subjects, cfg, device, pad_id, log):
    """cfg: steps, time_budget_s, lr, lr_lr, c_edit, c_loc, max_batch, warmup_steps, grad_clip, log_every,
    edit_loss_on_edit_prompt, seed; optional batch_share, p_max_batch, sampling (see the module docstring)."""
    for p in model.parameters():
        p.requires_grad_(False)
    editor_params = [p for n, p in mend.named_parameters() if n != "edit_lrs"]
    opt = torch.optim.Adam([{"params": editor_params, "lr": cfg["lr"]},
                            {"params": [mend.edit_lrs], "lr": cfg["lr_lr"]}])
    base_lrs = [cfg["lr"], cfg["lr_lr"]]
    rng = random.Random(cfg["seed"])
    mend.train()
    t0 = time.time()
    step, hist = 0, []
    relations, sizes = {}, {}  # how many training edits of each relation, how many steps of each size
    acc = {"single": [], "batch": []}
    run = {"l_edit": 0.0, "l_loc": 0.0, "n": 0}
    while True:
        progress = max(step / cfg["steps"], (time.time() - t0) / cfg["time_budget_s"])
        if progress >= 1.0:
            break
        warm = min(1.0, (step + 1) / cfg["warmup_steps"])
        decay = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))
        for g, lr in zip(opt.param_groups, base_lrs):
            g["lr"] = lr * warm * decay
        n = batch_size(rng, step, cfg)
        edits = sampler.training_batch(subjects, n, sampling=cfg.get("sampling", "subject"),
                                       n_same_relation=cfg.get("n_same_relation", 1),
                                       n_paraphrases=cfg.get("n_paraphrases", 2))
        for e in edits:
            relations[e.relation] = relations.get(e.relation, 0) + 1
        sizes[n] = sizes.get(n, 0) + 1
        l_edit, l_loc, ok = editing_losses(model, mend, edits, device, pad_id, cfg["edit_loss_on_edit_prompt"])
        loss = cfg["c_edit"] * l_edit + cfg["c_loc"] * l_loc
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(mend.parameters(), cfg["grad_clip"])
        if torch.isfinite(gn):  # like the reference's safe_backward: skip steps with non-finite gradients
            opt.step()
        step += 1
        acc["single" if n == 1 else "batch"].append(ok)
        run["l_edit"] += float(l_edit)
        run["l_loc"] += float(l_loc)
        run["n"] += 1
        if step % cfg["log_every"] == 0:
            k = cfg["log_every"] // 2
            rec = {"step": step, "t": round(time.time() - t0, 1), "l_edit": round(run["l_edit"] / run["n"], 4),
                   "l_loc": round(run["l_loc"] / run["n"], 5),
                   "acc_single": round(sum(acc["single"][-k:]) / max(1, len(acc["single"][-k:])), 3),
                   "acc_batch": round(sum(acc["batch"][-k:]) / max(1, len(acc["batch"][-k:])), 3),
                   "edit_lrs": [round(float(v), 6) for v in mend.edit_lrs]}
            hist.append(rec)
            log(f"editor {rec}")
            run = {"l_edit": 0.0, "l_loc": 0.0, "n": 0}
    mend.eval()
    return {"steps": step, "seconds": round(time.time() - t0, 1), "history": hist,
            "edits_per_relation": dict(sorted(relations.items())), "steps_per_batch_size": dict(sorted(sizes.items()))}
