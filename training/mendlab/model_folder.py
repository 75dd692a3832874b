"""Reading an exported model folder back (the inverse of export.py): the scripts that evaluate shipped artifacts
(export_benchmark.py, evaluate_balanced.py, calibrate_batch_scale.py) all start from the same four pieces."""
import json
import os

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
