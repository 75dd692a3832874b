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


if __name__ == "__main__":
    unittest.main()
