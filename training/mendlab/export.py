"""Writing the artifacts: HF model folder, MEND editor files, eval.json and facts.json (docs/formats.md)."""
import json
import os

import torch

from .gpt import hf_state_dict
from .safetensors_io import save_file, save_model

MAX_FILE_BYTES = 16 * 1024 * 1024  # every shipped file must stay at or under 16 MiB


def write_json(path, obj, indent=1):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=indent, ensure_ascii=False)
        f.write("\n")


def export_model(folder, model, tok):
    os.makedirs(folder, exist_ok=True)
    sd = {k: v.float().cpu() for k, v in hf_state_dict(model).items()}
    # Shard below the file limit (leave room for the header).
    files = save_model(sd, folder, max_shard_bytes=MAX_FILE_BYTES - 64 * 1024)
    write_json(os.path.join(folder, "config.json"), model.cfg.to_hf())
    write_json(os.path.join(folder, "generation_config.json"),
               {"bos_token_id": tok.eot_id, "eos_token_id": tok.eot_id, "max_length": model.cfg.n_positions})
    tok.save(folder, model.cfg.n_positions)
    return files


def export_editor(folder, mend, model_cfg, training_info):
    cfg = {"format": "mendlab-editor", "version": 1,
           "model": {"model_type": "gpt2", "n_embd": model_cfg.n_embd, "n_inner": model_cfg.inner,
                     "n_layer": model_cfg.n_layer, "vocab_size": model_cfg.vocab_size}}
    cfg.update(mend.config())
    cfg["edit_lrs"] = [float(v) for v in mend.edit_lrs.detach().cpu()]
    cfg["loss"] = "mean NLL over target tokens"
    cfg["tokenisation"] = "prompt ++ target, tokenised separately"
    cfg["batch_rows"] = "several edits: each edit's rows come from its own mean-NLL loss; all rows are concatenated"
    cfg["training"] = training_info
    write_json(os.path.join(folder, "editor_config.json"), cfg)
    save_file(mend.export_tensors(), os.path.join(folder, "editor.safetensors"), {"format": "mendlab-editor"})


# The held-out prose paragraphs the app reads at edit time come from the end of the held-out list, which no training
# step ever saw and no evaluation reads (held-out paragraphs [0, 64) are the test perplexity, [64, 128)
# calibrate_single_scale.py's validation):
#   the last 4: the editor's perplexity guards (editor_config.json batch_retry.prose_guard and first_pass_guard, as
#     token ids; calibrate_batch_passes.guard_prose_ids);
#   the 4 before them: the app's damage check (facts.json heldout_prose), so that the perplexity the page shows
#     after an edit is an independent look, not the number a guard has just held under its limit.
PROSE_PARAGRAPHS = 4


def guard_prose(kb):
    held = kb.prose["heldout"]
    assert len(held) >= 128 + 2 * PROSE_PARAGRAPHS, "the edit-time paragraphs must not overlap the evaluated ones"
    return held[-PROSE_PARAGRAPHS:]


def damage_prose(kb):
    held = kb.prose["heldout"]
    assert len(held) >= 128 + 2 * PROSE_PARAGRAPHS, "the edit-time paragraphs must not overlap the evaluated ones"
    return held[-2 * PROSE_PARAGRAPHS:-PROSE_PARAGRAPHS]


def export_facts(folder, kb):
    """What the playground needs to propose prompts: relations with their templates (marked train / heldout /
    novel, i.e. which phrasings the model knows), every subject with its relation -> object, and a few held-out
    prose paragraphs for the app's damage check (`heldout_prose`)."""
    rels = {}
    for r in kb.rel_names:
        info = kb.relations[r]
        rels[r] = {"subject_type": info["subject_type"], "object_type": info["object_type"],
                   "objects": kb.objects[r],
                   "templates": [{"template": t["template"], "split": t["split"], "core": t["core"],
                                  "wrapper": t["wrapper"]} for t in info["templates"]]}
    subjects = {s: {"split": kb.subject_split.get(s, "train"), "facts": dict(sorted(kb.by_subject[s].items()))}
                for s in sorted(kb.by_subject)}
    write_json(os.path.join(folder, "facts.json"),
               {"format": "mendlab-facts", "version": 1,
                "template_splits": {"train": "seen in pretraining", "heldout": "core and wrapper seen, never together",
                                    "novel": "core phrasing never seen"},
                "target_prefix": " ", "relations": rels, "subjects": subjects, "sources": kb.sources,
                "heldout_prose": damage_prose(kb)}, indent=None)


def check_sizes(folder):
    sizes = {}
    for fn in sorted(os.listdir(folder)):
        p = os.path.join(folder, fn)
        if os.path.isfile(p):
            sizes[fn] = os.path.getsize(p)
            assert sizes[fn] <= MAX_FILE_BYTES, f"{fn} is {sizes[fn]} bytes (> 16 MiB)"
    return sizes
