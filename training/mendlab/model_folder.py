"""Reading an exported model folder back (the inverse of export.py): the scripts that evaluate shipped artifacts
(export_benchmark.py, evaluate_balanced.py, compare_with_ft.py, the calibrate_* and evaluate_* scripts) all start
from the same four pieces; load_shipped adds eval.json and the knowledge base the pipeline that wrote the folder
drew from, and load_shipped_cpu the CPU start-up they share."""
import json
import os
import platform
from dataclasses import dataclass

import torch

from .corpus import KB, FactEncoder
from .gpt import GPT, GPTConfig, load_hf_state_dict
from .mend import MEND
from .safetensors_io import load_file, load_model
from .tokenizer import ByteBPETokenizer


def load_model_folder(folder, device):
    """(tokenizer, frozen base model, editor_config.json, MEND editor) of an exported folder, on `device`."""
    tok = ByteBPETokenizer.load(folder)
    with open(os.path.join(folder, "config.json")) as f:
        model = load_hf_state_dict(GPT(GPTConfig.from_hf(json.load(f))), load_model(folder)).to(device)
    for p in model.parameters():
        p.requires_grad_(False)
    with open(os.path.join(folder, "editor_config.json")) as f:
        ecfg = json.load(f)
    mend = MEND.from_files(ecfg, load_file(os.path.join(folder, "editor.safetensors"))).to(device)
    return tok, model, ecfg, mend


def shipped_scales(ecfg, eval_json):
    """(lr_scale, lr_scale_batch) of a shipped editor, which its eval.json numbers were computed at; refuses a folder
    whose editor_config.json and eval.json disagree (the evaluation would not be the one the app runs)."""
    single = eval_json["mend_lr_scale"]
    batch = eval_json.get("mend_lr_scale_batch", single)
    if ecfg["lr_scale"] != single or ecfg.get("lr_scale_batch", ecfg["lr_scale"]) != batch:
        raise SystemExit("editor_config.json lr_scale / lr_scale_batch differ from eval.json's mend_lr_scale(_batch)")
    if ecfg.get("batch_retry") != eval_json.get("mend_batch_retry"):
        raise SystemExit("editor_config.json batch_retry differs from eval.json's mend_batch_retry")
    if ecfg.get("first_pass_guard") != eval_json.get("mend_first_pass_guard"):
        raise SystemExit("editor_config.json first_pass_guard differs from eval.json's mend_first_pass_guard")
    return single, batch


@dataclass
class Shipped:
    """A shipped folder as the pipeline that wrote it saw it: model, editor, eval.json, the pipeline's config
    (editor_config.json "training.config") and seed, and its knowledge base (same subject cap and seed) + encoder."""
    tok: object
    model: object
    ecfg: dict
    mend: object
    eval_json: dict
    config: dict
    seed: int
    kb: KB
    enc: FactEncoder
    device: torch.device


def load_shipped(folder, device):
    tok, model, ecfg, mend = load_model_folder(folder, device)
    with open(os.path.join(folder, "eval.json")) as f:
        eval_json = json.load(f)
    config, seed = ecfg["training"]["config"], ecfg["training"]["seed"]
    kb = KB(max_subjects_per_type=config["kb_max_subjects_per_type"], seed=seed)
    return Shipped(tok, model, ecfg, mend, eval_json, config, seed, kb, FactEncoder(tok), device)


def load_shipped_cpu(folder, threads):
    """The CPU evaluation scripts' start: torch on `threads` threads, its seed fixed (the scripts draw their edits
    with Python's own seeded generators; this covers anything torch draws), and the shipped folder on the CPU."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    return load_shipped(folder, torch.device("cpu"))


def cpu_versions(threads):
    """What the CPU evaluation scripts record as "versions" (python, torch, cores and the threads they ran on)."""
    return {"python": platform.python_version(), "torch": torch.__version__,
            "device": f"cpu ({os.cpu_count()} cores, {threads} threads)"}
