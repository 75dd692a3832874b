#!/usr/bin/env python3
"""The MEND edit of `npm run bench`, timed in PyTorch: the counterpart that gives the WebGPU/PyTorch ratio.

Same work as the TypeScript engine (src/editors/mend.ts), same shapes, random weights:
  capture  forward of GPT-2 on one 16-token sequence (prompt ++ target) and a backward pass of the mean NLL over
           the target tokens down to the earliest edited layer, giving x (layer input) and delta (dloss/d output)
           for each edited Conv1D weight (the last 3 blocks' mlp.c_fc and mlp.c_proj);
  editor   the MEND editor (per weight shape, FiLM mode per weight): normalise, two low-rank residual blocks,
           split into x~ and delta~, rows whose x or delta is all zero masked out;
  update   W' = W + c * x~^T delta~ (a new tensor, like the engine, which keeps W for a bit-exact revert).
Each phase ends with a device synchronisation (captureMs, editorMs, updateMs, totalMs); oneSyncMs is the same edit
with a single synchronisation at the end, timed alternately with it. The median over --reps after --warmup is reported.

Variants:
  eager-hooks  MEND's way: forward hooks on the edited modules keep x and the output; delta = autograd.grad of
               the loss w.r.t. those outputs (only the edited part of the graph is differentiated, no weight grads).
  eager-probe  the engine's way: a zero "probe" added to each edited output; delta = grad w.r.t. the probes.
  compile      eager-probe with the model forward and the editor under torch.compile (the backward is compiled
               by AOTAutograd); skipped with a note where torch.compile is unavailable (torch < 2).

Prints one JSON object. fp32 throughout (TF32 off), like WebGPU.
usage: python3 bench/torch_edit.py [--shapes distilgpt2,gpt2-medium] [--compile-shapes distilgpt2]
                                   [--reps 10] [--warmup 3] [--rank 1920] [--device cuda|cpu] [--out FILE] [--check]
"""
import argparse
import json
import math
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

SHAPES = {
    "distilgpt2": dict(n_layer=6, n_embd=768, n_head=12, vocab=50257, n_pos=1024, edited_blocks=3),
    "gpt2-medium": dict(n_layer=24, n_embd=1024, n_head=16, vocab=50257, n_pos=1024, edited_blocks=3),
    "tiny": dict(n_layer=2, n_embd=64, n_head=4, vocab=1000, n_pos=64, edited_blocks=2),
}
EDIT_TOKENS, TARGET_TOKENS = 16, 3


