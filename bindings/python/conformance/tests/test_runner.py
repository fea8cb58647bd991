"""Self-test of the conformance runner: run with `python3 -m unittest discover -s bindings/python/conformance/tests`."""

import json
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from skiplist import load_skips, matches  # noqa: E402


def run(*args, env_path=None):
    env = dict(os.environ)
    if env_path:
        env["PYTHONPATH"] = env_path + os.pathsep + env.get("PYTHONPATH", "")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        proc = subprocess.run([sys.executable, str(ROOT / "run.py"), "--json", str(out), *args],
                              capture_output=True, text=True, env=env, timeout=300)
        data = json.loads(out.read_text()) if out.exists() else None
    return proc, data


class SkipListTests(unittest.TestCase):
    def test_shipped_list_is_valid_and_every_entry_has_a_reason(self):
        skips = load_skips(ROOT / "skips.toml")
        self.assertGreater(len(skips), 0)
        for entry in skips.values():
            self.assertTrue(entry["reason"].strip())

    def test_entry_without_reason_is_refused(self):
        with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
            f.write('[[skip]]\ntarget = "test_x"\ncategory = "no-loop"\nreason = ""\n')
        self.addCleanup(os.unlink, f.name)
        with self.assertRaises(ValueError):
            load_skips(f.name)

    def test_matches_by_module_class_and_test(self):
        skips = {"m": {}, "a.B": {}, "c.D.test_e": {}}
        self.assertIsNotNone(matches(skips, "m.K.test_x"))
        self.assertIsNotNone(matches(skips, "a.B.test_x"))
        self.assertIsNone(matches(skips, "a.C.test_x"))
        self.assertIsNotNone(matches(skips, "c.D.test_e"))
        self.assertIsNone(matches(skips, "c.D.test_f"))


class RunnerTests(unittest.TestCase):
    def test_stock_loop_passes(self):
        proc, data = run("--loop", "asyncio", "--modules", "test_timeouts", "test_server",
                         "--min-pass-rate", "100")
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertEqual(data["pass_rate"], 100.0)
        self.assertGreater(data["totals"]["pass"], 30)

    def test_broken_loop_fails_and_is_the_one_under_test(self):
        # Timers firing early break test_timeouts under the policy and test_events'
        # test_run_until_complete through the create_event_loop hook.
        proc, data = run("--loop", "broken_loop:new_event_loop", "--modules", "test_timeouts",
                         "test_events", "--min-pass-rate", "100", env_path=str(HERE))
        self.assertEqual(proc.returncode, 1, proc.stdout + proc.stderr)
        self.assertLess(data["pass_rate"], 100.0)
        counts = data["modules"]["test_timeouts"]["counts"]
        self.assertGreater(counts.get("fail", 0) + counts.get("error", 0), 0)
        tests = data["modules"]["test_events"]["tests"]
        tid = "test.test_asyncio.test_events.EPollEventLoopTests.test_run_until_complete"
        self.assertEqual(tests[tid]["outcome"], "fail")

    def test_hung_test_is_reported_not_waited_for(self):
        proc, data = run("--loop", "broken_loop:new_hanging_loop", "--modules", "test_threads",
                         "--test-timeout", "5", env_path=str(HERE))
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        counts = data["modules"]["test_threads"]["counts"]
        # Every test of the module hangs in its Runner's close: each is reported, none waited for.
        self.assertEqual(counts["timeout"], counts["error"])
        self.assertEqual(counts["error"], 6)

    def test_missing_loop_exits_2(self):
        proc, _ = run("--loop", "rtpy_missing_module:new_event_loop")
        self.assertEqual(proc.returncode, 2)
        self.assertIn("unavailable", proc.stderr)


if __name__ == "__main__":
    unittest.main()
