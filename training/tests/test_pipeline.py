"""Runs the --tiny pipeline once (CPU) and checks the properties the TS side and the docs rely on."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import run_pipeline  # noqa: E402
from mendlab import safetensors_io as st  # noqa: E402
from mendlab.corpus import prompt_target_batch  # noqa: E402
from mendlab.gpt import GPT, GPTConfig, load_hf_state_dict  # noqa: E402
from mendlab.mend import MEND, GradientTransform, RunningNorm, capture_rows, edited_weights_from, seq_nll  # noqa: E402


class TinyPipelineTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp()
        cls.fx = os.path.join(cls.tmp, "fixtures")
        cls.res = run_pipeline.main(["--tiny", "--out", cls.tmp, "--fixtures", cls.fx, "--device", "cpu"])
        cls.dir = cls.res["model_dir"]
        cls.model, cls.mend, cls.tok = cls.res["model"].cpu(), cls.res["mend"].cpu(), cls.res["tok"]

    def load_json(self, name, folder=None):
        with open(os.path.join(folder or self.dir, name), encoding="utf-8") as f:
            return json.load(f)

    # ---- artifacts --------------------------------------------------------------------------------
    def test_model_folder_is_hf_gpt2(self):
        cfg = self.load_json("config.json")
        self.assertEqual(cfg["model_type"], "gpt2")
        self.assertEqual(cfg["architectures"], ["GPT2LMHeadModel"])
        self.assertEqual(cfg["activation_function"], "gelu_new")
        sd = st.load_model(self.dir)
        L = cfg["n_layer"]
        expect = {"transformer.wte.weight", "transformer.wpe.weight", "transformer.ln_f.weight", "transformer.ln_f.bias"}
        for i in range(L):
            for n in ("ln_1", "ln_2", "attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"):
                expect |= {f"transformer.h.{i}.{n}.weight", f"transformer.h.{i}.{n}.bias"}
        self.assertEqual(set(sd), expect)
        inner = cfg["n_inner"] or 4 * cfg["n_embd"]
        self.assertEqual(list(sd["transformer.h.0.mlp.c_fc.weight"].shape), [cfg["n_embd"], inner])
        self.assertEqual(list(sd["transformer.wte.weight"].shape), [cfg["vocab_size"], cfg["n_embd"]])
        for fn in ("tokenizer.json", "tokenizer_config.json", "generation_config.json", "editor_config.json",
                   "editor.safetensors", "eval.json", "facts.json"):
            self.assertTrue(os.path.exists(os.path.join(self.dir, fn)), fn)
        for fn in os.listdir(self.dir):
            self.assertLessEqual(os.path.getsize(os.path.join(self.dir, fn)), 16 * 1024 * 1024, fn)
        # reloading gives the same logits
        m2 = load_hf_state_dict(GPT(GPTConfig.from_hf(cfg)), sd)
        ids = torch.tensor([self.tok.encode("The capital of France is")])
        self.assertTrue(torch.allclose(m2(ids), self.model(ids), atol=1e-5))

    def test_editor_files_follow_formats_md(self):
        cfg = self.load_json("editor_config.json")
        self.assertEqual(cfg["format"], "mendlab-editor")
        L = cfg["model"]["n_layer"]
        self.assertEqual(cfg["edited_weights"], [f"transformer.h.{i}.mlp.{w}.weight" for i in range(L - 3, L)
                                                 for w in ("c_fc", "c_proj")])
        t = st.load_file(os.path.join(self.dir, "editor.safetensors"))
        self.assertEqual(list(t["edit_lrs"].shape), [6])
        self.assertEqual(len(cfg["editors"]), 2)
        for key, e in cfg["editors"].items():
            self.assertEqual(key, f"{e['x_dim']}x{e['delta_dim']}")
            self.assertEqual(e["n_modes"], 3)
            D, r, M = e["x_dim"] + e["delta_dim"], e["rank"], e["n_modes"]
            self.assertEqual(list(t[f"editors.{key}.x_mean"].shape), [e["x_dim"]])
            self.assertEqual(list(t[f"editors.{key}.delta_std"].shape), [e["delta_dim"]])
            self.assertTrue((t[f"editors.{key}.x_std"] > 0).all())
            for i in (0, 1):
                self.assertEqual(list(t[f"editors.{key}.layers.{i}.U"].shape), [D, r])
                self.assertEqual(list(t[f"editors.{key}.layers.{i}.V"].shape), [r, D])
                self.assertEqual(list(t[f"editors.{key}.layers.{i}.bias"].shape), [D])
                self.assertEqual(list(t[f"editors.{key}.layers.{i}.mode_scale"].shape), [M, D])
                self.assertEqual(list(t[f"editors.{key}.layers.{i}.mode_shift"].shape), [M, D])
            # the editor trained: U moved away from its zero initialisation
            self.assertGreater(t[f"editors.{key}.layers.0.U"].abs().max().item(), 0)
        self.assertIn(cfg["sign"], (-1, 1))

    def test_eval_json_keys(self):
        ev = self.load_json("eval.json")
        for k in ("train_template_acc", "heldout_template_acc", "novel_phrasing_acc"):
            self.assertTrue(0 <= ev["base"][k] <= 1)
        for k in ("es", "ps", "ps_novel", "ns", "ppl_increase"):
            self.assertIn(k, ev["mend"]["single"])
            self.assertIsNotNone(ev["mend"]["single"][k])
        for k in ("es", "ps", "ns"):
            self.assertIn(k, ev["mend"]["batch10"])
        for k in ("es", "ps", "ns", "ppl_increase"):
            self.assertIn(k, ev["ft"]["single"])
        self.assertGreater(ev["counts"]["mend"]["batch10"]["n_groups"], 0)

    def test_eval_json_balanced_section(self):
        """eval.json "balanced": relation-balanced test edits, every relation equally often, sane metrics."""
        ev = self.load_json("eval.json")
        b = ev["balanced"]
        per = b["per_relation_requested"]
        self.assertGreater(per, 0)
        counts = b["edits_per_relation"]
        self.assertEqual(sum(counts.values()), b["n_edits"])
        self.assertEqual(set(counts), set(ev["base"]["per_relation"]))  # every relation of the (tiny) KB
        self.assertLessEqual(max(counts.values()) - min(counts.values()), 1)  # balanced, unlike eval.json's edits
        self.assertEqual(b["counts"]["mend"]["single"]["n_edits"], b["n_edits"])
        for m in ("mend", "ft"):
            for k in ("single", "batch10"):
                c = b["counts"][m][k]
                self.assertGreater(c["n_groups"], 0, (m, k))
                self.assertEqual(c["n_edits"], c["n_groups"] * (1 if k == "single" else 10))
                for metric in ("es", "ps", "ns"):
                    self.assertTrue(0 <= b[m][k][metric] <= 1, (m, k, metric))
                self.assertGreater(b[m][k]["ppl_increase"], -1)
                self.assertTrue(0 <= b["harmonic_es_ps_ns"][f"{m}_{k}"] <= 1)
                self.assertEqual(set(b["per_relation"][f"{m}_{k}"]) <= set(counts), True)
        self.assertEqual(set(b["per_relation"]["mend_single"]), set(counts))
        v = b["validation"]  # MEND on relation-balanced validation edits (the selection score)
        self.assertGreater(v["mend_single"]["n_edits"], 0)
        self.assertTrue(0 <= v["mend_single"]["harmonic_es_ps_ns"] <= 1)
        if v["mend_batch10"]["n_groups"]:
            self.assertAlmostEqual(v["score"], (v["mend_single"]["harmonic_es_ps_ns"]
                                                + v["mend_batch10"]["harmonic_es_ps_ns"]) / 2, places=3)
        else:
            self.assertIsNone(v["score"])
        # the keys are unchanged beside it
        self.assertEqual(set(ev) - {"balanced"}, {"base", "mend", "ft", "harmonic_es_ps_ns", "per_relation", "counts",
                                                  "ft_config", "mend_lr_scale", "mend_lr_scale_calibration",
                                                  "command", "versions", "timings_s"})

    def test_editor_training_with_relation_sampling_and_batch_options(self):
        """train_editor with editor.sampling=relation, batch_share and p_max_batch (a few steps of a fresh editor)."""
        from mendlab.corpus import KB, FactEncoder
        from mendlab.edits import EditSampler
        from mendlab.train_editor import train_editor
        cfg = {**run_pipeline.TINY["editor"], "steps": 8, "time_budget_s": 1e9, "log_every": 4, "seed": 0,
               "sampling": "relation", "batch_share": 0.75, "p_max_batch": 1.0, "n_paraphrases": 3,
               "n_same_relation": 2}

        class Recording(EditSampler):  # what train_editor asked the sampler for
            drawn = []

            def training_batch(self, *a, **kw):
                edits = super().training_batch(*a, **kw)
                self.drawn.extend(edits)
                return edits

        kb = KB(max_subjects_per_type=run_pipeline.TINY["kb_max_subjects_per_type"], seed=0)
        names = self.mend.edited_weights
        params = dict(self.model.named_parameters())
        torch.manual_seed(0)
        mend = MEND(names, [tuple(params[n].shape) for n in names], cfg["rank"], cfg["edit_lr_init"], cfg["sign"])
        info = train_editor(self.model, mend, Recording(kb, FactEncoder(self.tok), self.tok, 1), kb.subjects("train"),
                            cfg, torch.device("cpu"), self.tok.eot_id, lambda m: None)
        self.assertEqual(info["steps"], 8)
        self.assertEqual(info["steps_per_batch_size"], {1: 2, 10: 6})  # 3 of 4 steps are batches, all of 10
        self.assertEqual(sum(info["edits_per_relation"].values()), 2 + 60)
        self.assertGreaterEqual(len(info["edits_per_relation"]), 8)  # 62 draws spread over the 12 relations
        self.assertLess(info["edits_per_relation"].get("city_country", 0), 20)
        self.assertGreater(mend.editors[next(iter(mend.editors))].layers[0].U.abs().max().item(), 0)
        self.assertEqual(len(Recording.drawn), 62)
        self.assertTrue(all(len(e.paraphrases) == 3 for e in Recording.drawn))  # editor.n_paraphrases
        for e in Recording.drawn:  # locality: ≤ 2 same-subject facts, editor.n_same_relation = 2, ≤ 1 random, 1 prose
            same_subject = min(2, len(kb.by_subject[e.subject]) - 1)
            self.assertIn(len(e.locality), (same_subject + 2 + 1, same_subject + 2 + 1 + 1))

    def test_compare_with_ft_uses_the_pipelines_edits(self):
        """compare_with_ft.py rebuilds the pipeline's test edits (it checks eval.json's neighbour counts itself),
        so its MEND numbers are eval.json's, and it runs FT on every single edit, not the budgeted prefix."""
        import compare_with_ft
        ev = self.load_json("eval.json")
        r = compare_with_ft.main(["--model", self.dir, "--out", os.path.join(self.tmp, "mend-vs-ft.json"),
                                  "--threads", "1"])
        for k in ("es", "ps", "ns"):
            self.assertAlmostEqual(r["mend_single"][k], ev["mend"]["single"][k], places=4)
            self.assertAlmostEqual(r["mend_batch10"][k], ev["mend"]["batch10"][k], places=4)
        n_single = run_pipeline.TINY["eval"]["n_single"]
        self.assertEqual(r["ft_single"]["n_groups"], n_single)
        self.assertEqual(r["mend_single_on_eval_json_ft_edits"]["n_groups"], ev["counts"]["ft"]["single"]["n_groups"])
        self.assertLess(ev["counts"]["ft"]["single"]["n_groups"], n_single)  # the tiny config's FT prefix is shorter

    def test_more_draws_reproduce_eval_json_and_pair_mend_with_ft(self):
        """evaluate_more_draws.py: draw 0 is the pipeline's (its MEND numbers are eval.json's), a further draw holds
        other edits, pooled counts equal the per-draw means, and the paired bootstrap of a run against itself gives
        a zero difference while the intervals bracket the pooled means."""
        import evaluate_more_draws as emd
        ev = self.load_json("eval.json")
        r = emd.main(["--model", self.dir, "--batch-draws", "2", "--single-draws", "1", "--resamples", "200",
                      "--runs", "mend.single,mend.batch10,ft.batch10", "--out", os.path.join(self.tmp, "more.json")])
        d0 = {run: r["draws"][run][0] for run in ("mend.single", "mend.batch10")}
        for k in ("es", "ps", "ns"):
            self.assertAlmostEqual(d0["mend.single"][k], ev["mend"]["single"][k], places=4)
            self.assertAlmostEqual(d0["mend.batch10"][k], ev["mend"]["batch10"][k], places=4)
        self.assertEqual([x["draw"] for x in r["draws"]["mend.batch10"]], [0, 1])
        self.assertEqual(len(r["draws"]["mend.single"]), 1)
        self.assertIsNone(r["draws"]["mend.single"][0]["ppl_increase"])  # singles skip the prose pass
        self.assertIsNotNone(r["draws"]["ft.batch10"][1]["ppl_increase"])
        from mendlab.model_folder import load_shipped
        sh = load_shipped(self.dir, torch.device("cpu"))
        e0, e1 = (emd.draw_edits(sh, sh.config["eval"], k) for k in (0, 1))
        self.assertNotEqual([(e.subject, e.new_object) for e in e0], [(e.subject, e.new_object) for e in e1])
        pb = r["pooled"]["mend.batch10"]
        self.assertEqual(pb["n_groups"], 2 * run_pipeline.TINY["eval"]["n_batch_groups"])
        for k in ("es", "ns"):  # equal group sizes: the pooled ES is the mean of the draws'
            lo, hi = pb["per_draw_range"][k]
            self.assertTrue(lo - 1e-9 <= pb[k] <= hi + 1e-9)
        # NS split by neighbour kind: the kinds' prompts add up to the pooled NS, per draw and over the draws
        for run in ("mend.single", "mend.batch10"):
            for d in r["draws"][run] + [r["pooled"][run]]:
                kinds = d["ns_by_kind"]
                self.assertLessEqual(set(kinds), {"same_relation", "same_subject"})
                n = sum(v["n"] for v in kinds.values())
                self.assertAlmostEqual(sum(v["ns"] * v["n"] for v in kinds.values()) / n, d["ns"], places=9)
        self.assertEqual(sum(v["n"] for v in pb["ns_by_kind"].values()),
                         sum(d["n_neighbour_prompts"] for d in r["draws"]["mend.batch10"]))
        counts = [[1, 1, 3, 4, 5, 6], [0, 1, 2, 4, 6, 6], [1, 1, 4, 4, 3, 6]]
        same = emd.bootstrap({"a": counts, "b": counts}, n_resamples=300)
        self.assertEqual(same["a - b"]["harmonic_es_ps_ns"]["interval"], [0.0, 0.0])
        self.assertEqual(same["a - b"]["es"]["share_above_0"], 0.0)
        p = emd.pooled(counts)
        self.assertAlmostEqual(p["es"], 2 / 3)
        self.assertAlmostEqual(p["ps"], 9 / 12)
        self.assertTrue(same["a"]["es"][0] <= p["es"] <= same["a"]["es"][1])
        better = emd.bootstrap({"a": [[1, 1, 4, 4, 6, 6]] * 3, "b": counts}, n_resamples=300)
        self.assertGreater(better["a - b"]["harmonic_es_ps_ns"]["interval"][0], 0.0)

    def test_single_scale_rule_and_run(self):
        """calibrate_single_scale.py: the rule takes the best validation harmonic among scales meeting NS >= 0.95 and
        ppl <= 2 %, keeps the shipped scale when none does; a tiny run evaluates every grid scale on validation."""
        import calibrate_single_scale as css
        g = lambda sc, h, ns, ppl: {"lr_scale": sc, "val_single": {"harmonic_es_ps_ns": h, "ns": ns, "ppl_increase": ppl}}
        grid = [g(1.25, 0.96, 0.97, 0.01), g(1.5, 0.98, 0.96, 0.015), g(1.75, 0.99, 0.94, 0.01), g(2.0, 0.995, 0.97, 0.03)]
        self.assertEqual(css.choose(grid, 1.25)[0], 1.5)  # 1.75 misses NS, 2.0 misses perplexity
        self.assertEqual(css.choose([g(1.5, 0.99, 0.90, 0.0)], 1.25)[0], 1.25)
        out = os.path.join(self.tmp, "single-scale.json")
        r = css.main(["--model", self.dir, "--n-val", "4", "--scales", "0.5,2.0", "--no-test", "--out", out])
        self.assertEqual([x["lr_scale"] for x in r["grid"]], [0.5, 2.0])
        self.assertTrue(all(x["val_single"]["n_groups"] == 4 for x in r["grid"]))
        self.assertEqual(r["chosen_lr_scale"], css.choose(r["grid"], self.load_json("eval.json")["mend_lr_scale"])[0])
        n = run_pipeline.TINY["eval"]["n_prose"]  # validation prose: held-out paragraphs no test perplexity reads
        self.assertEqual(r["validation"]["prose"], f"heldout[{n}:{2 * n}]")

        class KB:
            prose = {"train": ["t"] * 10, "heldout": [f"h{i}" for i in range(5)]}
        self.assertEqual(css.validation_prose(KB, 2, "heldout-unused"), (["h2", "h3"], "heldout[2:4]"))
        self.assertEqual(css.validation_prose(KB, 2, "train")[1], "train[:2]")
        with self.assertRaises(SystemExit):
            css.validation_prose(KB, 3, "heldout-unused")  # 5 < 6 paragraphs: never overlaps the test's

    def test_single_scale_apply_writes_the_chosen_scale_and_its_test_numbers(self):
        """calibrate_single_scale.py --apply: the chosen scale becomes editor_config.json lr_scale (batches keep
        lr_scale_batch), eval.json's single-edit MEND keys become the run's test numbers at it, and the folder
        still loads with consistent scales; a run that kept the shipped scale changes nothing."""
        import shutil
        import calibrate_single_scale as css
        from mendlab.model_folder import load_model_folder, shipped_scales
        folder = os.path.join(self.tmp, "single-scale-copy")
        shutil.copytree(self.dir, folder)
        ev0 = self.load_json("eval.json", folder)
        shipped, batch = shipped_scales(self.load_json("editor_config.json", folder), ev0)
        out = os.path.join(self.tmp, "single-scale-apply.json")
        choose = css.choose
        forced = 2 * shipped
        css.choose = lambda grid, shipped: (forced, "forced by the test")  # the rule itself is tested above
        try:
            res = css.main(["--model", folder, "--n-val", "2", "--scales", str(forced), "--out", out])
        finally:
            css.choose = choose
        self.assertEqual(res["test_single"]["chosen"]["lr_scale"], forced)
        self.assertEqual(res["test_single"]["shipped"]["lr_scale"], shipped)
        ev = css.main(["--model", folder, "--apply", out])
        ecfg = self.load_json("editor_config.json", folder)
        self.assertEqual((ecfg["lr_scale"], ecfg["lr_scale_batch"]), (forced, batch))
        self.assertEqual(shipped_scales(ecfg, ev), (forced, batch))
        self.assertEqual(ev, self.load_json("eval.json", folder))
        t = res["test_single"]["chosen"]
        self.assertEqual(ev["mend"]["single"], {k: t[k] for k in ("es", "ps", "ps_novel", "ns", "ppl_increase")})
        self.assertEqual(ev["per_relation"]["mend_single"], t["per_relation"])
        self.assertEqual(ev["balanced"]["mend"]["single"]["es"], res["balanced_test_single"]["chosen"]["es"])
        for k in ("mend", "ft"):  # batches and FT untouched
            self.assertEqual(ev[k]["batch10"], ev0[k]["batch10"])
        self.assertEqual(ev["ft"], ev0["ft"])
        self.assertEqual(ev["mend_single_scale"]["previous"], shipped)
        self.assertEqual(load_model_folder(folder, torch.device("cpu"))[3].scale_for(1), forced)
        self.assertEqual(load_model_folder(folder, torch.device("cpu"))[3].scale_for(10), batch)
        self.assertIsNone(css.main(["--model", folder, "--apply", out]))  # forced is shipped now: nothing to write

    def test_adopt_editor_keeps_ft_and_refuses_another_base(self):
        """adopt_editor.py: a --skip-ft editor run on the same base gets its editor and MEND numbers into a copy of
        the folder, FT keys come from the folder's own eval.json, the benchmark's MEND outcomes can be redone on it;
        a run whose base differs in one file is refused and leaves the folder untouched."""
        import shutil
        import adopt_editor
        import export_benchmark
        shipped = os.path.join(self.tmp, "shipped-copy")
        shutil.copytree(self.dir, shipped)
        run_out = os.path.join(self.tmp, "editor-run")
        run = run_pipeline.main(["--tiny", "--out", run_out, "--device", "cpu", "--base", self.dir, "--skip-ft",
                                 "--set", "editor.steps=3", "--set", "editor.time_budget_s=1e9"])["model_dir"]
        before = self.load_json("eval.json", shipped)
        new = self.load_json("eval.json", run)
        self.assertEqual(new["ft_config"]["lr_calibration"], [])  # --skip-ft: placeholder FT rows
        merged = adopt_editor.main([run, "--model", shipped])
        for name in ("editor.safetensors", "editor_config.json"):
            with open(os.path.join(run, name), "rb") as a, open(os.path.join(shipped, name), "rb") as b:
                self.assertEqual(a.read(), b.read(), name)
        ev = self.load_json("eval.json", shipped)
        self.assertEqual(ev, merged)
        self.assertEqual(ev["mend"], new["mend"])
        self.assertEqual(ev["mend_lr_scale_calibration"], new["mend_lr_scale_calibration"])
        for k in ("ft", "ft_config"):
            self.assertEqual(ev[k], before[k])
        self.assertEqual(ev["counts"]["ft"], before["counts"]["ft"])
        self.assertEqual(ev["counts"]["mend"], new["counts"]["mend"])
        self.assertEqual(ev["balanced"]["ft"], before["balanced"]["ft"])
        self.assertEqual(ev["balanced"]["mend"], new["balanced"]["mend"])
        self.assertIn("balanced.per_relation.ft_single", ev["adopted"]["ft_from_shipped"])
        # benchmark.json: new MEND outcomes on the adopted folder, the stored FT ones kept
        ft_before = self.load_json("benchmark.json", shipped)["python_outcomes"]["runs"]["ft.single"]
        export_benchmark.main(["--model", shipped, "--only-runs", "mend.single,mend.batch10", "--threads", "1"])
        bench = self.load_json("benchmark.json", shipped)
        self.assertEqual(bench["python_outcomes"]["runs"]["ft.single"], ft_before)
        self.assertEqual(bench["reference"]["mend"]["single"]["es"], new["mend"]["single"]["es"])
        # another base: one changed file is enough to refuse
        other = os.path.join(self.tmp, "other-base")
        shutil.copytree(run, other)
        with open(os.path.join(other, "facts.json"), "a") as f:
            f.write(" ")
        editor_before = open(os.path.join(shipped, "editor.safetensors"), "rb").read()
        with self.assertRaises(SystemExit) as e:
            adopt_editor.main([other, "--model", shipped])
        self.assertIn("facts.json differs", str(e.exception))
        self.assertEqual(open(os.path.join(shipped, "editor.safetensors"), "rb").read(), editor_before)

    def test_facts_json(self):
        f = self.load_json("facts.json")
        self.assertGreaterEqual(len(f["relations"]), 10)
        splits = {t["split"] for r in f["relations"].values() for t in r["templates"]}
        self.assertEqual(splits, {"train", "heldout", "novel"})
        s, info = next(iter(f["subjects"].items()))
        self.assertTrue(all(r in f["relations"] for r in info["facts"]))
        # the app's damage-check prose: held-out paragraphs that neither training nor any evaluation reads, nor the
        # editor's perplexity guards (the last 4), so that the damage check is an independent look
        from mendlab.corpus import KB
        from mendlab.export import guard_prose
        prose = KB(max_subjects_per_type=40, seed=0).prose  # the committed prose.json; the same for every KB size
        self.assertEqual(len(f["heldout_prose"]), 4)
        self.assertEqual(f["heldout_prose"], prose["heldout"][-8:-4])
        self.assertEqual(guard_prose(KB(max_subjects_per_type=40, seed=0)), prose["heldout"][-4:])
        self.assertGreaterEqual(len(prose["heldout"]) - 8, 128)  # [0, 64) test, [64, 128) single-scale validation
        self.assertFalse(set(f["heldout_prose"]) & set(prose["train"]))
        self.assertFalse(set(f["heldout_prose"]) & set(prose["heldout"][-4:]))

    def test_exported_tokenizer_matches_transformers_js(self):
        texts = ["The capital of São Tomé and Príncipe is", "Q: What is the symbol of Iron? A:", " +33", "Côte d'Ivoire"]
        res = subprocess.run(["node", os.path.join(HERE, "tokenizer_roundtrip.mjs"), self.dir, json.dumps(texts)],
                             capture_output=True, text=True, timeout=120, cwd=HERE)
        self.assertEqual(res.returncode, 0, res.stderr)
        for text, r in zip(texts, json.loads(res.stdout)):
            self.assertEqual(r["ids"], self.tok.encode(text))
            self.assertEqual(r["decoded"], text)

    # ---- MEND properties --------------------------------------------------------------------------
    def test_gradient_identity(self):
        """Σ_i x_iᵀ δ_i over the kept rows equals autograd's gradient of the edit loss w.r.t. each weight."""
        p, t = self.tok.encode("The capital of France is"), self.tok.encode(" Berlin")
        rows, loss = capture_rows(self.model, [(p, t)], self.mend.edited_weights, torch.device("cpu"), self.tok.eot_id)
        params = dict(self.model.named_parameters())
        ws = {n: params[n].detach().clone().requires_grad_(True) for n in self.mend.edited_weights}
        ids, labels, _ = prompt_target_batch([(p, t)], self.tok.eot_id)
        l2 = seq_nll(self.model(ids, weights=ws), labels).sum()
        grads = torch.autograd.grad(l2, list(ws.values()))
        self.assertAlmostEqual(loss, float(l2), places=5)
        for n, g in zip(ws, grads):
            x, d = rows[n]
            self.assertGreater(x.shape[0], 0)
            self.assertLess((x.T @ d - g).abs().max().item(), 1e-6 + 1e-4 * g.abs().max().item(), n)

    def test_batch_rows_are_concatenated_single_rows(self):
        a = (self.tok.encode("The capital of Peru is"), self.tok.encode(" Lima"))
        b = (self.tok.encode("Q: What is the symbol of Gold? A:"), self.tok.encode(" Au"))
        dev, pad = torch.device("cpu"), self.tok.eot_id
        ra, _ = capture_rows(self.model, [a], self.mend.edited_weights, dev, pad)
        rb, _ = capture_rows(self.model, [b], self.mend.edited_weights, dev, pad)
        rab, _ = capture_rows(self.model, [a, b], self.mend.edited_weights, dev, pad)
        for n in self.mend.edited_weights:
            for j in (0, 1):
                self.assertTrue(torch.allclose(rab[n][j], torch.cat([ra[n][j], rb[n][j]]), atol=1e-5), n)

    def test_editor_is_identity_at_init_and_clamp_passes_gradient(self):
        torch.manual_seed(0)
        gt = GradientTransform(6, 4, rank=3, n_modes=2)
        x, d = torch.randn(7, 6), torch.randn(7, 4) * 1e-3
        xt, dt = gt(x, d, 1)
        xbar = (x - x.double().mean(0).float()) / (x.double().std(0).float() + 1e-7)
        dbar = (d - d.double().mean(0).float()) / (d.double().std(0).float() + 1e-7)
        self.assertTrue(torch.allclose(xt, xbar, atol=1e-5))
        self.assertTrue(torch.allclose(dt, dbar, atol=1e-4))
        (xt.sum() + dt.pow(2).sum()).backward()
        # pre-activations are exactly 0 at init; clamp's gradient there is 1, so U learns
        self.assertGreater(gt.layers[0].U.grad.abs().sum().item(), 0)
        self.assertGreater(gt.layers[1].U.grad.abs().sum().item(), 0)
        self.assertEqual(gt.layers[0].mode_scale.grad[0].abs().sum().item(), 0)  # mode 0 unused

    def test_welford_statistics(self):
        torch.manual_seed(1)
        rn = RunningNorm(5)
        rows = torch.randn(40, 5) * 3 + 2
        with self.assertRaises(RuntimeError):
            _ = rn.std
        for chunk in (rows[:1], rows[1:13], rows[13:]):
            rn.update(chunk)
        self.assertEqual(int(rn.k), 40)
        self.assertTrue(torch.allclose(rn.mean, rows.double().mean(0), atol=1e-10))
        self.assertTrue(torch.allclose(rn.std, rows.double().std(0), atol=1e-10))  # sample std (n - 1)
        # frozen in eval mode
        gt = GradientTransform(5, 5, 2, 1)
        gt.train()
        gt(rows[:10], rows[10:20], 0)
        k = int(gt.x_norm.k)
        gt.eval()
        gt(rows[20:30], rows[30:40], 0)
        self.assertEqual(int(gt.x_norm.k), k)

    def test_edit_raises_target_probability(self):
        """Over the fixture edits, the edit lowers the new target's NLL on the edit prompt."""
        g = self.load_json("golden.json", self.fx)
        dev, pad = torch.device("cpu"), self.tok.eot_id
        for case in g["cases"]:
            pairs = [(e["prompt_ids"], e["target_ids"]) for e in case["edits"]]
            rows, _ = capture_rows(self.model, pairs, self.mend.edited_weights, dev, pad)
            with torch.no_grad():
                w = edited_weights_from(self.model, self.mend.weight_updates(rows))
                ids, labels, _ = prompt_target_batch(pairs, pad)
                before = seq_nll(self.model(ids), labels)
                after = seq_nll(self.model(ids, weights=w), labels)
            self.assertTrue((after < before).all(), (before, after))

    def test_lr_scale_batch_is_read_and_used_for_groups_of_more_than_one_fact(self):
        """editor_config.json's optional lr_scale_batch (docs/formats.md) survives export/import, and mend_edit uses
        it for a group of several facts and lr_scale for one fact, as the TypeScript editor does."""
        from mendlab.mend import mend_edit
        from mendlab.model_folder import shipped_scales
        g = self.load_json("golden.json", self.fx)
        tensors = st.load_file(os.path.join(self.fx, "editor.safetensors"))
        cfg = {**self.load_json("editor_config.json", self.fx), "lr_scale": 1.0}
        plain = MEND.from_files(cfg, tensors)
        self.assertIsNone(plain.lr_scale_batch)
        self.assertNotIn("lr_scale_batch", plain.config())
        scaled = MEND.from_files({**cfg, "lr_scale_batch": 2.5}, tensors)
        self.assertEqual(scaled.config()["lr_scale_batch"], 2.5)
        self.assertEqual((scaled.scale_for(1), scaled.scale_for(3)), (1.0, 2.5))

        class E:  # the two fields mend_edit reads
            def __init__(self, e):
                self.prompt_ids, self.target_ids = e["prompt_ids"], e["target_ids"]
        facts = [E(e) for case in g["cases"] for e in case["edits"]][:2]
        self.assertEqual(len(facts), 2)
        params = dict(self.model.named_parameters())
        dev, pad = torch.device("cpu"), self.tok.eot_id
        for batch, ratio in ((facts[:1], 1.0), (facts, 2.5)):
            base = {n: w - params[n] for n, w in mend_edit(self.model, plain, batch, dev, pad).items()}
            got = {n: w - params[n] for n, w in mend_edit(self.model, scaled, batch, dev, pad).items()}
            for n in base:
                self.assertGreater(base[n].abs().max().item(), 0)
                self.assertTrue(torch.allclose(got[n], ratio * base[n], rtol=1e-4, atol=1e-7), (n, ratio))
        self.assertEqual(shipped_scales({"lr_scale": 1.25, "lr_scale_batch": 1.1},
                                        {"mend_lr_scale": 1.25, "mend_lr_scale_batch": 1.1}), (1.25, 1.1))
        with self.assertRaises(SystemExit):
            shipped_scales({"lr_scale": 1.25}, {"mend_lr_scale": 1.25, "mend_lr_scale_batch": 1.1})

    def test_batch_retry_passes(self):
        """mend_edit_passes / editor_config.json batch_retry (docs/formats.md): a later pass captures rows on the model
        as edited so far (checked against a model that holds those weights in place), retries only the facts whose
        edit prompt does not give the target yet, and mend_edit applies it to groups of more than one fact only."""
        import copy
        from mendlab.mend import edit_prompt_taken, mend_edit, mend_edit_passes
        g = self.load_json("golden.json", self.fx)
        tensors = st.load_file(os.path.join(self.fx, "editor.safetensors"))
        cfg = {**self.load_json("editor_config.json", self.fx), "lr_scale": 1.0, "lr_scale_batch": 1.5}
        plain = MEND.from_files(cfg, tensors)
        retry = MEND.from_files({**cfg, "batch_retry": {"max_passes": 2, "lr_scale": 0.5}}, tensors)
        self.assertIsNone(plain.batch_retry)
        self.assertNotIn("batch_retry", plain.config())
        self.assertEqual(retry.config()["batch_retry"], {"max_passes": 2, "lr_scale": 0.5})

        class E:
            def __init__(self, e):
                self.prompt_ids, self.target_ids = e["prompt_ids"], e["target_ids"]
        facts = [E(e) for case in g["cases"] for e in case["edits"]][:2]
        dev, pad = torch.device("cpu"), self.tok.eot_id
        params = dict(self.model.named_parameters())
        # one pass = mend_edit without batch_retry
        w1, n = mend_edit_passes(self.model, plain, facts, dev, pad, 1, 1.5, 0.5)
        ref1 = mend_edit(self.model, plain, facts, dev, pad)
        self.assertEqual(n, 1)
        for k in ref1:
            self.assertTrue(torch.equal(w1[k], ref1[k]))
        # two passes on every fact = pass 2 as a plain edit of a model that holds pass 1's weights in place
        w2, n = mend_edit_passes(self.model, plain, facts, dev, pad, 2, 1.5, 0.5, retry_all=True)
        self.assertEqual(n, 2)
        m1 = copy.deepcopy(self.model)
        with torch.no_grad():
            for k, w in w1.items():
                dict(m1.named_parameters())[k].copy_(w)
        half = MEND.from_files({**cfg, "lr_scale_batch": 0.5}, tensors)
        ref2 = mend_edit(m1, half, facts, dev, pad)
        for k in ref2:
            self.assertTrue(torch.allclose(w2[k], ref2[k], rtol=1e-5, atol=1e-7), k)
            self.assertGreater((w2[k] - w1[k]).abs().max().item(), 0)
        # retries only the facts not taken: pass 2 on the missing ones alone
        taken = edit_prompt_taken(self.model, facts, dev, pad, w1)
        w3, n = mend_edit_passes(self.model, plain, facts, dev, pad, 3, 1.5, 0.5)
        if all(taken):
            self.assertEqual(n, 1)
        else:
            missing = [f for f, t in zip(facts, taken) if not t]
            ref3 = mend_edit(m1, half if len(missing) > 1 else MEND.from_files({**cfg, "lr_scale": 0.5}, tensors),
                             missing, dev, pad)
            if n == 2:
                for k in ref3:
                    self.assertTrue(torch.allclose(w3[k], ref3[k], rtol=1e-5, atol=1e-7), k)
            self.assertIn(n, (2, 3))
        # trust region: a retry pass larger than pass 1 (here 100x its scale) is refused, a small one is applied
        st_big, st_small = {}, {}
        wb, n = mend_edit_passes(self.model, plain, facts, dev, pad, 2, 1.5, 150.0, retry_all=True, trust_region=True,
                                 stats=st_big)
        self.assertEqual((n, st_big), (1, {"refused": 1}))
        for k in w1:
            self.assertTrue(torch.equal(wb[k], w1[k]))
        ws, n = mend_edit_passes(self.model, plain, facts, dev, pad, 2, 1.5, 0.015, retry_all=True, trust_region=True,
                                 stats=st_small)
        self.assertEqual((n, st_small), (2, {}))
        # prose guard: a pass that does not cut the prose perplexity in half (slack -0.5) is refused; a huge slack
        # lets the same pass through
        prose = [self.tok.encode("The capital of France is Paris. It is a city.")]
        st_g = {}
        wg, n = mend_edit_passes(self.model, plain, facts, dev, pad, 2, 1.5, 0.015, retry_all=True, stats=st_g,
                                 prose_guard=(prose, -0.5))
        self.assertEqual((n, st_g), (1, {"refused_prose": 1}))
        for k in w1:
            self.assertTrue(torch.equal(wg[k], w1[k]))
        wg, n = mend_edit_passes(self.model, plain, facts, dev, pad, 2, 1.5, 0.015, retry_all=True, stats=st_g,
                                 prose_guard=(prose, 1e9))
        self.assertEqual(n, 2)
        for k in ws:
            self.assertTrue(torch.equal(wg[k], ws[k]))
        # mend_edit follows batch_retry for groups only
        one = mend_edit(self.model, retry, facts[:1], dev, pad)
        one_ref = mend_edit(self.model, plain, facts[:1], dev, pad)
        for k in one:
            self.assertTrue(torch.equal(one[k], one_ref[k]))
        grp = mend_edit(self.model, retry, facts, dev, pad)
        grp_ref = mend_edit_passes(self.model, plain, facts, dev, pad, 2, 1.5, 0.5)[0]
        for k in grp:
            self.assertTrue(torch.equal(grp[k], grp_ref[k]))
        # ... and, with min_facts 1, for single edits too (evaluate_single_retry.py)
        single = MEND.from_files({**cfg, "batch_retry": {"max_passes": 2, "lr_scale": 0.5, "min_facts": 1}}, tensors)
        self.assertEqual(single.config()["batch_retry"]["min_facts"], 1)
        one = mend_edit(self.model, single, facts[:1], dev, pad)
        one_ref, n_one = mend_edit_passes(self.model, plain, facts[:1], dev, pad, 2, plain.scale_for(1), 0.5)
        for k in one:
            self.assertTrue(torch.equal(one[k], one_ref[k]))
        self.assertEqual(n_one, 2)  # (the tiny editor leaves this fact short after pass 1)
        self.assertEqual(n_one == 2, not all(torch.equal(one[k], one_ref_1) for k, one_ref_1 in
                                             mend_edit(self.model, plain, facts[:1], dev, pad).items()))
        # ... and its prose_guard
        pg = MEND.from_files({**cfg, "batch_retry": {"max_passes": 2, "lr_scale": 0.015, "prose_guard": {
            "max_increase": -0.5, "prose_ids": prose}}}, tensors)
        grp = mend_edit(self.model, pg, facts, dev, pad)
        for k in grp:
            self.assertTrue(torch.equal(grp[k], w1[k]))  # pass 2 refused: pass 1 alone
        if not all(taken):  # (without the guard pass 2 would have run)
            free = MEND.from_files({**cfg, "batch_retry": {"max_passes": 2, "lr_scale": 0.015}}, tensors)
            self.assertFalse(all(torch.equal(x, w1[k]) for k, x in mend_edit(self.model, free, facts, dev, pad).items()))
        # ... and its trust_region
        tr = MEND.from_files({**cfg, "batch_retry": {"max_passes": 2, "lr_scale": 150.0, "trust_region": True}}, tensors)
        self.assertTrue(tr.config()["batch_retry"]["trust_region"])
        grp = mend_edit(self.model, tr, facts, dev, pad)
        grp_ref = mend_edit_passes(self.model, plain, facts, dev, pad, 2, 1.5, 150.0, trust_region=True)[0]
        for k in grp:
            self.assertTrue(torch.equal(grp[k], grp_ref[k]))
        del params

    def test_batch_passes_rule_and_apply(self):
        """calibrate_batch_passes.py: the rule (NS >= 0.90, best harmonic, ties to fewer passes, margin over the
        one-pass edit) and --apply (batch_retry and lr_scale_batch into editor_config.json, the batch-10 MEND keys of
        eval.json from the run's test numbers; FT and single edits untouched; the folder loads consistently)."""
        import shutil
        import calibrate_batch_passes as cbp
        from mendlab.model_folder import load_model_folder, load_shipped, shipped_scales
        v = lambda name, passes, retry, first=1.25: {"name": name, "passes": passes, "first": first, "retry": retry,
                                                     "retry_all": False}
        g = lambda var, h, ns, ppl=0.01: {"variant": var, "val_batch10": {"harmonic_es_ps_ns": h, "ns": ns,
                                                                          "ppl_increase": ppl}}
        ship = g(v("shipped", 1, None), 0.90, 0.91)
        self.assertEqual(cbp.choose([ship, g(v("a", 2, 1.0), 0.95, 0.95, 0.031)])[0], "shipped")  # ppl guard
        self.assertEqual(cbp.choose([ship, g(v("a", 2, 1.0), 0.95, 0.95, 0.029)])[0], "a")
        self.assertEqual(cbp.choose([ship, g(v("a", 2, 1.0), 0.95, 0.89)])[0], "shipped")  # NS below target
        self.assertEqual(cbp.choose([ship, g(v("a", 2, 1.0), 0.904, 0.95)])[0], "shipped")  # under the margin
        self.assertEqual(cbp.choose([ship, g(v("a", 3, 0.5), 0.93, 0.95), g(v("b", 2, 1.0), 0.9295, 0.95)])[0], "b")
        self.assertEqual(cbp.choose([ship, g(v("a", 2, 1.0), 0.93, 0.95), g(v("b", 2, 0.5), 0.93, 0.95)])[0], "b")

        folder = os.path.join(self.tmp, "batch-passes-copy")
        shutil.copytree(self.dir, folder)
        ev0 = self.load_json("eval.json", folder)
        single, batch = shipped_scales(self.load_json("editor_config.json", folder), ev0)
        out = os.path.join(self.tmp, "batch-passes.json")
        choose = cbp.choose
        cbp.choose = lambda grid: ("1.0>retry2@0.5", "forced by the test")
        try:
            res = cbp.main(["--model", folder, "--n-val", "20", "--grid", "v2", "--out", out, "--threads", "1"])
        finally:
            cbp.choose = choose
        self.assertEqual(set(res["test_batch10"]), {"1.0>retry2@0.5", "shipped"})
        self.assertEqual(res["test_batch10"]["shipped"]["mean_passes"], 1.0)
        ev = cbp.main(["--model", folder, "--apply", out])
        ecfg = self.load_json("editor_config.json", folder)
        self.assertEqual(ecfg["batch_retry"], {"max_passes": 2, "lr_scale": 0.5})
        self.assertEqual(shipped_scales(ecfg, ev), (single, 1.0))
        self.assertEqual(ev, self.load_json("eval.json", folder))
        t = res["test_batch10"]["1.0>retry2@0.5"]
        self.assertEqual(ev["mend"]["batch10"], {k: t[k] for k in ("es", "ps", "ps_novel", "ns", "ppl_increase")})
        self.assertEqual(ev["harmonic_es_ps_ns"]["mend_batch10"], t["harmonic_es_ps_ns"])
        self.assertEqual(ev["mend"]["single"], ev0["mend"]["single"])
        self.assertEqual(ev["ft"], ev0["ft"])
        self.assertEqual(ev["mend_batch_passes"]["lr_scale_batch"], {"before": batch, "now": 1.0})
        m = load_model_folder(folder, torch.device("cpu"))[3]
        self.assertEqual((m.scale_for(10), m.batch_retry), (1.0, {"max_passes": 2, "lr_scale": 0.5}))
        # a guarded variant (grid v4) carries trust_region and prose_guard (with the prose's token ids) into both files
        folder = os.path.join(self.tmp, "batch-passes-tr")
        shutil.copytree(self.dir, folder)
        out = os.path.join(self.tmp, "batch-passes-tr.json")
        cbp.choose = lambda grid: ("1.1>retry2@0.5+tr+prose0.02", "forced by the test")
        try:
            cbp.main(["--model", folder, "--n-val", "20", "--grid", "v4", "--out", out, "--threads", "1", "--no-test"])
        finally:
            cbp.choose = choose
        with self.assertRaises(SystemExit):  # no test numbers yet
            cbp.main(["--model", folder, "--apply", out])
        tested = os.path.join(self.tmp, "batch-passes-tr-tested.json")  # the test phase alone, from the --no-test run
        res = cbp.main(["--model", folder, "--test-from", out, "--out", tested, "--threads", "1"])
        self.assertEqual(set(res["test_batch10"]), {"1.1>retry2@0.5+tr+prose0.02", "shipped"})
        self.assertEqual(res["grid"], self.load_json(os.path.basename(out), self.tmp)["grid"])
        ev = cbp.main(["--model", folder, "--apply", tested])
        kb_prose = load_shipped(folder, torch.device("cpu")).kb.prose["heldout"][-4:]
        want = {"max_passes": 2, "lr_scale": 0.5, "trust_region": True,
                "prose_guard": {"max_increase": 0.02, "prose_ids": [self.tok.encode(p) for p in kb_prose]}}
        self.assertEqual((self.load_json("editor_config.json", folder)["batch_retry"], ev["mend_batch_retry"]), (want, want))
        m = load_model_folder(folder, torch.device("cpu"))[3]
        self.assertEqual((m.scale_for(10), m.batch_retry), (1.1, want))

    def test_single_retry_rules_and_apply(self):
        """evaluate_single_retry.py: the declared validation and adoption rules, the two stages on the tiny folder, and
        --apply (min_facts 1 in editor_config.json batch_retry and eval.json, the single-edit MEND keys recomputed
        with the retry; batches, FT and the retry's own settings untouched)."""
        import shutil
        import evaluate_single_retry as esr
        from calibrate_batch_passes import guard_prose_ids
        from mendlab.export import write_json
        from mendlab.model_folder import load_model_folder, load_shipped
        row = lambda h, ns, ppl=0.01: {"harmonic_es_ps_ns": h, "ns": ns, "ppl_increase": ppl}
        names = esr.variant_names()
        val = {"one-pass": row(0.970, 0.96), names[0]: row(0.9725, 0.96), names[1]: row(0.9730, 0.96), names[2]: row(0.99, 0.94)}
        self.assertEqual(esr.choose(val)[0], names[0])  # within 0.001 of the best eligible: the smaller scale
        self.assertIsNone(esr.choose({**val, names[0]: row(0.9715, 0.96), names[1]: row(0.9715, 0.96)})[0])  # margin
        self.assertIsNone(esr.choose({**val, names[0]: row(0.98, 0.96, 0.021), names[1]: row(0.98, 0.949)})[0])
        d = lambda v, o: {"variant": {"harmonic_es_ps_ns": v}, "one-pass": {"harmonic_es_ps_ns": o}}
        pv, p1 = {"harmonic_es_ps_ns": 0.98, "ns": 0.96, "ppl_increase": 0.004}, {"harmonic_es_ps_ns": 0.97, "ppl_increase": 0.004}
        oc = lambda *ppl: [{"ppl_increase": x} for x in ppl]
        self.assertEqual(esr.adopt([d(0.98, 0.97), d(0.97, 0.97), d(0.99, 0.98)], pv, p1, oc(0.01, 0.2), oc(0.01, 0.3)), (True, []))
        self.assertFalse(esr.adopt([d(0.98, 0.97), d(0.97, 0.97), d(0.97, 0.97)], pv, p1, oc(0.01), oc(0.01))[0])  # 1 of 3
        self.assertFalse(esr.adopt([d(0.98, 0.97)] * 3, {**pv, "ns": 0.949}, p1, oc(0.01), oc(0.01))[0])
        self.assertFalse(esr.adopt([d(0.98, 0.97)] * 3, {**pv, "ppl_increase": 0.0095}, p1, oc(0.01), oc(0.01))[0])
        self.assertFalse(esr.adopt([d(0.98, 0.97)] * 3, pv, p1, oc(0.11), oc(0.09))[0])  # one edit over +10 %

        folder = os.path.join(self.tmp, "single-retry-copy")
        shutil.copytree(self.dir, folder)
        sh = load_shipped(folder, torch.device("cpu"))
        retry = {"max_passes": 2, "lr_scale": 0.5, "trust_region": True,
                 "prose_guard": {"max_increase": 0.02, "prose_ids": guard_prose_ids(sh.kb, sh.tok)}}
        write_json(os.path.join(folder, "editor_config.json"), {**sh.ecfg, "batch_retry": retry})
        ev0 = {**sh.eval_json, "mend_batch_retry": retry}
        write_json(os.path.join(folder, "eval.json"), ev0)
        vp, tp = os.path.join(self.tmp, "sr-val.json"), os.path.join(self.tmp, "sr-test.json")
        v = esr.main(["--model", folder, "--n-val", "8", "--out", vp])
        self.assertEqual(set(v["validation"]) - {"sampler_seed", "n_edits", "prose", "seconds"}, {"one-pass", *names})
        t = esr.main(["--model", folder, "--stage", "test", "--variant", names[0], "--draws", "1-1", "--limit", "4",
                      "--ft", "--out", tp])
        self.assertEqual((t["pooled"]["variant"]["n_edits"], t["pooled"]["ft"]["n_edits"]), (4, 4))
        if not (v["chosen"] == names[0] and t["adopted"]):  # not adopted: nothing is written
            with self.assertRaises(SystemExit):
                esr.main(["--model", folder, "--apply", "--validation-results", vp, "--test-results", tp])
        with open(vp) as f:
            vj = json.load(f)
        with open(tp) as f:
            tj = json.load(f)
        write_json(vp, {**vj, "chosen": names[0]})
        write_json(tp, {**tj, "adopted": True})  # forced: the tiny model's numbers say nothing
        ev = esr.main(["--model", folder, "--apply", "--validation-results", vp, "--test-results", tp])
        want = {**retry, "min_facts": 1}
        self.assertEqual((self.load_json("editor_config.json", folder)["batch_retry"], ev["mend_batch_retry"]), (want, want))
        self.assertEqual(ev, self.load_json("eval.json", folder))
        self.assertEqual((ev["mend"]["batch10"], ev["ft"]), (ev0["mend"]["batch10"], ev0["ft"]))
        self.assertEqual(ev["mend_single_retry"]["eval_json_single"]["test_single"]["now"],
                         {**ev["mend"]["single"], "harmonic_es_ps_ns": ev["harmonic_es_ps_ns"]["mend_single"]})
        self.assertEqual(load_model_folder(folder, torch.device("cpu"))[3].batch_retry, want)
        # evaluate_pass1_guard.py on the folder that now retries single edits: a guard no edit can pass fires on every
        # edit and halves pass 1 twice; one every edit passes never fires and is the shipped edit
        import evaluate_pass1_guard as epg
        from mendlab.benchmark_cases import pipeline_validation_edits
        from mendlab.evaluate import prose_nll
        self.assertEqual(epg.spearman([1, 2, 3], [10, 20, 30]), 1.0)
        self.assertEqual(epg.spearman([1, 2, 3], [3, 2, 1]), -1.0)
        sh = load_shipped(folder, torch.device("cpu"))
        e = pipeline_validation_edits(sh.kb, sh.enc, sh.tok, 1, sh.seed)[0]
        base = prose_nll(sh.model, guard_prose_ids(sh.kb, sh.tok), torch.device("cpu"))
        args = (sh.model, sh.mend, e, torch.device("cpu"), sh.tok.eot_id, 1.5, guard_prose_ids(sh.kb, sh.tok), base)
        self.assertEqual(epg.guarded_first_scales(*args, (-1.0, 1e9))[0], {-1.0: 1.5 / 2 ** epg.MAX_HALVINGS, 1e9: 1.5})
        guards = epg.GUARDS
        epg.GUARDS = (-1.0, 1e9)
        try:
            x = epg.main(["--model", folder, "--n-val", "3", "--out", os.path.join(self.tmp, "p1g.json")])
        finally:
            epg.GUARDS = guards
        self.assertEqual((x["variants"]["guard-1.0"]["guard_fired"], x["variants"]["guard1000000000.0"]["guard_fired"]), (3, 0))
        self.assertEqual({k: v for k, v in x["variants"]["guard1000000000.0"].items() if k != "guard_fired"},
                         x["variants"]["shipped"])
        # its test stage: a guard every edit passes never fires, so it is the app's edit and (a) fails (no fewer
        # edits over +10 %); the rule's other clauses on made-up summaries
        tg = epg.TEST_GUARD
        epg.TEST_GUARD = 1e9
        try:
            y = epg.main(["--model", folder, "--stage", "test", "--draws", "1-2", "--limit", "2",
                          "--out", os.path.join(self.tmp, "p1g-test.json")])
        finally:
            epg.TEST_GUARD = tg
        self.assertEqual([(d["draw"], d["n_edits"], d["guard"]["guard_fired"]) for d in y["draws"]], [(1, 2, 0), (2, 2, 0)])
        self.assertEqual({k: v for k, v in y["pooled"]["guard"].items() if k != "guard_fired"}, y["pooled"]["app"])
        self.assertFalse(y["adopted"])
        self.assertTrue(y["adoption_failures"][0].startswith("(a) edits over +10 %"))
        app = {"edits_over_10pct": 2, "harmonic_es_ps_ns": 0.98, "ns": 0.96, "ppl_increase": 0.004}
        oc = lambda *p: [{"ppl_increase": v} for v in p]
        self.assertEqual(epg.adopt({**app, "edits_over_10pct": 1, "harmonic_es_ps_ns": 0.977}, app, oc(0.2, 0.0), oc(0.3, 0.2)),
                         (True, []))
        ok, fails = epg.adopt({**app, "edits_over_10pct": 1, "harmonic_es_ps_ns": 0.976, "ns": 0.94, "ppl_increase": 0.005},
                              app, oc(0.2, 0.0), oc(0.05, 0.2))
        self.assertEqual((ok, [f[:3] for f in fails]), (False, ["(a)", "(b)", "(c)", "(d)"]))
        # first_pass_scale: a limit no step meets halves max_halvings times; one every step meets never halves
        from mendlab.mend import first_pass_scale
        ids = guard_prose_ids(sh.kb, sh.tok)
        for limit, want_scale in ((-0.99, (1.5 / 4, 2)), (1e9, (1.5, 0))):
            sh.mend.first_pass_guard = {"max_increase": limit, "max_halvings": 2, "prose_ids": ids}
            self.assertEqual(first_pass_scale(sh.model, sh.mend, [e], torch.device("cpu"), sh.tok.eot_id, 1.5), want_scale)
        sh.mend.first_pass_guard = None
        # --apply writes the guard the test adopted into both files, and single edits are recomputed with it
        tp = os.path.join(self.tmp, "p1g-test.json")
        with open(tp) as f:
            write_json(tp, {**json.load(f), "adopted": True})  # forced: the tiny model's numbers say nothing
        ev = epg.main(["--model", folder, "--apply", "--validation-results", os.path.join(self.tmp, "p1g.json"),
                       "--test-results", tp])
        want = {"max_increase": 1e9, "max_halvings": epg.MAX_HALVINGS, "prose_ids": ids}  # the guard that stage ran
        self.assertEqual((self.load_json("editor_config.json", folder)["first_pass_guard"], ev["mend_first_pass_guard"]),
                         (want, want))
        self.assertEqual(ev, self.load_json("eval.json", folder))
        self.assertEqual(load_model_folder(folder, torch.device("cpu"))[3].first_pass_guard, want)
        self.assertEqual(ev["mend_first_pass_guard_evaluation"]["eval_json_single"]["test_single"]["now"],
                         {**ev["mend"]["single"], "harmonic_es_ps_ns": ev["harmonic_es_ps_ns"]["mend_single"]})
        self.assertIsNone(epg.main(["--model", folder, "--apply", "--validation-results", os.path.join(self.tmp, "p1g.json"),
                                    "--test-results", tp]))  # already there
        with self.assertRaises(SystemExit):  # its stages compare against the unguarded edit
            epg.main(["--model", folder, "--n-val", "1", "--out", os.path.join(self.tmp, "p1g-again.json")])

    def test_golden_fixture_reproduces_from_shipped_files(self):
        """Rebuild model + editor from the fixture folder's files only and recompute the golden values."""
        g = self.load_json("golden.json", self.fx)
        cfg = GPTConfig.from_hf(self.load_json("config.json", self.fx))
        model = load_hf_state_dict(GPT(cfg), st.load_model(self.fx))
        for p in model.parameters():
            p.requires_grad_(False)
        mend = MEND.from_files(self.load_json("editor_config.json", self.fx),
                               st.load_file(os.path.join(self.fx, "editor.safetensors")))
        for case in g["cases"]:
            pairs = [(e["prompt_ids"], e["target_ids"]) for e in case["edits"]]
            rows, loss = capture_rows(model, pairs, mend.edited_weights, torch.device("cpu"), self.tok.eot_id)
            self.assertAlmostEqual(loss, case["loss"], places=4)
            with torch.no_grad():
                upd, parts = mend.weight_updates(rows, return_parts=True)
            for n in mend.edited_weights:
                gw = case["weights"][n]
                x, d = rows[n]
                self.assertEqual(list(x.shape), [len(gw["x"]), len(gw["x"][0])])
                self.assertTrue(torch.allclose(x, torch.tensor(gw["x"]), atol=1e-4))
                scale = torch.tensor(gw["delta"]).abs().max()
                self.assertTrue(torch.allclose(d, torch.tensor(gw["delta"]), atol=1e-4 * scale))
                xt, dt, dw = parts[n]
                self.assertTrue(torch.allclose(xt, torch.tensor(gw["x_tilde"]), atol=2e-3, rtol=1e-3))
                ref = torch.tensor(gw["delta_w_slice"])
                self.assertTrue(torch.allclose(dw[:8, :8], ref, atol=1e-3 * ref.abs().max()))
            w = edited_weights_from(model, upd)
            for probe in case["probes"]:
                out = model(torch.tensor([probe["input_ids"]]), weights=w)[0, -1]
                self.assertLess((out - torch.tensor(probe["post_logits"])).abs().max().item(), 1e-3)


if __name__ == "__main__":
    unittest.main()
