#!/usr/bin/env python3
"""Issue 6's targets from one gpu.sh run: `python3 bench/gpu_summary.py OUT_DIR` reads OUT_DIR/webgpu.json and
OUT_DIR/torch.json (either may be missing or cut short) and prints each target with its measured value.

  whole MEND edit <= 30 ms                 webgpu distilgpt2 edit.totalMs
  WebGPU / PyTorch-eager <= 1.0            like for like, twice: the app's one-wait edit (pipeline.oneWaitMs) /
                                           the faster eager variant's oneSyncMs (one synchronisation at the end),
                                           and the phase-synced edit (edit.totalMs) / eager totalMs (a sync per phase)
  fused update >= 70 % of copy bandwidth   distilgpt2 bandwidth.ratio (and the DRAM yardstick's)
  generation >= 150 tokens/s               distilgpt2 generation.tokensPerSecond

and, when OUT_DIR/rounds.json exists (bench/gpu.sh with RATIO_ROUNDS=N), the ratio of each round: the one-wait edit
(`npm run bench -- --edit-only`) / PyTorch eager's one-sync edit (the faster variant), both from fresh processes
timed in turn, with their median and range.
`python3 bench/gpu_summary.py --add-round ROUNDS_JSON WEBGPU_JSON TORCH_JSON FIRST` appends one round (gpu.sh does).
"""
import json
import os
import sys


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        print(f"{os.path.basename(path)}: not read ({type(e).__name__}: {e})")
        return None


def eager_results(torch, shape):
    """PyTorch's eager results for one shape (both variants; the summary compares with the faster)."""
    return [r for r in (torch or {}).get("results", []) if r["shape"] == shape and r["variant"].startswith("eager")]


def round_ratio(rnd):
    """(webgpu one-wait ms, torch eager one-sync ms, ratio) of one round, or None where either side is missing."""
    web = (rnd.get("webgpu") or {}).get("models") or []
    one_sync = [r["oneSyncMs"] for r in eager_results(rnd.get("torch"), web[0]["name"]) if "oneSyncMs" in r] if web else []
    if not one_sync:
        return None
    w, t = web[0]["oneWaitMs"], min(one_sync)
    return w, t, w / t


def add_round(rounds_path, web_path, torch_path, first):
    """Appends one round to rounds.json (created if missing); a side that did not finish is kept as null."""
    rounds = load(rounds_path) if os.path.exists(rounds_path) else None
    rounds = rounds or {"bench": "mendlab-rounds", "version": 1, "rounds": []}
    rnd = {"first": first, "webgpu": load(web_path) if os.path.exists(web_path) else None,
           "torch": load(torch_path) if os.path.exists(torch_path) else None}
    rounds["rounds"].append(rnd)
    with open(rounds_path, "w") as f:
        json.dump(rounds, f, indent=2)
    r = round_ratio(rnd)
    print(f"round {len(rounds['rounds']) - 1} ({first} first): " + (
        f"webgpu {r[0]:.3f} ms / torch {r[1]:.3f} ms = {r[2]:.3f}" if r else "incomplete (a side did not finish)"))
    return 0


def print_rounds(rounds):
    ratios = []
    print(f"ratio rounds ({len(rounds.get('rounds', []))}): one-wait edit / PyTorch eager one sync, fresh processes in turn")
    for i, rnd in enumerate(rounds.get("rounds", [])):
        r = round_ratio(rnd)
        if r:
            ratios.append(r[2])
        shape = ((rnd.get("webgpu") or {}).get("models") or [{}])[0].get("name", "?")
        print(f"  round {i} ({rnd.get('first')} first, {shape}): " + (
            f"webgpu {r[0]:.2f} ms, torch {r[1]:.2f} ms, ratio {r[2]:.2f}" if r else "incomplete"))
    if ratios:
        s = sorted(ratios)
        med = s[len(s) // 2] if len(s) % 2 else (s[len(s) // 2 - 1] + s[len(s) // 2]) / 2
        print(f"  ratio median {med:.2f}, range {s[0]:.2f}-{s[-1]:.2f}; <= 1.0 in {sum(r <= 1.0 for r in s)} of {len(s)}")


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--add-round":
        if len(sys.argv) != 6:
            print("usage: gpu_summary.py --add-round ROUNDS_JSON WEBGPU_JSON TORCH_JSON FIRST", file=sys.stderr)
            return 2
        return add_round(*sys.argv[2:6])
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    web = load(os.path.join(out, "webgpu.json"))
    torch = load(os.path.join(out, "torch.json"))
    rounds_path = os.path.join(out, "rounds.json")
    rounds = load(rounds_path) if os.path.exists(rounds_path) else None
    if torch:
        print(f"torch {torch.get('torch')} on {torch.get('device')}, complete={torch.get('complete')}")
        for r in torch.get("results", []):
            one = f"; one sync {r['oneSyncMs']:.3f} ms" if "oneSyncMs" in r else ""
            print(f"  {r['shape']:<12} {r['variant']:<12} total {r['totalMs']:9.3f} ms = capture {r['captureMs']:.3f}"
                  f" + editor {r['editorMs']:.3f} + update {r['updateMs']:.3f}{one}")
        for n in torch.get("notes", []):
            print(f"  note: {n}")
    if rounds:
        print_rounds(rounds)
    if not web:
        return 0
    a = web.get("adapter", {})
    print(f"webgpu on {a.get('vendor')} / {a.get('architecture')} / {a.get('description')}"
          f"{' [software: only ratios count]' if a.get('software') else ''}, complete={web.get('complete')}")
    for m in web.get("models", []):
        eager = eager_results(torch, m["name"])
        e, g, b, p = m["edit"], m["generation"], m["bandwidth"], m.get("pipeline")
        synced = f"{e['totalMs'] / min(r['totalMs'] for r in eager):.2f}" if eager else "n/a (no torch result for this shape)"
        one_sync = [r["oneSyncMs"] for r in eager if "oneSyncMs" in r]
        if p:
            ratio = f"{p['oneWaitMs'] / min(one_sync):.2f}" if one_sync else "n/a (no one-sync torch time)"
            print(f"  {m['name']}: edit {p['oneWaitMs']:.2f} ms as the app runs it (one wait); WebGPU/PyTorch-eager {ratio}"
                  f" (each with one sync{f', torch {min(one_sync):.2f} ms' if one_sync else ''})")
        print(f"  {m['name']}: edit synced per phase {e['totalMs']:.2f} ms (capture {e['captureMs']:.2f}, editor {e['editorMs']:.2f}, "
              f"update {e['updateMs']:.2f}); WebGPU/PyTorch-eager {synced} (both synced per phase); update/copy bandwidth "
              f"{100 * b['ratio']:.0f}% ({b['timing']}); generation {g['tokensPerSecond']:.1f} tokens/s")
    lb = web.get("largeBandwidth")
    if lb:
        print(f"  DRAM yardstick: update {lb['updateGBs']:.0f} GB/s vs copy {lb['copyGBs']:.0f} GB/s = {100 * lb['ratio']:.0f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