class Conv1D(nn.Module):
    """GPT-2's Conv1D: W stored [in, out], y = x @ W + b."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out).uniform_(-0.02 * 3 ** 0.5, 0.02 * 3 ** 0.5), requires_grad=False)
        self.bias = nn.Parameter(torch.zeros(n_out), requires_grad=False)

    def forward(self, x):
        return torch.addmm(self.bias, x, self.weight)


class Block(nn.Module):
    def __init__(self, c, h):
        super().__init__()
        self.n_head = h
        self.ln_1, self.ln_2 = nn.LayerNorm(c, eps=1e-5), nn.LayerNorm(c, eps=1e-5)
        self.c_attn, self.attn_proj = Conv1D(c, 3 * c), Conv1D(c, c)
        self.c_fc, self.c_proj = Conv1D(c, 4 * c), Conv1D(4 * c, c)

    def forward(self, x, probes=None, xs=None, i=None):
        T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=1)
        heads = lambda t: t.view(T, self.n_head, C // self.n_head).transpose(0, 1)
        y = F.scaled_dot_product_attention(heads(q), heads(k), heads(v), is_causal=True) if hasattr(F, "scaled_dot_product_attention") \
            else _attention(heads(q), heads(k), heads(v))
        x = x + self.attn_proj(y.transpose(0, 1).reshape(T, C))
        h = self.ln_2(x)
        a = self.c_fc(h)
        if probes is not None and (i, "c_fc") in probes:
            xs[(i, "c_fc")] = h
            a = a + probes[(i, "c_fc")]
        g = F.gelu(a, approximate="tanh")  # gelu_new
        m = self.c_proj(g)
        if probes is not None and (i, "c_proj") in probes:
            xs[(i, "c_proj")] = g
            m = m + probes[(i, "c_proj")]
        return x + m


def _attention(q, k, v):
    T = q.shape[1]
    att = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    att = att.masked_fill(torch.ones(T, T, dtype=torch.bool, device=q.device).triu(1), -1e9)
    return att.softmax(-1) @ v


class GPT2(nn.Module):
    def __init__(self, s):
        super().__init__()
        c = s["n_embd"]
        self.wte = nn.Parameter(torch.empty(s["vocab"], c).uniform_(-0.0346, 0.0346), requires_grad=False)
        self.wpe = nn.Parameter(torch.empty(s["n_pos"], c).uniform_(-0.0346, 0.0346), requires_grad=False)
        self.h = nn.ModuleList(Block(c, s["n_head"]) for _ in range(s["n_layer"]))
        self.ln_f = nn.LayerNorm(c, eps=1e-5)
        for p in self.parameters():
            p.requires_grad_(False)

    def forward(self, ids, probes=None, xs=None):
        x = self.wte[ids] + self.wpe[: ids.shape[0]]
        for i, b in enumerate(self.h):
            x = b(x, probes, xs, i)
        return self.ln_f(x) @ self.wte.t()


def target_loss(logits, prompt_len, target):
    return F.cross_entropy(logits[prompt_len - 1: prompt_len - 1 + target.shape[0]], target)


class Editor(nn.Module):
    """One MEND editor (one weight shape): normalisation stats, 2 low-rank residual blocks with FiLM modes."""

    def __init__(self, x_dim, d_dim, rank, n_modes):
        super().__init__()
        D, r = x_dim + d_dim, min(rank, x_dim + d_dim)
        self.x_dim = x_dim
        u = lambda *shape: nn.Parameter(torch.empty(*shape).uniform_(-0.01, 0.01), requires_grad=False)
        self.mean = nn.Parameter(torch.cat([torch.empty(x_dim).uniform_(-0.1, 0.1), torch.empty(d_dim).uniform_(-1e-4, 1e-4)]), requires_grad=False)
        self.std = nn.Parameter(torch.cat([torch.ones(x_dim), torch.full((d_dim,), 1e-3)]), requires_grad=False)
        self.U = nn.ParameterList([u(D, r) for _ in range(2)])
        self.V = nn.ParameterList([nn.Parameter(torch.empty(r, D).uniform_(-D ** -0.5, D ** -0.5), requires_grad=False) for _ in range(2)])
        self.bias = nn.ParameterList([nn.Parameter(torch.zeros(D), requires_grad=False) for _ in range(2)])
        self.scale = nn.ParameterList([nn.Parameter(torch.ones(n_modes, D), requires_grad=False) for _ in range(2)])
        self.shift = nn.ParameterList([nn.Parameter(torch.zeros(n_modes, D), requires_grad=False) for _ in range(2)])


def editor_forward(x, d, keep, mean, std, U0, V0, b0, s0, o0, U1, V1, b1, s1, o1, x_dim: int):
    """h_L = editor(normalise(concat(x, delta))) for one weight's rows (FiLM rows s*, o* already picked)."""
    h = (torch.cat([x, d], 1) - mean) / (std + 1e-7)
    h = h + torch.relu(((h @ V0.t()) @ U0.t() + b0) * s0 + o0)
    h = h + torch.relu(((h @ V1.t()) @ U1.t() + b1) * s1 + o1)
    return h[:, :x_dim], h[:, x_dim:] * keep


def update(W, xt, dt, c: float):
    return torch.addmm(W, xt.t(), dt, alpha=c)


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


