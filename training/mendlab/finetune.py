"""The fine-tuning baseline (FT): Adam directly on the same weights MEND edits, a fixed number of steps on
the edit prompt's target NLL (the sum over edits of each edit's mean NLL, as for MEND's gradient)."""
import torch

from .corpus import prompt_target_batch
from .mend import seq_nll


def finetune_weights(model, edits, names, steps, lr, device, pad_id):
    params = dict(model.named_parameters())
    weights = {n: params[n].detach().clone().requires_grad_(True) for n in names}
    opt = torch.optim.Adam(list(weights.values()), lr=lr)
    ids, labels, _ = prompt_target_batch([(e.prompt_ids, e.target_ids) for e in edits], pad_id)
    ids, labels = ids.to(device), labels.to(device)
    with torch.enable_grad():
        for _ in range(steps):
            loss = seq_nll(model(ids, weights=weights), labels).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return {n: w.detach() for n, w in weights.items()}
