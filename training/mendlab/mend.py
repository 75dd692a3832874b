"""MEND: Model Editor Networks with Gradient Decomposition (Mitchell et al., ICLR 2022), per
/work/shared/docs/mend-spec.md (our clean-room spec) and docs/formats.md (the file contract).

Pieces, in the order an edit uses them:
- capture_rows: x (layer input) and delta (d loss / d layer output) rows of every edited weight, zero rows dropped.
- RunningNorm: per-dimension Welford statistics of x and of delta, updated only in training, frozen at test.
- LRLinear / GradientTransform: the low-rank IDMLP (2 residual blocks, identity at init, clamp(min=0) whose
  gradient at 0 is 1), one per weight *shape*, shared by the layers of that shape via per-mode scale/shift.
- MEND.weight_updates: ΔW_k = sign * lr_scale * edit_lrs[k] * Σ_i x̃_iᵀ δ̃_i (Conv1D layout [in, out]).
- mend_edit: one edit of a group of facts, at lr_scale for one fact and lr_scale_batch (editor_config.json, where
  set) for more, as the TypeScript editor does.
"""
import math
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F

from .corpus import prompt_target_batch


def editor_key(shape):
    return f"{shape[0]}x{shape[1]}"


class RunningNorm(nn.Module):
    """Running mean / sample std of rows, per dimension. Rows are folded in with Chan et al.'s parallel form of
    Welford's update, which gives the same mean and s = Σ (r - mean)² as folding them one by one."""

    def __init__(self, dim):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim, dtype=torch.float64))
        self.register_buffer("s", torch.zeros(dim, dtype=torch.float64))
        self.register_buffer("k", torch.zeros((), dtype=torch.float64))

    @torch.no_grad()
    def update(self, rows):
        n = rows.shape[0]
        if n == 0:
            return
        rows = rows.double()
        bmean = rows.mean(0)
        bs = ((rows - bmean) ** 2).sum(0)
        k = self.k + n
        d = bmean - self.mean
        self.s.copy_(self.s + bs + d * d * (self.k * n / k))
        self.mean.copy_(self.mean + d * (n / k))
        self.k.fill_(float(k))

    @property
    def std(self):
        if self.k < 2:
            raise RuntimeError("RunningNorm needs at least 2 rows before it can normalise")
        return torch.sqrt(self.s / (self.k - 1))

    def forward(self, rows, eps):
        return (rows - self.mean.to(rows.dtype)) / (self.std.to(rows.dtype) + eps)

    @torch.no_grad()
    def set_stats(self, mean, std, k=2):
        """Load exported statistics: mean, std and the number of rows k they summarise (s = std²·(k-1)).
        k matters only if training continues; at test time the statistics are frozen."""
        self.mean.copy_(mean.double())
        self.s.copy_(std.double() ** 2 * (k - 1))
        self.k.fill_(float(k))


