"""MEND Lab training pipeline, one command:

    /usr/bin/python3 training/run_pipeline.py [--tiny] [--out DIR] [--device cuda|cpu] [--fixtures DIR]

corpus -> byte-level BPE tokenizer -> GPT pretraining -> MEND editor training -> FT baseline -> evaluation ->
export (HF model folder + editor + eval.json + facts.json) [-> golden fixtures for the TS editor].
--tiny is the CI configuration (CPU, < 3 minutes). Everything is seeded; the full configuration stops its two
training phases at wall-clock budgets so the whole run fits in the GPU time limit.
"""
import argparse
import json
import os
import platform
import random
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mendlab import export as ex  # noqa: E402
from mendlab.corpus import KB, FactEncoder, PackedStream, fill, pretraining_items  # noqa: E402
from mendlab.edits import EditSampler  # noqa: E402
from mendlab.benchmark_cases import (pipeline_test_edits, pipeline_validation_edits,  # noqa: E402
                                     write_from_pipeline as write_benchmark)
from mendlab.evaluate import (balanced_plan, balanced_section, base_quality, evaluate_edits,  # noqa: E402
                              neighbour_baseline, prose_nll, relation_balanced_edits, run_balanced,
                              validation_summary)
from mendlab.finetune import finetune_weights  # noqa: E402
from mendlab.fixtures import mend_golden, write_golden  # noqa: E402
from mendlab.gpt import GPT, GPTConfig, load_hf_state_dict  # noqa: E402
from mendlab.mend import MEND, mend_edit  # noqa: E402
from mendlab.pretrain import pretrain  # noqa: E402
from mendlab.safetensors_io import load_file, load_model  # noqa: E402
from mendlab.tokenizer import ByteBPETokenizer, train_bpe  # noqa: E402
from mendlab.train_editor import train_editor  # noqa: E402

SEED = 0

FULL = {
    "name": "facts-gpt",
    "kb_max_subjects_per_type": None,
    "vocab_size": 4096,
    "model": {"n_embd": 256, "n_inner": 1024, "n_layer": 6, "n_head": 8, "n_positions": 128},
    "pretrain": {"seq_len": 128, "batch_size": 128, "lr": 2e-3, "min_lr_frac": 0.05, "warmup_steps": 200,
                 "max_steps": 100000, "time_budget_s": 130, "weight_decay": 0.05, "log_every": 200},
    "editor": {"rank": 256, "edit_lr_init": 1e-4, "sign": -1, "steps": 100000, "time_budget_s": 100,
               "lr": 1e-4, "lr_lr": 1e-5, "c_edit": 0.1, "c_loc": 1.0, "max_batch": 10, "warmup_steps": 100,
               "grad_clip": 100.0, "log_every": 200, "edit_loss_on_edit_prompt": True, "n_edited_blocks": 3,
               "sampling": "subject", "batch_share": 0.5, "p_max_batch": 0.0, "n_same_relation": 1},
    "eval": {"base_max_facts": None, "n_single": 300, "n_batch_groups": 30, "ft_single": 150,
             "ft_batch_groups": 10, "ft_steps": 20, "ft_lrs": [1e-4, 3e-4, 1e-3], "n_prose": 64,
             "time_budget_s": 15, "n_val": 60, "n_val_ft": 15, "lr_scales": [0.5, 0.75, 1.0, 1.5],
             "balanced_per_relation": 8, "balanced_ft_per_relation": 8},
}

