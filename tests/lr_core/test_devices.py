"""Inference device selection: CPU by default, CUDA when asked (GPU tests carry the `gpu` marker)."""
from __future__ import annotations

import pytest
import torch

from lr_core.devices import inference_autocast, resolve_device
from lr_core.errors import ConfigError


def test_cpu_is_the_default_and_auto_follows_torch():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize("name, match", [("tpu", "expected one of"), ("gpu0", "expected one of"),
                                         ("cuda:99", "CUDA")])
def test_bad_or_absent_devices_are_clear_errors(name, match):
    with pytest.raises(ConfigError, match=match):
        resolve_device(name)


def test_cpu_inference_stays_float32():
    x = torch.randn(4, 4)
    with inference_autocast("cpu"):
        assert (x @ x).dtype == torch.float32


def test_bf16_inference_on_the_cpu_is_asked_for_explicitly():
    x = torch.randn(4, 4)
    with inference_autocast("cpu", "bfloat16"):
        assert (x @ x).dtype == torch.bfloat16
    with inference_autocast("cpu", "float32"):
        assert (x @ x).dtype == torch.float32
    with pytest.raises(ValueError, match="precision"):
        inference_autocast("cpu", "fp8")


def test_cuda_without_a_gpu_is_refused_here():
    """This CPU machine: asking for CUDA fails with one clear line rather than deep inside torch."""
    if torch.cuda.is_available():  # the gpu-marked tests below cover machines with CUDA
        assert resolve_device("cuda").type == "cuda"
    else:
        with pytest.raises(ConfigError, match="no CUDA device"):
            resolve_device("cuda")


@pytest.mark.gpu
def test_cuda_inference_runs_in_bf16():
    dev = resolve_device("cuda")
    x = torch.randn(4, 4, device=dev)
    with inference_autocast(dev):
        assert (x @ x).dtype == torch.bfloat16