class Edit:
    """The MEND edit of one model; `capture_mode` 'hooks' or 'probe'; compiled pieces when `compiled`."""

    def __init__(self, s, rank, dev, capture_mode, compiled):
        self.s, self.dev, self.mode = s, dev, capture_mode
        self.model = GPT2(s).to(dev).eval()
        L = s["n_layer"]
        self.edited = [(i, k) for i in range(L - s["edited_blocks"], L) for k in ("c_fc", "c_proj")]
        c = s["n_embd"]
        shape = {"c_fc": (c, 4 * c), "c_proj": (4 * c, c)}
        self.editors = {k: Editor(*shape[k], rank, s["edited_blocks"]).to(dev) for k in ("c_fc", "c_proj")}
        self.coef = {e: -1e-4 for e in self.edited}
        g = torch.Generator().manual_seed(1)
        ids = torch.randint(0, s["vocab"], (EDIT_TOKENS,), generator=g)
        self.ids, self.prompt_len = ids.to(dev), EDIT_TOKENS - TARGET_TOKENS
        self.target = self.ids[self.prompt_len:]
        self.forward = torch.compile(self._probe_forward, dynamic=False) if compiled else self._probe_forward
        self.editor_fn = torch.compile(editor_forward, dynamic=False) if compiled else editor_forward
        self.update_fn = torch.compile(update, dynamic=False) if compiled else update

    def _probe_forward(self, ids, probes):
        xs = {}
        logits = self.model(ids, probes, xs)
        return target_loss(logits, self.prompt_len, self.target), xs

    def capture(self):
        """{(block, kind): (x [T, in], delta [T, out])}."""
        if self.mode == "hooks":
            xs, outs, handles = {}, {}, []
            for i, k in self.edited:
                mod = self.model.h[i].c_fc if k == "c_fc" else self.model.h[i].c_proj

                def hook(m, inp, out, key=(i, k)):
                    xs[key] = inp[0].detach()
                    if not out.requires_grad:
                        out.requires_grad_()  # the earliest edited layer: its output starts the differentiated graph
                    outs[key] = out
                handles.append(mod.register_forward_hook(hook))
            try:
                loss = target_loss(self.model(self.ids), self.prompt_len, self.target)
            finally:
                for h in handles:
                    h.remove()
            deltas = torch.autograd.grad(loss, [outs[e] for e in self.edited])
            return {e: (xs[e], d) for e, d in zip(self.edited, deltas)}
        T = self.ids.shape[0]
        # c_fc outputs are [T, 4C] and c_proj outputs [T, C]
        probes = {(i, k): torch.zeros(T, 4 * self.s["n_embd"] if k == "c_fc" else self.s["n_embd"], device=self.dev, requires_grad=True)
                  for i, k in self.edited}
        loss, xs = self.forward(self.ids, probes)
        deltas = torch.autograd.grad(loss, [probes[e] for e in self.edited])
        return {e: (xs[e].detach(), d) for e, d in zip(self.edited, deltas)}

    def run_editor(self, rows):
        out = {}
        first = self.s["n_layer"] - self.s["edited_blocks"]
        for (i, k), (x, d) in rows.items():
            ed, m = self.editors[k], i - first
            keep = ((x.abs().amax(1, keepdim=True) > 0) & (d.abs().amax(1, keepdim=True) > 0)).to(x.dtype)
            out[(i, k)] = self.editor_fn(x, d, keep, ed.mean, ed.std,
                                         ed.U[0], ed.V[0], ed.bias[0], ed.scale[0][m], ed.shift[0][m],
                                         ed.U[1], ed.V[1], ed.bias[1], ed.scale[1][m], ed.shift[1][m], ed.x_dim)
        return out

    def run_update(self, outs):
        new = {}
        for (i, k), (xt, dt) in outs.items():
            W = (self.model.h[i].c_fc if k == "c_fc" else self.model.h[i].c_proj).weight
            new[(i, k)] = self.update_fn(W, xt, dt, self.coef[(i, k)])
        return new

    @torch.no_grad()
    def _no_grad(self, f, *a):
        return f(*a)

    def timed(self):
        sync(self.dev)
        t0 = time.perf_counter()
        rows = self.capture()
        sync(self.dev)
        t1 = time.perf_counter()
        outs = self._no_grad(self.run_editor, rows)
        sync(self.dev)
        t2 = time.perf_counter()
        new = self._no_grad(self.run_update, outs)
        sync(self.dev)
        t3 = time.perf_counter()
        del new
        ms = lambda a, b: (b - a) * 1e3
        return {"captureMs": ms(t0, t1), "editorMs": ms(t1, t2), "updateMs": ms(t2, t3), "totalMs": ms(t0, t3)}

    def timed_one_sync(self):
        """The same edit with one synchronisation, at the end: PyTorch's own queueing lets the GPU run a phase
        while Python launches the next (the counterpart of the engine's default, one wait per edit)."""
        sync(self.dev)
        t0 = time.perf_counter()
        rows = self.capture()
        outs = self._no_grad(self.run_editor, rows)
        new = self._no_grad(self.run_update, outs)
        sync(self.dev)
        t1 = time.perf_counter()
        del new
        return (t1 - t0) * 1e3


