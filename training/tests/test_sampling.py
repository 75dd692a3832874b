"""Training-edit sampling (editor.sampling) and the batch schedule (editor.batch_share / p_max_batch), on the full
knowledge base. Fast: no training, no model; the shipped tokenizer only where prompts are tokenised."""
import math
import os
import random
import sys
import unittest
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))
from mendlab.corpus import KB, FactEncoder  # noqa: E402
from mendlab.edits import EditSampler  # noqa: E402
from mendlab.tokenizer import ByteBPETokenizer  # noqa: E402
from mendlab.train_editor import batch_size, is_batch_step  # noqa: E402


class EditSamplingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.kb = KB()
        cls.train = cls.kb.subjects("train")
        cls.editable = [r for r in cls.kb.rel_names if len(cls.kb.objects[r]) > 1]

    def draw(self, sampling, n_batches=300, size=10, seed=5):
        sampler = EditSampler(self.kb, None, None, seed)  # draw_edits needs no tokenizer
        return [sampler.draw_edits(self.train, size, sampling) for _ in range(n_batches)]

    def check_batches(self, batches):
        train = set(self.train)
        for b in batches:
            self.assertEqual(len({s for s, *_ in b}), len(b), "subjects in a batch must be distinct")
            for s, r, true, new in b:
                self.assertIn(s, train)
                self.assertEqual(self.kb.by_subject[s][r], true)
                self.assertNotEqual(new, true)
                self.assertIn(new, self.kb.objects[r])

    def test_subject_first_follows_the_subject_mix(self):
        batches = self.draw("subject")
        self.check_batches(batches)
        freq = Counter(r for b in batches for _, r, _, _ in b)
        self.assertGreater(freq["city_country"] / sum(freq.values()), 0.8)  # the skew the balanced modes remove

    def test_relation_first_is_uniform_over_relations(self):
        batches = self.draw("relation")
        self.check_batches(batches)
        freq = Counter(r for b in batches for _, r, _, _ in b)
        n = sum(freq.values())
        self.assertEqual(set(freq), set(self.editable))
        expect = n / len(self.editable)  # 250 each; binomial sd ~15
        for r in self.editable:
            self.assertLess(abs(freq[r] - expect), 0.25 * expect, (r, freq[r], expect))

    def test_sqrt_weights_relations_by_root_frequency(self):
        batches = self.draw("sqrt")
        self.check_batches(batches)
        freq = Counter(r for b in batches for _, r, _, _ in b)
        n = sum(freq.values())
        have = {r: sum(r in self.kb.by_subject[s] for s in self.train) for r in self.editable}
        z = sum(math.sqrt(v) for v in have.values())
        for r in self.editable:
            expect = n * math.sqrt(have[r]) / z
            self.assertLess(abs(freq[r] - expect), 0.3 * expect + 10, (r, freq[r], expect))
        # between the two extremes: cities are the largest single relation, but far from 90 %
        self.assertTrue(0.15 < freq["city_country"] / n < 0.4, freq["city_country"] / n)

    def test_small_subject_pools_still_give_distinct_subjects(self):
        # 12 subjects, batches of 10: relations whose subjects are used up drop out of the draw
        rng = random.Random(0)
        subjects = rng.sample([s for s in self.train if "capital" in self.kb.by_subject[s]], 6) + \
            rng.sample([s for s in self.train if "atomic_number" in self.kb.by_subject[s]], 6)
        sampler = EditSampler(self.kb, None, None, 1)
        for _ in range(50):
            b = sampler.draw_edits(subjects, 10, "relation")
            self.assertEqual(len({s for s, *_ in b}), 10)
        with self.assertRaises(ValueError):
            sampler.draw_edits(subjects, 13, "relation")
        with self.assertRaises(ValueError):
            sampler.draw_edits(subjects, 1, "by-magic")

    def test_training_batch_uses_the_sampling(self):
        tok = ByteBPETokenizer.load(os.path.join(ROOT, "public", "models", "facts-gpt"))
        sampler = EditSampler(self.kb, FactEncoder(tok), tok, 3)
        edits = [e for _ in range(30) for e in sampler.training_batch(self.train, 8, sampling="relation")]
        freq = Counter(e.relation for e in edits)
        self.assertLess(freq["city_country"] / len(edits), 0.3)  # ~1/12, against ~0.9 subject-first
        self.assertGreaterEqual(len(freq), 10)
        e = edits[0]
        self.assertEqual(len(e.paraphrases), 2)
        self.assertTrue(e.locality)
        self.assertEqual(tok.decode(e.target_ids).strip(), e.new_object)


class BatchScheduleTest(unittest.TestCase):
    def test_default_share_is_every_odd_step(self):
        self.assertEqual([is_batch_step(k, 0.5) for k in range(6)], [False, True] * 3)

    def test_share_is_spread_evenly(self):
        for share in (0.0, 0.25, 2 / 3, 0.75, 1.0):
            flags = [is_batch_step(k, share) for k in range(1200)]
            self.assertEqual(sum(flags), round(1200 * share), share)
            self.assertEqual(sum(flags[:12]), round(12 * share), share)  # no long runs of one kind

    def test_batch_sizes(self):
        cfg = {"max_batch": 10, "batch_share": 0.5, "p_max_batch": 0.0}
        rng = random.Random(0)
        sizes = [batch_size(rng, k, cfg) for k in range(2000)]
        self.assertTrue(all(s == 1 for s in sizes[0::2]))
        odd = Counter(sizes[1::2])
        self.assertEqual(set(odd), set(range(2, 11)))  # uniform 2..10
        self.assertLess(odd[10] / 1000, 0.2)
        # the default spends exactly one draw per batch step, as the shipped editor's training did
        rng, ref = random.Random(0), random.Random(0)
        self.assertEqual([batch_size(rng, k, cfg) for k in range(6)],
                         [1, ref.randint(2, 10), 1, ref.randint(2, 10), 1, ref.randint(2, 10)])
        cfg = {"max_batch": 10, "batch_share": 0.75, "p_max_batch": 0.5}
        sizes = [batch_size(random.Random(k), k, cfg) for k in range(2000)]
        batch = [s for s in sizes if s > 1]
        self.assertEqual(len(batch), 1500)
        share10 = sum(s == 10 for s in batch) / len(batch)
        self.assertTrue(0.5 < share10 < 0.62, share10)  # 0.5 + 0.5 / 9


if __name__ == "__main__":
    unittest.main()
