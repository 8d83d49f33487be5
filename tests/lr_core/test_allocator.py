"""lr_core.allocator: the entry point's glibc malloc thresholds, and that they stop per-batch page faults."""
import os
import subprocess
import sys
import textwrap

from lr_core.allocator import tune_malloc

# A child process frees and re-allocates a 64 MiB tensor (as a batch loop does with its large
# buffers) and prints the minor page faults of 20 rounds after 10 warm-up rounds.
_LOOP = textwrap.dedent("""
    import os, resource, sys
    from lr_core.allocator import tune_malloc
    print("tuned" if tune_malloc() else "default", file=sys.stderr)
    import torch
    for _ in range(10):  # glibc settles on a reusable block within the first few rounds
        x = torch.ones(16 << 20)
        del x
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        x = torch.ones(16 << 20)  # 64 MiB, written in full
        del x
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
""")


def _loop_faults(tuning: str) -> tuple[int, str]:
    env = {**os.environ, "LR_MALLOC_TUNING": tuning}
    done = subprocess.run([sys.executable, "-c", _LOOP], env=env, capture_output=True, text=True, check=True)
    return int(done.stdout.strip()), done.stderr.strip().splitlines()[-1]


def test_opt_out_leaves_glibc_alone():
    assert tune_malloc({"LR_MALLOC_TUNING": "0"}) is False


def test_tuning_takes_on_glibc():
    assert tune_malloc({}) is True


def test_tuning_keeps_freed_buffers_instead_of_faulting_them_in_again():
    default, state_d = _loop_faults("0")
    tuned, state_t = _loop_faults("1")
    assert (state_d, state_t) == ("default", "tuned")
    # glibc's default mmaps each 64 MiB buffer afresh: 20 x 16,384 pages fault in; tuned, they are reused
    assert default > 20 * 16384 * 0.9
    assert tuned < 20 * 16384 * 0.05


def test_the_cli_applies_it(monkeypatch):
    calls = []
    monkeypatch.setattr("lr_core.allocator.tune_malloc", lambda env=None: calls.append(env) or True)
    from lr_core.cli import main

    assert main(["variants"]) == 0
    assert calls == [None]
