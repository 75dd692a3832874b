"""Our byte-level BPE must tokenise exactly like @huggingface/transformers reading our tokenizer.json."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from mendlab.tokenizer import ByteBPETokenizer, pretokenize, train_bpe  # noqa: E402

CORPUS = ["The capital of São Tomé and Príncipe is São Tomé. The capital of France is Paris.",
          "Côte d'Ivoire's currency is the West African CFA franc. It's 1,234 km away; they're here.",
          "Gold has the symbol Au and atomic number 79. Tokyo, Japan 🙂 — the end.\n\nNew paragraph."] * 20
SAMPLES = ["The capital of São Tomé is", "Côte d'Ivoire", " leading space", "trailing  spaces   ",
           "digits 12345 and 3.14159!", "emoji 🙂👍🏽 mixed", "It's they're we've I'm you'll he'd",
           "tabs\tand\n\nnewlines \n end", "Москва 東京 ÆØÅ ß", "<|endoftext|>"]


class TokenizerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tok = ByteBPETokenizer(train_bpe(CORPUS, vocab_size=400))
        cls.dir = tempfile.mkdtemp()
        cls.tok.save(cls.dir, 128)

    def test_pretokenize_matches_gpt2_regex_examples(self):
        self.assertEqual(pretokenize("Hello  world's 42!!"), ["Hello", " ", " world", "'s", " 42", "!!"])
        self.assertEqual(pretokenize("a \n b"), ["a", " \n", " b"])
        self.assertEqual(pretokenize("end   "), ["end", "   "])

    def test_python_roundtrip(self):
        for s in SAMPLES[:-1]:
            self.assertEqual(self.tok.decode(self.tok.encode(s)), s)

    def test_merges_learned_and_used(self):
        self.assertGreater(len(self.tok), 300)
        self.assertLess(len(self.tok.encode("The capital of")), len("The capital of".encode()))

    def test_reload_from_json(self):
        tok2 = ByteBPETokenizer.load(self.dir)
        self.assertEqual(tok2.encode(SAMPLES[0]), self.tok.encode(SAMPLES[0]))

    def test_transformers_js_gives_same_ids(self):
        texts = SAMPLES[:-1]
        res = subprocess.run(["node", os.path.join(HERE, "tokenizer_roundtrip.mjs"), self.dir, json.dumps(texts)],
                             capture_output=True, text=True, timeout=120, cwd=HERE)
        self.assertEqual(res.returncode, 0, res.stderr)
        out = json.loads(res.stdout)
        for text, r in zip(texts, out):
            self.assertEqual(r["ids"], self.tok.encode(text), text)
            self.assertEqual(r["decoded"], text)

    def test_special_token_in_js(self):
        res = subprocess.run(["node", os.path.join(HERE, "tokenizer_roundtrip.mjs"), self.dir, json.dumps(["a<|endoftext|>"])],
                             capture_output=True, text=True, timeout=120, cwd=HERE)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(json.loads(res.stdout)[0]["ids"][-1], self.tok.eot_id)


if __name__ == "__main__":
    unittest.main()


class HubLayoutTokenizerTest(unittest.TestCase):
    def test_explicit_vocab_keeps_ids(self):
        """A tokenizer.json whose ids are not in our layout (like GPT-2's from the Hub) loads with its own ids."""
        tok = ByteBPETokenizer(train_bpe(CORPUS, vocab_size=320))
        j = tok.to_hf_json()
        n = len(tok)
        perm = {t: (i * 7 + 3) % n for t, i in tok.vocab.items()}  # a bijection: n is not a multiple of 7
        self.assertEqual(len(set(perm.values())), n)
        j["model"]["vocab"] = {t: i for t, i in perm.items() if t != "<|endoftext|>"}
        j["added_tokens"][0]["id"] = perm["<|endoftext|>"]
        d = tempfile.mkdtemp()
        with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(j, f, ensure_ascii=False)
        tok2 = ByteBPETokenizer.load(d)
        s = "The capital of São Tomé is"
        self.assertEqual(tok2.encode(s), [perm[tok.id_to_token[i]] for i in tok.encode(s)])
        self.assertEqual(tok2.decode(tok2.encode(s)), s)
        self.assertEqual(tok2.eot_id, perm["<|endoftext|>"])
