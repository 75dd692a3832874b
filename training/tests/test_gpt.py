"""GPT-2 layout, functional forward, safetensors I/O and the gradient identity behind MEND."""
import json
import os
import sys
import tempfile
import unittest

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from mendlab.gpt import GPT, GPTConfig, hf_state_dict, load_hf_state_dict  # noqa: E402
from mendlab import safetensors_io as st  # noqa: E402

FIXTURES = os.path.join(HERE, "..", "..", "tests", "fixtures")


def tiny():
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=50, n_positions=16, n_embd=16, n_layer=2, n_head=2, n_inner=24))


class GPTTest(unittest.TestCase):
    def test_hf_names_and_conv1d_layout(self):
        sd = hf_state_dict(tiny())
        self.assertEqual(tuple(sd["transformer.h.0.mlp.c_fc.weight"].shape), (16, 24))  # [in, out]
        self.assertEqual(tuple(sd["transformer.h.1.mlp.c_proj.weight"].shape), (24, 16))
        self.assertEqual(tuple(sd["transformer.h.0.attn.c_attn.weight"].shape), (16, 48))
        self.assertNotIn("lm_head.weight", sd)
        self.assertEqual(len(sd), 2 + 12 * 2 + 2)

    def test_causal(self):
        m = tiny()
        a = m(torch.tensor([[1, 2, 3, 4]]))
        b = m(torch.tensor([[1, 2, 3, 9]]))
        self.assertTrue(torch.allclose(a[0, :3], b[0, :3]))
        self.assertFalse(torch.allclose(a[0, 3], b[0, 3]))

    def test_functional_forward_matches_and_overrides(self):
        m = tiny()
        ids = torch.tensor([[1, 2, 3, 4, 5]])
        w = m.transformer.h[1].mlp.c_fc.weight
        self.assertTrue(torch.allclose(m(ids), m(ids, weights={"transformer.h.1.mlp.c_fc.weight": w}), atol=1e-6))
        changed = m(ids, weights={"transformer.h.1.mlp.c_fc.weight": w + 0.5 * torch.randn_like(w)})
        self.assertFalse(torch.allclose(m(ids), changed))

    def test_safetensors_roundtrip_all_dtypes_and_shards(self):
        sd = hf_state_dict(tiny())
        for dt in (torch.float32, torch.float16, torch.bfloat16):
            with tempfile.TemporaryDirectory() as d:
                files = st.save_model({k: v.to(dt) for k, v in sd.items()}, d, max_shard_bytes=4000)
                self.assertIn("model.safetensors.index.json", files)
                self.assertGreater(len(files), 2)
                back = st.load_model(d)
                self.assertEqual(set(back), set(sd))
                for k in sd:
                    self.assertEqual(back[k].dtype, dt)
                    self.assertTrue(torch.equal(back[k], sd[k].to(dt)))
        m2 = load_hf_state_dict(tiny(), {k[len("transformer."):]: v for k, v in sd.items()})
        self.assertTrue(torch.equal(m2.transformer.wte.weight, sd["transformer.wte.weight"]))

    def test_safetensors_header_is_standard(self):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "a.safetensors")
            st.save_file({"b": torch.arange(6, dtype=torch.float32).reshape(2, 3)}, p)
            with open(p, "rb") as f:
                raw = f.read()
            n = int.from_bytes(raw[:8], "little")
            hdr = json.loads(raw[8:8 + n])
            self.assertEqual(hdr["b"], {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]})
            self.assertEqual(len(raw), 8 + n + 24)
            self.assertEqual((8 + n) % 8, 0)

    def test_engine_fixture_is_consistent(self):
        base = os.path.join(FIXTURES, "tiny-gpt2")
        with open(os.path.join(base, "golden.json")) as f:
            g = json.load(f)
        with open(os.path.join(base, "config.json")) as f:
            cfg = GPTConfig.from_hf(json.load(f))
        m = load_hf_state_dict(GPT(cfg), st.load_model(base)).double()
        f = g["forward"][0]
        self.assertLess((m(torch.tensor([f["input_ids"]]))[0] - torch.tensor(f["logits"], dtype=torch.float64)).abs().max().item(), 1e-6)
        for variant, tol in (("-sharded", 1e-6), ("-fp16", 0.1), ("-bf16", 0.5)):
            mv = load_hf_state_dict(GPT(cfg), st.load_model(base + variant)).double()
            err = (mv(torch.tensor([f["input_ids"]]))[0] - torch.tensor(f["logits"], dtype=torch.float64)).abs().max().item()
            self.assertLess(err, tol, variant)
        c = g["capture"]["weights"]["transformer.h.0.mlp.c_fc.weight"]
        x, d, grad = (torch.tensor(c[k], dtype=torch.float64) for k in ("x", "delta", "grad"))
        self.assertLess((x.T @ d - grad).abs().max().item(), 1e-7)


if __name__ == "__main__":
    unittest.main()