def bench(shape, s, rank, dev, mode, compiled, warmup, reps):
    torch.manual_seed(0)
    e = Edit(s, rank, dev, mode, compiled)
    t0 = time.perf_counter()
    for _ in range(warmup):
        e.timed()
    warm_s = time.perf_counter() - t0
    samples, one_sync = [], []
    for _ in range(reps):  # alternated, so both see the same machine state
        samples.append(e.timed())
        one_sync.append(e.timed_one_sync())
    med = {k: statistics.median(x[k] for x in samples) for k in samples[0]}
    res = {"shape": shape, "variant": ("compile" if compiled else f"eager-{mode}"), **med, "samples": samples,
           "oneSyncMs": statistics.median(one_sync), "oneSyncSamplesMs": one_sync, "warmupSeconds": warm_s}
    del e
    if dev.type == "cuda":
        res["peakGpuBytes"] = torch.cuda.max_memory_allocated()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    return res


def check(dev):
    """The hooks and the probe captures agree, and grad W = x^T delta (the identity MEND relies on)."""
    torch.manual_seed(0)
    e = Edit(SHAPES["tiny"], 8, dev, "hooks", False)
    a = e.capture()
    e.mode = "probe"
    b = e.capture()
    worst = max(max((a[k][0] - b[k][0]).abs().max().item(), (a[k][1] - b[k][1]).abs().max().item()) for k in a)
    (i, k) = e.edited[-1]
    W = e.model.h[i].c_proj.weight
    W.requires_grad_(True)
    loss = target_loss(e.model(e.ids), e.prompt_len, e.target)
    (gW,) = torch.autograd.grad(loss, [W])
    W.requires_grad_(False)
    x, d = a[(i, k)]
    ident = (gW - x.t() @ d).abs().max().item() / gW.abs().max().item()
    return {"hooksVsProbeMaxAbs": worst, "gradIdentityRelErr": ident, "ok": worst < 1e-6 and ident < 1e-4}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shapes", default="distilgpt2,gpt2-medium")
    p.add_argument("--compile-shapes", default="distilgpt2", help="shapes to also time under torch.compile ('' for none)")
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--rank", type=int, default=1920)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", help="also write the JSON here, rewritten after every result")
    p.add_argument("--check", action="store_true", help="also check hooks == probe capture and grad W = x^T delta (tiny shape)")
    a = p.parse_args()
    dev = torch.device(a.device)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    torch.set_grad_enabled(True)
    shapes = [s for s in a.shapes.split(",") if s]
    for s in shapes:
        if s not in SHAPES:
            sys.exit(f"unknown shape {s!r} (known: {', '.join(SHAPES)})")
    notes = []
    have_compile = hasattr(torch, "compile")
    if not have_compile:
        notes.append(f"torch {torch.__version__} has no torch.compile: compile timings skipped")
    out = {
        "bench": "mendlab-torch", "version": 1, "torch": torch.__version__, "python": sys.version.split()[0],
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)",
        "dtype": "float32 (TF32 off)", "editTokens": EDIT_TOKENS, "targetTokens": TARGET_TOKENS, "rank": a.rank,
        "reps": a.reps, "warmup": a.warmup, "results": [], "notes": notes,
    }
    if a.check:
        out["check"] = check(dev)
    def save(complete):
        # --out is rewritten after every result, so a run cut short by a time limit keeps what it measured.
        out["complete"] = complete
        if a.out:
            with open(a.out, "w") as f:
                json.dump(out, f, indent=2)

    # Every eager run first, then torch.compile (whose first calls compile for tens of seconds).
    for s in shapes:
        for mode in ("hooks", "probe"):
            print(f"[torch] {s} eager-{mode}", file=sys.stderr, flush=True)
            out["results"].append(bench(s, SHAPES[s], a.rank, dev, mode, False, a.warmup, a.reps))
            save(False)
    for s in shapes:
        if have_compile and s in a.compile_shapes.split(","):
            print(f"[torch] {s} compile (first calls compile)", file=sys.stderr, flush=True)
            try:
                out["results"].append(bench(s, SHAPES[s], a.rank, dev, "probe", True, max(a.warmup, 2), a.reps))
            except Exception as ex:  # a compiler failure must not lose the eager numbers
                notes.append(f"torch.compile failed for {s}: {type(ex).__name__}: {str(ex)[:300]}")
            save(False)
    save(True)
    print(json.dumps(out, indent=2))
    return 0 if not a.check or out["check"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
