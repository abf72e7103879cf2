"""Classifier-free guidance: one batched call, the right combination, token padding and broadcasting."""

from __future__ import annotations

import pytest
import torch

from ffasora.diffusion import classifier_free_guidance


def text_network(calls: list):
    """Prediction = x * (1 + masked mean of the text states), so cond and uncond give different outputs."""

    def network(x: torch.Tensor, t: torch.Tensor, cond: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        states, mask = cond
        calls.append((x.shape[0], states.shape))
        pooled = (states * mask[..., None]).sum(dim=(1, 2)) / mask.sum(dim=1).clamp(min=1)
        return x * (1 + pooled.reshape(-1, *[1] * (x.ndim - 1))) + t.reshape(-1, *[1] * (x.ndim - 1))

    return network


def test_guidance_is_one_batched_call_with_the_cfg_combination() -> None:
    g = torch.Generator().manual_seed(0)
    cond = (torch.randn(2, 5, 3, generator=g), torch.ones(2, 5))
    uncond = (torch.randn(2, 5, 3, generator=g), torch.tensor([[1.0, 1, 0, 0, 0]] * 2))
    x, t = torch.randn(2, 4, 1, 2, 2, generator=g), torch.tensor([10.0, 20.0])
    calls: list = []
    net = text_network(calls)
    guided = classifier_free_guidance(net, cond, uncond, scale=4.0)(x, t)
    assert calls == [(4, torch.Size([4, 5, 3]))]
    c, u = net(x, t, cond), net(x, t, uncond)
    torch.testing.assert_close(guided, u + 4.0 * (c - u))


def test_scale_one_skips_the_unconditional_half() -> None:
    calls: list = []
    cond = (torch.ones(1, 3, 2), torch.ones(1, 3))
    classifier_free_guidance(text_network(calls), cond, cond, scale=1.0)(torch.ones(1, 2), torch.zeros(1))
    assert calls == [(1, torch.Size([1, 3, 2]))]


def test_shorter_negative_is_zero_padded_and_a_single_negative_is_shared() -> None:
    g = torch.Generator().manual_seed(1)
    cond = (torch.randn(3, 6, 2, generator=g), torch.ones(3, 6))
    short = (torch.randn(1, 2, 2, generator=g), torch.ones(1, 2))
    calls: list = []
    net = text_network(calls)
    x, t = torch.randn(3, 2, generator=g), torch.zeros(3)
    guided = classifier_free_guidance(net, cond, short, scale=2.0)(x, t)
    assert calls[0] == (6, torch.Size([6, 6, 2]))
    u = net(x, t, (short[0].expand(3, 2, 2), short[1].expand(3, 2)))  # padding must not change the result
    torch.testing.assert_close(guided, u + 2.0 * (net(x, t, cond) - u))


def test_dict_conditions_and_errors() -> None:
    def net(x: torch.Tensor, t: torch.Tensor, cond: dict) -> torch.Tensor:
        return x * cond["scale"].reshape(-1, 1)

    guided = classifier_free_guidance(net, {"scale": torch.full((2,), 3.0)}, {"scale": torch.ones(2)}, 2.0)
    torch.testing.assert_close(guided(torch.ones(2, 2), torch.zeros(2)), torch.full((2, 2), 5.0))
    with pytest.raises(ValueError, match="scale"):
        classifier_free_guidance(net, {}, {}, -1.0)
    with pytest.raises(ValueError, match="keys"):
        classifier_free_guidance(net, {"a": torch.ones(1)}, {"b": torch.ones(1)}, 2.0)