class LRLinear(nn.Module):
    """h -> h + clamp(((h Vᵀ) Uᵀ + b) ⊙ scale[m] + shift[m], min=0). U = 0 at init, so the block starts as the
    identity; torch.clamp passes gradient 1 at exactly 0 (ReLU would pass 0 and U would never move)."""

    def __init__(self, dim, rank, n_modes):
        super().__init__()
        self.U = nn.Parameter(torch.zeros(dim, rank))
        self.V = nn.Parameter(torch.randn(rank, dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.mode_scale = nn.Parameter(torch.ones(n_modes, dim))
        self.mode_shift = nn.Parameter(torch.zeros(n_modes, dim))

    def forward(self, h, mode):
        pre = ((h @ self.V.T) @ self.U.T + self.bias) * self.mode_scale[mode] + self.mode_shift[mode]
        return h + torch.clamp(pre, min=0)


class GradientTransform(nn.Module):
    """The editor for one weight shape: normalise x and delta, run the 2-block IDMLP on concat(x̄, δ̄)."""

    def __init__(self, x_dim, delta_dim, rank, n_modes, norm_eps=1e-7):
        super().__init__()
        self.x_dim, self.delta_dim, self.norm_eps = x_dim, delta_dim, norm_eps
        D = x_dim + delta_dim
        self.rank = min(rank, D)
        self.x_norm = RunningNorm(x_dim)
        self.delta_norm = RunningNorm(delta_dim)
        self.layers = nn.ModuleList([LRLinear(D, self.rank, n_modes) for _ in range(2)])

    def forward(self, x, delta, mode):
        if self.training:  # statistics only ever move while training; frozen for test-time edits
            self.x_norm.update(x)
            self.delta_norm.update(delta)
        h = torch.cat([self.x_norm(x, self.norm_eps), self.delta_norm(delta, self.norm_eps)], dim=1)
        for layer in self.layers:
            h = layer(h, mode)
        return h[:, :self.x_dim], h[:, self.x_dim:]


class MEND(nn.Module):
    def __init__(self, edited_weights, shapes, rank, edit_lr_init=1e-4, sign=-1, lr_scale=1.0, norm_eps=1e-7,
                 lr_scale_batch=None, batch_retry=None, first_pass_guard=None):
        super().__init__()
        self.edited_weights = list(edited_weights)
        self.shapes = [tuple(s) for s in shapes]
        self.sign, self.lr_scale, self.norm_eps = sign, lr_scale, norm_eps
        # The test-time multiplier for an edit of more than one fact; None = lr_scale (docs/formats.md).
        self.lr_scale_batch = lr_scale_batch
        # {"max_passes", "lr_scale"}: an edit of more than one fact retries the facts its edit prompt does not give
        # yet (mend_edit_passes); None = one pass (docs/formats.md, calibrate_batch_passes.py).
        self.batch_retry = dict(batch_retry) if batch_retry else None
        # {"max_increase", "max_halvings", "prose_ids"}: pass 1 of a single-fact edit is halved while it raises the
        # perplexity of prose_ids by more than max_increase (first_pass_scale); None = no guard (docs/formats.md).
        self.first_pass_guard = dict(first_pass_guard) if first_pass_guard else None
        groups = OrderedDict()
        for name, shape in zip(self.edited_weights, self.shapes):
            groups.setdefault(editor_key(shape), []).append(name)
        self.groups = groups
        self.mode = {n: names.index(n) for names in groups.values() for n in names}
        self.editors = nn.ModuleDict({
            key: GradientTransform(self.shapes[self.edited_weights.index(names[0])][0],
                                   self.shapes[self.edited_weights.index(names[0])][1], rank, len(names), norm_eps)
            for key, names in groups.items()})
        self.edit_lrs = nn.Parameter(torch.full((len(self.edited_weights),), float(edit_lr_init)))

    def transform(self, name, x, delta):
        """Editor outputs (x̃, δ̃) for the rows of one edited weight."""
        k = self.edited_weights.index(name)
        return self.editors[editor_key(self.shapes[k])](x, delta, self.mode[name])

    def scale_for(self, n_facts):
        """The test-time multiplier of an edit of n_facts facts at once."""
        return self.lr_scale_batch if n_facts > 1 and self.lr_scale_batch is not None else self.lr_scale

    def weight_updates(self, rows, return_parts=False, lr_scale=None):
        """rows: name -> (x [N, in], delta [N, out]). Returns name -> additive update for W ([in, out]), at
        `lr_scale` (default self.lr_scale). Weights are processed in edited_weights order (this is the order the
        statistics see them in)."""
        scale = self.lr_scale if lr_scale is None else lr_scale
        updates, parts = {}, {}
        for k, name in enumerate(self.edited_weights):
            x, d = rows[name]
            xt, dt = self.transform(name, x, d)
            dw = xt.T @ dt  # Σ_i x̃_iᵀ δ̃_i, a sum over rows (not a mean)
            updates[name] = self.sign * scale * self.edit_lrs[k] * dw
            if return_parts:
                parts[name] = (xt, dt, dw)
        return (updates, parts) if return_parts else updates

    def config(self):
        return {
            "edited_weights": self.edited_weights,
            "weight_shapes": [list(s) for s in self.shapes],
            "editors": {key: {"x_dim": self.editors[key].x_dim, "delta_dim": self.editors[key].delta_dim,
                              "rank": self.editors[key].rank, "n_modes": len(names), "weights": names}
                        for key, names in self.groups.items()},
            "sign": self.sign, "lr_scale": self.lr_scale,
            **({"lr_scale_batch": self.lr_scale_batch} if self.lr_scale_batch is not None else {}),
            **({"batch_retry": self.batch_retry} if self.batch_retry else {}),
            **({"first_pass_guard": self.first_pass_guard} if self.first_pass_guard else {}),
            "norm_eps": self.norm_eps,
            "norm_rows_seen": {key: int(self.editors[key].x_norm.k) for key in self.groups},
        }

    @classmethod
    def from_files(cls, config, tensors):
        """Rebuild an (eval-mode) editor from editor_config.json + editor.safetensors contents."""
        ranks = {e["rank"] for e in config["editors"].values()}
        m = cls(config["edited_weights"], config["weight_shapes"], max(ranks), 0.0, config["sign"],
                config["lr_scale"], config["norm_eps"], config.get("lr_scale_batch"), config.get("batch_retry"),
                config.get("first_pass_guard"))
        with torch.no_grad():
            m.edit_lrs.copy_(tensors["edit_lrs"])
            for key, ed in m.editors.items():
                p = f"editors.{key}."
                k = max(2, int(config.get("norm_rows_seen", {}).get(key, 2)))
                ed.x_norm.set_stats(tensors[p + "x_mean"], tensors[p + "x_std"], k)
                ed.delta_norm.set_stats(tensors[p + "delta_mean"], tensors[p + "delta_std"], k)
                for i, layer in enumerate(ed.layers):
                    for t in ("U", "V", "bias", "mode_scale", "mode_shift"):
                        getattr(layer, t).copy_(tensors[p + f"layers.{i}.{t}"])
        return m.eval()

    def export_tensors(self):
        """Tensors named as docs/formats.md asks (float32)."""
        out = {"edit_lrs": self.edit_lrs.detach().float().cpu()}
        for key, ed in self.editors.items():
            p = f"editors.{key}."
            out[p + "x_mean"] = ed.x_norm.mean.float().cpu()
            out[p + "x_std"] = ed.x_norm.std.float().cpu()
            out[p + "delta_mean"] = ed.delta_norm.mean.float().cpu()
            out[p + "delta_std"] = ed.delta_norm.std.float().cpu()
            for i, layer in enumerate(ed.layers):
                for t in ("U", "V", "bias", "mode_scale", "mode_shift"):
                    out[p + f"layers.{i}.{t}"] = getattr(layer, t).detach().float().cpu()
        return out


# ---------------------------------------------------------------------------------------------------------
# Losses and gradient capture

def seq_nll(logits, labels):
    """Mean NLL over the labelled positions of each sequence -> [B]. labels[b, t] is the token position t
    must predict (-100 = not scored)."""
    logp = F.log_softmax(logits.float(), dim=-1)
    mask = labels != -100
    tok = logp.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return -(tok * mask).sum(1) / mask.sum(1).clamp(min=1)


def capture_rows(model, pairs, edited, device, pad_id, weights=None):
    """Forward + backward of the unedited model (or of the model with `weights` overriding some parameters: an
    edited model) on edits [(prompt_ids, target_ids)]. The loss is the sum over edits of each edit's mean target
    NLL, so a batch gives exactly the rows of its edits taken one by one.
    Returns name -> (x rows, delta rows) with rows whose x or delta is all zero dropped, plus the loss."""
    ids, labels, att = prompt_target_batch(pairs, pad_id)
    ids, labels, att = ids.to(device), labels.to(device), att.reshape(-1).to(device)
    taps = {n: None for n in edited}
    with torch.enable_grad():
        logits = model(ids, weights=weights, taps=taps)
        loss = seq_nll(logits, labels).sum()
        outs = [taps[n][1] for n in edited]
        deltas = torch.autograd.grad(loss, outs)
    rows = {}
    for n, d in zip(edited, deltas):
        x = taps[n][0].reshape(-1, taps[n][0].shape[-1])
        d = d.reshape(-1, d.shape[-1])
        # Padding rows have δ = 0 exactly (nothing after them is scored); `att` only makes that explicit.
        keep = (x != 0).any(1) & (d != 0).any(1) & att
        rows[n] = (x[keep], d[keep])
    return rows, float(loss)


def kl_loc(pre_logits, post_logits, mask):
    """KL(p_pre || p_post) at the masked positions, averaged per sequence, then over sequences."""
    lp_pre = F.log_softmax(pre_logits.float(), dim=-1)
    lp_post = F.log_softmax(post_logits.float(), dim=-1)
    kl = (lp_pre.exp() * (lp_pre - lp_post)).sum(-1)
    m = mask.float()
    return ((kl * m).sum(1) / m.sum(1).clamp(min=1)).mean()


def edited_weights_from(model, updates):
    params = dict(model.named_parameters())
    return {n: params[n] + u for n, u in updates.items()}


def mend_edit(model, mend, batch, device, pad_id):
    """The weights after one MEND edit of all facts in `batch` (rows captured together, one summed update at
    mend.scale_for(len(batch))), as a name -> tensor dict for a functional forward; the model is not changed.
    A single-fact edit with mend.first_pass_guard set takes pass 1 at first_pass_scale. An edit of at least
    batch_retry's min_facts facts (default 2; 1 = single edits too) with mend.batch_retry set is then retried as the
    app does (mend_edit_passes)."""
    scale = mend.scale_for(len(batch))
    if mend.first_pass_guard and len(batch) == 1:
        scale = first_pass_scale(model, mend, batch, device, pad_id, scale)[0]
    if mend.batch_retry and len(batch) >= int(mend.batch_retry.get("min_facts", 2)):
        r = mend.batch_retry
        return mend_edit_passes(model, mend, batch, device, pad_id, int(r["max_passes"]), scale, float(r["lr_scale"]),
                                trust_region=bool(r.get("trust_region", False)),
                                prose_guard=(r["prose_guard"]["prose_ids"], float(r["prose_guard"]["max_increase"]))
                                if r.get("prose_guard") else None)[0]
    rows, _ = capture_rows(model, [(e.prompt_ids, e.target_ids) for e in batch], mend.edited_weights, device, pad_id)
    with torch.no_grad():
        return edited_weights_from(model, mend.weight_updates(rows, lr_scale=scale))


@torch.no_grad()
def first_pass_scale(model, mend, batch, device, pad_id, scale):
    """mend.first_pass_guard: pass 1's lr_scale, halved while pass 1 at it raises the perplexity of the guard's
    prose by more than a factor 1 + max_increase (at most max_halvings times) -> (lr_scale, halvings). Rare edits
    wreck the model (one validation edit: held-out perplexity +244 %); their pass 1 is what does it, and the prose
    the guard reads picks them out (training/evaluate_pass1_guard.py, docs/training.md)."""
    from .evaluate import prose_nll  # (evaluate imports this module)
    g = mend.first_pass_guard
    rows, _ = capture_rows(model, [(e.prompt_ids, e.target_ids) for e in batch], mend.edited_weights, device, pad_id)
    ups = mend.weight_updates(rows, lr_scale=1.0)  # linear in lr_scale: s · ups is the update at scale s
    params = dict(model.named_parameters())
    base = prose_nll(model, g["prose_ids"], device)
    for h in range(int(g["max_halvings"])):
        w = {n: params[n] + scale * u for n, u in ups.items()}
        if prose_nll(model, g["prose_ids"], device, weights=w) - base <= math.log1p(float(g["max_increase"])):
            return scale, h
        scale /= 2
    return scale, int(g["max_halvings"])


@torch.no_grad()
def edit_prompt_taken(model, batch, device, pad_id, weights):
    """Per fact: is the whole target the teacher-forced argmax on its edit prompt under `weights` (ES's test, on
    what the editor is given: the edit prompt and target only)."""
    ids, labels, _ = prompt_target_batch([(e.prompt_ids, e.target_ids) for e in batch], pad_id)
    am = model(ids.to(device), weights=weights).argmax(-1)
    labels = labels.to(device)
    return ((am == labels) | (labels == -100)).all(1).tolist()


def mend_edit_passes(model, mend, batch, device, pad_id, passes, first_scale, retry_scale, retry_all=False,
                     trust_region=False, stats=None, prose_guard=None):
    """MEND applied up to `passes` times (training/calibrate_batch_passes.py). Pass 1 is mend_edit at first_scale.
    Each later pass captures rows on the model as edited so far and adds the editor's update at retry_scale: for
    the facts whose edit prompt does not yet give the target (retry_all=False; none left = stop early), or for
    every fact (retry_all=True). trust_region: a later pass whose update of any weight has a larger Frobenius norm
    than pass 1's update of that weight is refused (not applied) and the edit stops there; stats["refused"] counts
    refusals. prose_guard = (token-id sequences, slack): a later pass that raises the perplexity of those sequences
    by more than a factor 1 + slack over the weights before it is refused too (stats["refused_prose"]); the app can
    run the same check on its shipped held-out prose. Returns (weights, passes applied)."""
    params = dict(model.named_parameters())
    w = {}
    todo = list(batch)
    done = 0
    first_norms = {}
    for p in range(passes):
        if p > 0 and not retry_all:
            ok = edit_prompt_taken(model, batch, device, pad_id, w)
            todo = [e for e, t in zip(batch, ok) if not t]
            if not todo:
                break
        rows, _ = capture_rows(model, [(e.prompt_ids, e.target_ids) for e in todo], mend.edited_weights, device,
                               pad_id, weights=w or None)
        with torch.no_grad():
            ups = mend.weight_updates(rows, lr_scale=first_scale if p == 0 else retry_scale)
            norms = {n: float(u.norm()) for n, u in ups.items()}
            if p == 0:
                first_norms = norms
            elif trust_region and any(norms[n] > first_norms[n] for n in norms):
                if stats is not None:
                    stats["refused"] = stats.get("refused", 0) + 1
                break
            cand = {n: w.get(n, params[n]) + u for n, u in ups.items()}
            if p > 0 and prose_guard is not None:
                from .evaluate import prose_nll  # (evaluate imports this module)
                seqs, slack = prose_guard
                if prose_nll(model, seqs, device, weights=cand) - prose_nll(model, seqs, device, weights=w) \
                        > math.log1p(slack):
                    if stats is not None:
                        stats["refused_prose"] = stats.get("refused_prose", 0) + 1
                    break
            w = cand
        done += 1
    return w, done