TINY = {
    "name": "mend-tiny",
    "kb_max_subjects_per_type": 40,
    "vocab_size": 512,
    "model": {"n_embd": 32, "n_inner": 64, "n_layer": 4, "n_head": 4, "n_positions": 128},
    "pretrain": {"seq_len": 64, "batch_size": 16, "lr": 3e-3, "min_lr_frac": 0.1, "warmup_steps": 20,
                 "max_steps": 150, "time_budget_s": 1e9, "weight_decay": 0.0, "log_every": 50},
    "editor": {"rank": 16, "edit_lr_init": 1e-4, "sign": -1, "steps": 100, "time_budget_s": 1e9,
               "lr": 1e-3, "lr_lr": 1e-5, "c_edit": 0.1, "c_loc": 1.0, "max_batch": 10, "warmup_steps": 20,
               "grad_clip": 100.0, "log_every": 50, "edit_loss_on_edit_prompt": True, "n_edited_blocks": 3,
               "sampling": "subject", "batch_share": 0.5, "p_max_batch": 0.0, "n_same_relation": 1},
    "eval": {"base_max_facts": 120, "n_single": 10, "n_batch_groups": 1, "ft_single": 5,
             "ft_batch_groups": 1, "ft_steps": 5, "ft_lrs": [1e-3], "n_prose": 8, "time_budget_s": 1e9,
             "n_val": 10, "n_val_ft": 3, "lr_scales": [0.5, 1.0, 2.0],
             "balanced_per_relation": 2, "balanced_ft_per_relation": 2},
}


class Logger:
    def __init__(self, path):
        self.f = open(path, "a", encoding="utf-8")
        self.t0 = time.time()

    def __call__(self, msg):
        line = f"[{time.time() - self.t0:7.1f}s] {msg}"
        print(line, flush=True)
        self.f.write(line + "\n")
        self.f.flush()


def edited_weight_names(n_layer, n_blocks):
    # MLP weights of the last n_blocks blocks, c_fc then c_proj per block (the distilgpt2 config's order).
    return [f"transformer.h.{i}.mlp.{w}.weight" for i in range(n_layer - n_blocks, n_layer) for w in ("c_fc", "c_proj")]


