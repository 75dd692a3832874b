"""Adopt a newly trained MEND editor into a shipped model folder, from a pipeline run that kept the shipped base model
(`run_pipeline.py --base SHIPPED [--skip-ft]`), e.g. a CPU editor run (docs/training.md "Run 7").

    /usr/bin/python3 training/adopt_editor.py RUN_MODEL_DIR [--model public/models/facts-gpt]

What it does, in order, refusing at the first mismatch:
1. checks that the run's base model, tokenizer and facts.json are the shipped ones, byte for byte (only the editor
   may differ: an editor is trained for exactly one set of weights);
2. copies editor.safetensors and editor_config.json (the new editor has no lr_scale_batch yet: pick it next with
   calibrate_batch_scale.py, which is why it is not carried over);
3. writes eval.json: the run's MEND and base numbers, and, when the run skipped the FT baseline (--skip-ft leaves
   placeholder FT rows), every FT key of the shipped eval.json: FT depends on the base model alone, which step 1
   showed unchanged. eval.json "adopted" records what came from where.
Then, by hand (printed at the end): calibrate_batch_scale.py + --apply, and export_benchmark.py --only-runs
mend.single,mend.batch10 --outcome-groups all (benchmark.json's cases and FT outcomes stay; the MEND outcomes and
eval.json reference numbers are the new editor's).
"""
import argparse
import filecmp
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mendlab.export import write_json  # noqa: E402

SAME = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "facts.json")
EDITOR = ("editor.safetensors", "editor_config.json")
# eval.json keys that describe the FT baseline (paths of nested keys), carried over from a run that measured it.
FT_KEYS = (("ft",), ("ft_config",), ("harmonic_es_ps_ns", "ft_single"), ("harmonic_es_ps_ns", "ft_batch10"),
           ("per_relation", "ft_single"), ("counts", "ft"), ("timings_s", "ft_eval_s"),
           ("balanced", "ft"), ("balanced", "harmonic_es_ps_ns", "ft_single"),
           ("balanced", "harmonic_es_ps_ns", "ft_batch10"), ("balanced", "per_relation", "ft_single"),
           ("balanced", "per_relation", "ft_batch10"), ("balanced", "counts", "ft"))


def weight_files(d):
    index = os.path.join(d, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            return ["model.safetensors.index.json"] + sorted(set(json.load(f)["weight_map"].values()))
    return ["model.safetensors"]


def get(obj, path):
    for k in path:
        if not isinstance(obj, dict) or k not in obj:
            return None
        obj = obj[k]
    return obj


def put(obj, path, value):
    for k in path[:-1]:
        obj = obj.setdefault(k, {})
    obj[path[-1]] = value


def skipped_ft(eval_json):
    """--skip-ft runs evaluate FT on one group with one step (run_pipeline.py): a placeholder, not a baseline."""
    return eval_json["ft_config"]["steps"] == 1 or not eval_json["ft_config"].get("lr_calibration")


def merge_eval(new, shipped):
    out = json.loads(json.dumps(new))
    carried = []
    if skipped_ft(new):
        if skipped_ft(shipped):
            raise SystemExit("neither the run nor the shipped eval.json has a measured FT baseline")
        for path in FT_KEYS:
            v = get(shipped, path)
            if v is not None:
                put(out, path, v)
                carried.append(".".join(path))
    out["adopted"] = {
        "about": "This editor was trained and evaluated by a later pipeline run than the base model (training/"
                 "adopt_editor.py): MEND numbers are that run's; the keys listed in ft_from_shipped are the FT "
                 "baseline of the earlier run, on the same base model (checked byte for byte).",
        "run_command": new.get("command"), "run_versions": new.get("versions"),
        "ft_from_shipped": carried, "ft_command": shipped.get("command") if carried else None,
        "ft_versions": shipped.get("versions") if carried else None,
    }
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_model_dir", help="the pipeline run's model folder, e.g. training/runs/cpu7/facts-gpt")
    ap.add_argument("--model", default="public/models/facts-gpt")
    args = ap.parse_args(argv)
    run, d = args.run_model_dir, args.model
    files = list(SAME) + weight_files(d)
    if weight_files(run) != weight_files(d):
        raise SystemExit(f"{run}: the base weights are laid out differently from {d}")
    for name in files:
        a, b = os.path.join(run, name), os.path.join(d, name)
        if not (os.path.exists(a) and os.path.exists(b) and filecmp.cmp(a, b, shallow=False)):
            raise SystemExit(f"{name} differs between {run} and {d}: the editor was trained for another model")
    with open(os.path.join(run, "eval.json")) as f:
        new = json.load(f)
    with open(os.path.join(d, "eval.json")) as f:
        shipped = json.load(f)
    merged = merge_eval(new, shipped)
    for name in EDITOR:
        shutil.copyfile(os.path.join(run, name), os.path.join(d, name))
    write_json(os.path.join(d, "eval.json"), merged)
    print(f"adopted the editor of {run} into {d} ({len(files)} base files identical; FT keys carried over: "
          f"{len(merged['adopted']['ft_from_shipped'])})")
    print("next: /usr/bin/python3 training/calibrate_batch_scale.py && /usr/bin/python3 training/calibrate_batch_scale.py"
          " --apply training/results/batch-scale.json && /usr/bin/python3 training/export_benchmark.py --only-runs "
          "mend.single,mend.batch10 --outcome-groups all")
    return merged


if __name__ == "__main__":
    main()
