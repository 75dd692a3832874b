"""Pretraining the GPT on the facts corpus: AdamW, warmup + cosine decay, stopped by a step count or a
wall-clock budget (whichever comes first), bf16 autocast on CUDA."""
import contextlib
import math
import time

import torch
import torch.nn.functional as F


def lm_loss(model, rows):
    """rows [B, T+1]: next-token cross-entropy over every position."""
    logits = model(rows[:, :-1])
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), rows[:, 1:].reshape(-1))


def pretrain(model, stream, cfg, device, log):
    """cfg: batch_size, lr, min_lr_frac, warmup_steps, max_steps, time_budget_s, weight_decay, log_every."""
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg["lr"], betas=(0.9, 0.95))
    use_amp = device.type == "cuda"
    model.train()
    t0 = time.time()
    step, tokens, hist = 0, 0, []
    batches = stream.batches(cfg["batch_size"])
    while True:
        elapsed = time.time() - t0
        # Progress is the larger of step- and time-fraction, so the schedule ends properly either way.
        progress = max(step / cfg["max_steps"], elapsed / cfg["time_budget_s"])
        if progress >= 1.0:
            break
        if step < cfg["warmup_steps"]:
            lr = cfg["lr"] * (step + 1) / cfg["warmup_steps"]
        else:
            lr = cfg["lr"] * (cfg["min_lr_frac"] + (1 - cfg["min_lr_frac"]) * 0.5 * (1 + math.cos(math.pi * progress)))
        for g in opt.param_groups:
            g["lr"] = lr
        rows = next(batches).to(device, non_blocking=True)
        amp = torch.autocast(device_type="cuda", dtype=torch.bfloat16) if use_amp else contextlib.nullcontext()
        with amp:
            loss = lm_loss(model, rows)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        tokens += rows.numel()
        if step % cfg["log_every"] == 0:
            lv = float(loss)
            hist.append((step, round(time.time() - t0, 1), lv))
            log(f"pretrain step {step} t={time.time() - t0:.0f}s loss {lv:.4f} lr {lr:.2e} epoch {stream.epoch}")
    model.eval()
    return {"steps": step, "tokens": tokens, "seconds": round(time.time() - t0, 1), "epochs": stream.epoch,
            "final_loss": hist[-1][2] if hist else None, "loss_curve": hist}
