"""The PyTorch half of `npm run bench` (bench/torch_edit.py) and the target summary (bench/gpu_summary.py), on this
CPU with the tiny shape: the capture identities hold, every variant reports the phase-synced and the one-sync time,
and the summary divides like by like (one wait / one sync, synced / synced)."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class TorchBenchTest(unittest.TestCase):
    def test_tiny_edit_on_cpu_reports_both_timings(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "torch.json")
            subprocess.run([sys.executable, os.path.join(ROOT, "bench", "torch_edit.py"), "--device", "cpu",
                            "--shapes", "tiny", "--compile-shapes", "", "--reps", "3", "--warmup", "1", "--check",
                            "--out", out], check=True, capture_output=True, timeout=300)
            with open(out) as f:
                res = json.load(f)
        self.assertTrue(res["complete"])
        self.assertTrue(res["check"]["ok"], res["check"])
        self.assertEqual([r["variant"] for r in res["results"]], ["eager-hooks", "eager-probe"])
        for r in res["results"]:
            self.assertEqual(len(r["samples"]), 3)
            self.assertEqual(len(r["oneSyncSamplesMs"]), 3)
            self.assertGreater(r["oneSyncMs"], 0)
            for s in r["samples"]:
                self.assertAlmostEqual(s["totalMs"], s["captureMs"] + s["editorMs"] + s["updateMs"], places=6)

    def test_summary_divides_like_by_like(self):
        torch = {"torch": "x", "device": "d", "complete": True, "notes": [], "results": [
            {"shape": "distilgpt2", "variant": "eager-hooks", "captureMs": 6, "editorMs": 3, "updateMs": 1,
             "totalMs": 10.0, "oneSyncMs": 8.0},
            {"shape": "distilgpt2", "variant": "eager-probe", "captureMs": 7, "editorMs": 4, "updateMs": 1,
             "totalMs": 12.0, "oneSyncMs": 9.0}]}
        web = {"adapter": {"vendor": "v"}, "complete": True, "models": [{
            "name": "distilgpt2", "edit": {"totalMs": 15.0, "captureMs": 8, "editorMs": 5, "updateMs": 2},
            "generation": {"tokensPerSecond": 300}, "bandwidth": {"ratio": 0.8, "timing": "gpu"},
            "pipeline": {"oneWaitMs": 6.0, "syncedMs": 15.0, "ratio": 0.4}}]}
        with tempfile.TemporaryDirectory() as d:
            for name, obj in (("torch.json", torch), ("webgpu.json", web)):
                with open(os.path.join(d, name), "w") as f:
                    json.dump(obj, f)
            text = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "gpu_summary.py"), d], check=True,
                                  capture_output=True, text=True, timeout=60).stdout
        self.assertIn("edit 6.00 ms as the app runs it (one wait); WebGPU/PyTorch-eager 0.75 (each with one sync, torch 8.00 ms)", text)
        self.assertIn("edit synced per phase 15.00 ms", text)
        self.assertIn("WebGPU/PyTorch-eager 1.50 (both synced per phase)", text)

    def test_ratio_rounds_are_merged_and_summarised(self):
        def web(ms):
            return {"bench": "mendlab-edit", "complete": True, "models": [{"name": "distilgpt2", "oneWaitMs": ms, "samples": [ms]}]}

        def torch(hooks, probe):
            return {"complete": True, "results": [
                {"shape": "distilgpt2", "variant": "eager-hooks", "oneSyncMs": hooks},
                {"shape": "distilgpt2", "variant": "eager-probe", "oneSyncMs": probe}]}

        summary = os.path.join(ROOT, "bench", "gpu_summary.py")
        with tempfile.TemporaryDirectory() as d:
            rounds = os.path.join(d, "rounds.json")
            # Round 2's WebGPU side did not finish (no file): kept, reported as incomplete, left out of the median.
            for i, (w, t, first) in enumerate([(8.0, (10.0, 9.0), "webgpu"), (9.9, (9.0, 11.0), "torch"), (None, (9.0, 9.0), "webgpu")]):
                wp, tp = os.path.join(d, f"w{i}.json"), os.path.join(d, f"t{i}.json")
                if w is not None:
                    with open(wp, "w") as f:
                        json.dump(web(w), f)
                with open(tp, "w") as f:
                    json.dump(torch(*t), f)
                line = subprocess.run([sys.executable, summary, "--add-round", rounds, wp, tp, first], check=True,
                                      capture_output=True, text=True, timeout=60).stdout
                if i == 0:
                    self.assertIn("round 0 (webgpu first): webgpu 8.000 ms / torch 9.000 ms = 0.889", line)
                if i == 2:
                    self.assertIn("round 2 (webgpu first): incomplete", line)
            with open(rounds) as f:
                merged = json.load(f)
            self.assertEqual([r["first"] for r in merged["rounds"]], ["webgpu", "torch", "webgpu"])
            self.assertIsNone(merged["rounds"][2]["webgpu"])
            text = subprocess.run([sys.executable, summary, d], check=True, capture_output=True, text=True,
                                  timeout=60).stdout
        self.assertIn("round 1 (torch first, distilgpt2): webgpu 9.90 ms, torch 9.00 ms, ratio 1.10", text)
        self.assertIn("round 2 (webgpu first, ?): incomplete", text)
        self.assertIn("ratio median 0.99, range 0.89-1.10; <= 1.0 in 1 of 2", text)


if __name__ == "__main__":
    unittest.main()