def tokenizer_texts(kb, seed):
    """Text the BPE is trained on: every fact once (random training template) and part of the prose."""
    rng = random.Random(seed)
    texts = [fill(rng.choice(kb.templates(r, "train")), s) + " " + o + "." for s, r, o in kb.facts]
    return texts + kb.prose["train"][:1000]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="CI configuration (small KB subset and model, CPU)")
    ap.add_argument("--out", default=None, help="output folder (default training/runs/<name>)")
    ap.add_argument("--device", default=None, help="cuda or cpu (default: cuda if available)")
    ap.add_argument("--fixtures", default=None, help="also write the TS editor golden fixture folder here")
    ap.add_argument("--editor", default=None,
                    help="continue training the editor found in this folder (editor_config.json + editor.safetensors)")
    ap.add_argument("--skip-ft", action="store_true", help="skip the FT baseline (editor experiments)")
    ap.add_argument("--scale", type=float, default=1.0,
                    help="multiply time budgets and step counts (e.g. 0.05 to smoke-test the full config on CPU)")
    ap.add_argument("--set", action="append", default=[], help="override a config value, e.g. editor.c_loc=2.0")
    ap.add_argument("--base", default=None,
                    help="reuse a pretrained model folder (its tokenizer and weights); skips tokenizer and pretraining")
    args = ap.parse_args(argv)

    cfg = json.loads(json.dumps(TINY if args.tiny else FULL))
    for kv in args.set:
        k, v = kv.split("=", 1)
        if "." in k:
            sec, key = k.split(".")
            cfg[sec][key] = json.loads(v)
        else:
            cfg[k] = json.loads(v)
    if args.scale != 1.0:
        for sec, keys in (("pretrain", ("max_steps", "time_budget_s")), ("editor", ("steps", "time_budget_s"))):
            for k in keys:
                cfg[sec][k] = max(1, int(cfg[sec][k] * args.scale))
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "runs", cfg["name"])
    model_dir = os.path.join(out, cfg["name"])
    os.makedirs(model_dir, exist_ok=True)
    log = Logger(os.path.join(out, "log.txt"))
    timings = {}
    t_all = time.time()
    random.seed(SEED)
    torch.manual_seed(SEED)
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")  # TF32 matmuls
    else:
        torch.set_num_threads(1)  # tiny tensors: a second thread only adds overhead on a shared 2-core machine
    versions = {"python": platform.python_version(), "torch": torch.__version__,
                "device": torch.cuda.get_device_name(0) if device.type == "cuda" else platform.processor() or "cpu"}
    log(f"config {json.dumps(cfg)}")
    log(f"versions {versions}")

    # 1. corpus + tokenizer
    t = time.time()
    kb = KB(max_subjects_per_type=cfg["kb_max_subjects_per_type"], seed=SEED)
    if args.base:  # reuse tokenizer + weights of an earlier run
        tok = ByteBPETokenizer.load(args.base)
        with open(os.path.join(args.base, "config.json")) as f:
            mc = GPTConfig.from_hf(json.load(f))
        model = load_hf_state_dict(GPT(mc), load_model(args.base)).to(device)
        enc = FactEncoder(tok)
        pre_info = {"reused": args.base}
        log(f"kb: {len(kb.facts)} facts; reusing pretrained model from {args.base}")
    else:
        tok = ByteBPETokenizer(train_bpe(tokenizer_texts(kb, SEED), cfg["vocab_size"]))
        enc = FactEncoder(tok)
        items = pretraining_items(kb, enc, tok)
        stream = PackedStream(items, cfg["pretrain"]["seq_len"], SEED, tok.eot_id)
        timings["corpus_tokenizer_s"] = round(time.time() - t, 1)
        log(f"kb: {len(kb.facts)} facts, {len(kb.rel_names)} relations; vocab {len(tok)}; "
            f"{len(items)} pretraining items, {stream.n_tokens} tokens per epoch")

        # 2. pretraining
        t = time.time()
        mc = GPTConfig(vocab_size=len(tok), bos_token_id=tok.eot_id, eos_token_id=tok.eot_id, **cfg["model"])
        torch.manual_seed(SEED)
        model = GPT(mc).to(device)
        log(f"model: {model.num_params() / 1e6:.2f}M parameters")
        pre_info = pretrain(model, stream, cfg["pretrain"], device, log)
        timings["pretrain_s"] = round(time.time() - t, 1)
        ex.export_model(os.path.join(out, "base"), model.cpu(), tok)  # checkpoint: --base can reuse it
        model.to(device)
    for p in model.parameters():
        p.requires_grad_(False)

    # 3. base quality
    t = time.time()
    bq = base_quality(model, kb, enc, device, tok.eot_id, SEED, cfg["eval"]["base_max_facts"])
    timings["base_eval_s"] = round(time.time() - t, 1)
    log(f"base quality {json.dumps(bq['overall'])}")
    for r, v in sorted(bq["per_relation"].items()):
        log(f"  {r:15s} train {v['train']:.3f} heldout {v['heldout']:.3f} novel {v['novel']:.3f} (n={v['n']})")

    # 4. MEND editor training
    t = time.time()
    ec = cfg["editor"]
    names = edited_weight_names(mc.n_layer, ec["n_edited_blocks"])
    params = dict(model.named_parameters())
    torch.manual_seed(SEED)
    mend = MEND(names, [tuple(params[n].shape) for n in names], ec["rank"], ec["edit_lr_init"], ec["sign"]).to(device)
    continued = None
    if args.editor:  # continue an earlier run's editor (statistics, weights and edit lrs)
        with open(os.path.join(args.editor, "editor_config.json")) as f:
            ecfg = json.load(f)
        mend = MEND.from_files(ecfg, load_file(os.path.join(args.editor, "editor.safetensors"))).to(device)
        mend.lr_scale, mend.lr_scale_batch = 1.0, None  # this run calibrates its own (one) scale
        assert mend.edited_weights == names, "the editor was trained for other weights"
        continued = {"from": args.editor, "earlier_training": ecfg.get("training")}
        log(f"continuing the editor from {args.editor} (rows seen {ecfg.get('norm_rows_seen')})")
    sampler = EditSampler(kb, enc, tok, SEED + 1 if not args.editor else SEED + 11)
    ed_info = train_editor(model, mend, sampler, kb.subjects("train"), {**ec, "seed": SEED}, device, tok.eot_id, log)
    timings["editor_train_s"] = round(time.time() - t, 1)
    log(f"editor: {ed_info['steps']} steps ({ec['sampling']} sampling); edits per relation "
        f"{ed_info['edits_per_relation']}; steps per batch size {ed_info['steps_per_batch_size']}")
    # Checkpoint (lr_scale 1, before calibration and evaluation), so a GPU run cut short still returns the editor.
    ckpt = os.path.join(out, "editor-checkpoint")
    os.makedirs(ckpt, exist_ok=True)
    ex.export_editor(ckpt, mend.cpu(), mc, {"checkpoint": "after editor training, before lr_scale calibration",
                                            "config": cfg, "steps": ed_info["steps"], "seconds": ed_info["seconds"]})
    mend.to(device)

    # 5. evaluation of MEND and FT on held-out test subjects
    t = time.time()
    ev = cfg["eval"]
    test_subjects = kb.subjects("test")
    n_batch = ev["n_batch_groups"] * 10
    edits = pipeline_test_edits(kb, enc, tok, ev, SEED)  # the scripts that re-evaluate artifacts rebuild this draw
    pre_answers = neighbour_baseline(model, edits, device, tok.eot_id)
    prose_ids = [tok.encode(p) for p in kb.prose["heldout"][:ev["n_prose"]]]
    base_nll = prose_nll(model, prose_ids, device)
    single_groups = [[i] for i in range(min(ev["n_single"], len(edits)))]
    batch_groups = [list(range(i, i + 10)) for i in range(0, min(n_batch, len(edits)) - 9, 10)]

    def mend_apply(batch):
        return mend_edit(model, mend, batch, device, tok.eot_id)

    # Test-time step multiplier (lr_scale in editor_config, as in ROME/EasyEdit's MEND): chosen on *validation*
    # subjects by the mean of the single-edit and batch-10 harmonic means of ES, PS and NS.
    t_cal = time.time()
    val_edits = pipeline_validation_edits(kb, enc, tok, ev["n_val"], SEED)
    val_pre = neighbour_baseline(model, val_edits, device, tok.eot_id)
    val_single = [[i] for i in range(len(val_edits))]
    val_batch = [list(range(i, i + 10)) for i in range(0, len(val_edits) - 9, 10)]
    calibration = []
    for sc in ev["lr_scales"]:
        mend.lr_scale = sc
        rs = evaluate_edits(model, val_edits, val_single, mend_apply, val_pre, None, 0.0, device, tok.eot_id)
        rb = evaluate_edits(model, val_edits, val_batch, mend_apply, val_pre, None, 0.0, device, tok.eot_id)
        score = (rs["harmonic_es_ps_ns"] + rb["harmonic_es_ps_ns"]) / 2
        calibration.append({"lr_scale": sc, "score": round(score, 4),
                            "single": {k: rs[k] for k in ("es", "ps", "ns")}, "batch10": {k: rb[k] for k in ("es", "ps", "ns")}})
        log(f"calibration {calibration[-1]}")
    mend.lr_scale = max(calibration, key=lambda c: c["score"])["lr_scale"]
    # Relation-balanced validation edits at the chosen lr_scale: with the score above, what decides between two
    # editors (docs/training.md, "Next GPU run"); training/evaluate_balanced.py --split val gives it for another.
    val_bal = relation_balanced_edits(kb, enc, tok, kb.subjects("val"), ev["balanced_per_relation"])
    val_bal_plan = {k: g for k, g in balanced_plan(val_bal, len(kb.rel_names), 0).items() if k[0] == "mend"}
    val_bal_summary = validation_summary(run_balanced(model, val_bal, val_bal_plan, {"mend": mend_apply}, None, 0.0,
                                                      device, tok.eot_id))
    timings["calibration_s"] = round(time.time() - t_cal, 1)
    log(f"lr_scale = {mend.lr_scale}; relation-balanced validation {json.dumps(val_bal_summary)}")

    ft_lr = {"lr": ev["ft_lrs"][0]}

    def ft_apply(batch):
        return finetune_weights(model, batch, names, ev["ft_steps"], ft_lr["lr"], device, tok.eot_id)

    # The FT baseline gets the same courtesy: its learning rate is picked on validation single edits.
    ft_calibration = []
    for lr in ([] if args.skip_ft else ev["ft_lrs"]):
        ft_lr["lr"] = lr
        rs = evaluate_edits(model, val_edits, val_single[:ev["n_val_ft"]], ft_apply, val_pre, None, 0.0, device,
                            tok.eot_id)
        ft_calibration.append({"lr": lr, "score": rs["harmonic_es_ps_ns"], "single": {k: rs[k] for k in ("es", "ps", "ns")}})
        log(f"FT calibration {ft_calibration[-1]}")
    if ft_calibration:
        ft_lr["lr"] = max(ft_calibration, key=lambda c: c["score"])["lr"]

    results = {"mend": {}, "ft": {}}
    budget = ev["time_budget_s"]  # per evaluation, so the GPU run cannot overrun its limit
    results["mend"]["single"] = evaluate_edits(model, edits, single_groups, mend_apply, pre_answers, prose_ids,
                                               base_nll, device, tok.eot_id, budget)
    results["mend"]["batch10"] = evaluate_edits(model, edits, batch_groups, mend_apply, pre_answers, prose_ids,
                                                base_nll, device, tok.eot_id, budget)
    timings["mend_eval_s"] = round(time.time() - t, 1)
    t = time.time()
    if args.skip_ft:
        ev = {**ev, "ft_single": 1, "ft_batch_groups": 1, "ft_steps": 1}
    results["ft"]["single"] = evaluate_edits(model, edits, single_groups[:ev["ft_single"]], ft_apply, pre_answers,
                                             prose_ids, base_nll, device, tok.eot_id, budget)
    results["ft"]["batch10"] = evaluate_edits(model, edits, batch_groups[:ev["ft_batch_groups"]], ft_apply,
                                              pre_answers, prose_ids, base_nll, device, tok.eot_id, budget)
    timings["ft_eval_s"] = round(time.time() - t, 1)

    # Relation-balanced test edits (eval.json "balanced"): the same metrics where every relation counts equally.
    t = time.time()
    bal_edits = relation_balanced_edits(kb, enc, tok, test_subjects, ev["balanced_per_relation"])
    bal_plan = balanced_plan(bal_edits, len(kb.rel_names), ev["balanced_ft_per_relation"])
    if args.skip_ft:
        bal_plan[("ft", "single")], bal_plan[("ft", "batch10")] = [], []
    bal = run_balanced(model, bal_edits, bal_plan, {"mend": mend_apply, "ft": ft_apply}, prose_ids, base_nll,
                       device, tok.eot_id, budget)
    timings["balanced_eval_s"] = round(time.time() - t, 1)
    for m in ("mend", "ft"):
        for k in ("single", "batch10"):
            r = {a: b for a, b in results[m][k].items() if a != "per_relation"}
            log(f"{m} {k}: {json.dumps(r)}")
            r = {a: b for a, b in bal[f"{m}_{k}"].items() if a != "per_relation"}
            log(f"balanced {m} {k}: {json.dumps(r)}")

    # 6. export
    t = time.time()
    ex.export_model(model_dir, model.cpu(), tok)
    model.to(device)
    command = "python3 training/run_pipeline.py " + " ".join(sys.argv[1:] if argv is None else argv)
    training_info = {"command": command, "seed": SEED, "versions": versions, "config": cfg,
                     "pretrain": {k: v for k, v in pre_info.items() if k != "loss_curve"},
                     "editor": {"steps": ed_info["steps"], "seconds": ed_info["seconds"],
                                "last": ed_info["history"][-1] if ed_info["history"] else None,
                                "edits_per_relation": ed_info["edits_per_relation"],
                                "steps_per_batch_size": ed_info["steps_per_batch_size"]},
                     "lr_scale_calibration": calibration, "data_sources": kb.sources, "continued": continued}
    ex.export_editor(model_dir, mend.cpu(), mc, training_info)
    mend.to(device)
    ex.export_facts(model_dir, kb)
    eval_json = {
        "base": {"train_template_acc": bq["overall"]["train"], "heldout_template_acc": bq["overall"]["heldout"],
                 "novel_phrasing_acc": bq["overall"]["novel"], "per_relation": bq["per_relation"]},
        "mend": {"single": {k: results["mend"]["single"][k] for k in ("es", "ps", "ps_novel", "ns", "ppl_increase")},
                 "batch10": {k: results["mend"]["batch10"][k] for k in ("es", "ps", "ps_novel", "ns", "ppl_increase")}},
        "ft": {"single": {k: results["ft"]["single"][k] for k in ("es", "ps", "ps_novel", "ns", "ppl_increase")},
               "batch10": {k: results["ft"]["batch10"][k] for k in ("es", "ps", "ns")}},
        "harmonic_es_ps_ns": {"mend_single": results["mend"]["single"]["harmonic_es_ps_ns"],
                              "ft_single": results["ft"]["single"]["harmonic_es_ps_ns"],
                              "mend_batch10": results["mend"]["batch10"]["harmonic_es_ps_ns"],
                              "ft_batch10": results["ft"]["batch10"]["harmonic_es_ps_ns"]},
        "per_relation": {"mend_single": results["mend"]["single"]["per_relation"],
                         "mend_batch10": results["mend"]["batch10"]["per_relation"],
                         "ft_single": results["ft"]["single"]["per_relation"]},
        "counts": {m: {k: {c: results[m][k][c] for c in ("n_edits", "n_groups", "n_neighbour_prompts", "seconds")}
                       for k in ("single", "batch10")} for m in ("mend", "ft")},
        "ft_config": {"steps": ev["ft_steps"], "lr": ft_lr["lr"], "optimizer": "Adam", "weights": names,
                      "lr_calibration": ft_calibration},
        "balanced": balanced_section(bal_edits, bal, ev["balanced_per_relation"], validation=val_bal_summary),
        "mend_lr_scale": mend.lr_scale, "mend_lr_scale_calibration": calibration,
        "command": command, "versions": versions, "timings_s": timings,
    }
    timings["export_s"] = round(time.time() - t, 1)
    write_benchmark(model_dir, model, kb, enc, tok, edits, ev, eval_json, prose_ids, mend_apply, ft_apply, device, SEED)  # benchmark.json for npm run eval (docs/eval.md)
    if args.fixtures:
        t = time.time()
        os.makedirs(args.fixtures, exist_ok=True)
        fx_sampler = EditSampler(kb, enc, tok, SEED + 3)
        fx = fx_sampler.eval_edits(test_subjects, 3, n_paraphrases=1, n_novel=1, n_same_relation=1)
        ex.export_model(args.fixtures, model.cpu(), tok)
        ex.export_editor(args.fixtures, mend.cpu(), mc, training_info)
        write_golden(args.fixtures, mend_golden(model.cpu(), mend.cpu(), [[fx[0]], [fx[1], fx[2]]], tok))
        timings["fixtures_s"] = round(time.time() - t, 1)
    timings["total_s"] = round(time.time() - t_all, 1)
    ex.write_json(os.path.join(model_dir, "eval.json"), eval_json)
    ex.write_json(os.path.join(out, "train_log.json"), {"pretrain": pre_info, "editor": ed_info, "timings_s": timings})
    sizes = ex.check_sizes(model_dir)
    log(f"artifacts in {model_dir}: {sum(sizes.values()) / 1e6:.2f} MB total; {sizes}")
    log(f"timings {timings}")
    log.f.close()
    return {"eval": eval_json, "model_dir": model_dir, "model": model, "mend": mend, "kb": kb, "tok": tok}


if __name__ == "__main__":
    main()
