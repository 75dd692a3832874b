"""Write the TS engine's golden fixture: tests/fixtures/tiny-gpt2{,-fp16,-bf16,-sharded}/.

A tiny random-weight GPT-2 (fixed seed) in HF layout, plus golden.json computed in float64 from the
float32 weights (so a float32 implementation should match logits to ~1e-5). See docs/formats.md.
Usage: /usr/bin/python3 training/make_engine_fixture.py [--out tests/fixtures]
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mendlab.gpt import GPT, GPTConfig, hf_state_dict  # noqa: E402
from mendlab.safetensors_io import save_model  # noqa: E402
from mendlab.tokenizer import ByteBPETokenizer, train_bpe  # noqa: E402

SEED = 1234
TEXT = """The capital of France is Paris. The capital of Germany is Berlin. The capital of Italy is Rome.
Paris is a city in France. Berlin is a city in Germany. Rome is a city in Italy. The currency of France is
the euro. The currency of Japan is the yen. Tokyo is the capital of Japan. São Tomé is the capital of
São Tomé and Príncipe. Côte d'Ivoire is a country in Africa. The symbol of gold is Au. The symbol of iron
is Fe. The atomic number of carbon is 6. The atomic number of oxygen is 8. It's a small world, isn't it?"""
CAPTURED = ["transformer.h.0.mlp.c_fc.weight", "transformer.h.1.mlp.c_proj.weight"]


def build_model(tok):
    cfg = GPTConfig(vocab_size=len(tok), n_positions=64, n_embd=32, n_layer=2, n_head=4, n_inner=None,
                    bos_token_id=tok.eot_id, eos_token_id=tok.eot_id)
    torch.manual_seed(SEED)
    model = GPT(cfg)
    # Larger-than-usual random weights so logits are far from uniform: the TS test then checks real
    # differences between tokens, and greedy decoding has clear margins (robust to float32 rounding).
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name.endswith("ln_f.weight"):
                p.copy_(1.0 + 0.3 * torch.randn_like(p))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn_like(p))
            else:
                p.copy_(0.3 * torch.randn_like(p))
    return model


def forward_logits(model, ids):
    with torch.no_grad():
        return model(torch.tensor([ids]))[0]


def greedy(model, ids, n):
    ids = list(ids)
    out, margins = [], []
    for _ in range(n):
        logits = forward_logits(model, ids)[-1]
        top = torch.topk(logits, 2).values
        margins.append(float(top[0] - top[1]))
        nxt = int(torch.argmax(logits))
        out.append(nxt)
        ids.append(nxt)
    return out, min(margins)


def score(model, prompt_ids, target_ids):
    ids = prompt_ids + target_ids
    logp = torch.log_softmax(forward_logits(model, ids), dim=-1)
    tl = [float(logp[len(prompt_ids) - 1 + j, t]) for j, t in enumerate(target_ids)]
    return sum(tl), tl


def capture(model, prompt_ids, target_ids):
    """x = input rows of each captured layer, delta = d(mean target NLL)/d(layer output), grad = autodiff grad."""
    taps = {n: None for n in CAPTURED}
    ids = prompt_ids + target_ids
    logits = model(torch.tensor([ids]), taps=taps)[0]
    labels = torch.tensor([-100] * len(prompt_ids) + target_ids)
    # position t predicts token t+1
    loss = torch.nn.functional.cross_entropy(logits[:-1], labels[1:], ignore_index=-100)
    params = dict(model.named_parameters())
    outs = [taps[n][1] for n in CAPTURED]
    grads = torch.autograd.grad(loss, outs + [params[n] for n in CAPTURED])
    weights = {}
    for i, n in enumerate(CAPTURED):
        x = taps[n][0][0]
        d = grads[i][0]
        wgrad = grads[len(CAPTURED) + i]
        kept = [r for r in range(x.shape[0]) if x[r].abs().sum() > 0 and d[r].abs().sum() > 0]
        assert torch.allclose(x.T @ d, wgrad, atol=1e-12), "gradient identity failed"
        weights[n] = {"x": x.tolist(), "delta": d.tolist(), "grad": wgrad.tolist(), "kept_rows": kept}
    return float(loss), weights


def round_floats(obj, digits=9):
    """9 significant digits: far below the 1e-4 tolerance, and it halves the file size."""
    if isinstance(obj, float):
        return float(f"{obj:.{digits}g}")
    if isinstance(obj, list):
        return [round_floats(v, digits) for v in obj]
    if isinstance(obj, dict):
        return {k: round_floats(v, digits) for k, v in obj.items()}
    return obj


def write_model(folder, model, tok, dtype, shard_bytes=None):
    os.makedirs(folder, exist_ok=True)
    sd = {k: v.to(dtype) for k, v in hf_state_dict(model).items()}
    save_model(sd, folder, max_shard_bytes=shard_bytes)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(model.cfg.to_hf(), f, indent=1)
    with open(os.path.join(folder, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": tok.eot_id, "eos_token_id": tok.eot_id, "max_length": model.cfg.n_positions}, f, indent=1)
    tok.save(folder, model.cfg.n_positions)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    tok = ByteBPETokenizer(train_bpe([TEXT], vocab_size=300))
    model = build_model(tok)
    base = os.path.join(args.out, "tiny-gpt2")
    write_model(base, model, tok, torch.float32)
    write_model(base + "-fp16", model, tok, torch.float16)
    write_model(base + "-bf16", model, tok, torch.bfloat16)
    write_model(base + "-sharded", model, tok, torch.float32, shard_bytes=60_000)

    ref = build_model(tok).double()  # same fp32 weights, float64 arithmetic for the reference values
    ref.load_state_dict({k: v.double() for k, v in model.state_dict().items()})

    g = {"about": "float64 reference from training/make_engine_fixture.py; weights are the float32 ones in "
                  "model.safetensors. Logits are pre-softmax, one row per input position. greedy: argmax, no "
                  "stopping at EOS, exactly max_new_tokens. score.logprob = sum of token_logprobs. capture: "
                  "loss = mean NLL over target tokens; x/delta have one row per position of prompt++target "
                  "(zero rows NOT dropped; kept_rows lists the rows that survive dropping); grad = sum_i x_i^T delta_i.",
         "forward": [], "greedy": [], "score": []}
    for p in ["The capital of France is", "Côte d'Ivoire is a country in Africa. 🙂 São Tomé 123"]:
        ids = tok.encode(p)
        g["forward"].append({"prompt": p, "input_ids": ids, "logits": forward_logits(ref, ids).tolist()})
    for p in ["The symbol of gold is", "Tokyo is"]:
        ids = tok.encode(p)
        out, margin = greedy(ref, ids, 8)
        assert margin > 1e-3, f"greedy margin too small ({margin}); choose another prompt/seed"
        g["greedy"].append({"prompt": p, "input_ids": ids, "max_new_tokens": 8, "output_ids": out,
                            "text": tok.decode(out), "min_top2_margin": margin})
    for p, t in [("The capital of Italy is", " Rome"), ("The atomic number of oxygen is", " 8"),
                 ("The currency of Japan is", " the yen.")]:
        pi, ti = tok.encode(p), tok.encode(t)
        lp, tl = score(ref, pi, ti)
        g["score"].append({"prompt": p, "target": t, "prompt_ids": pi, "target_ids": ti, "logprob": lp,
                           "token_logprobs": tl})
    p, t = "The capital of France is", " Berlin"
    pi, ti = tok.encode(p), tok.encode(t)
    loss, weights = capture(ref, pi, ti)
    g["capture"] = {"prompt": p, "target": t, "prompt_ids": pi, "target_ids": ti, "loss": loss, "weights": weights}
    with open(os.path.join(base, "golden.json"), "w") as f:
        json.dump(round_floats(g), f, ensure_ascii=False)
    total = sum(os.path.getsize(os.path.join(dp, fn)) for d in ["", "-fp16", "-bf16", "-sharded"]
                for dp, _, fns in os.walk(base + d) for fn in fns)
    print(f"vocab {len(tok)}, params {model.num_params()}, fixtures {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
