"""Reading and editing activations during forward passes, by hook name.

`recording` captures what a site computed; `patching` adds `coeff * vector` to a site's output for every
observation in the batch; `replacing` puts `f(output)` in its place (a sparse dictionary's reconstruction). All
are context managers, so hooks never outlive the code that set them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch

from steer.errors import SteerError
from steer.net.policy import ImpalaPolicy


@contextmanager
def recording(policy: ImpalaPolicy, layers: Sequence[str]) -> Iterator[dict[str, torch.Tensor]]:
    """Yields a dict that fills with `layer -> activation` (batch first) as forward passes run."""
    store: dict[str, torch.Tensor] = {}
    removers = []
    for layer in layers:

        def hook(out: torch.Tensor, layer: str = layer) -> None:
            store[layer] = out.detach().clone()

        removers.append(policy.add_hook(layer, hook))
    try:
        yield store
    finally:
        for remove in removers:
            remove()


def check_shape(policy: ImpalaPolicy, layer: str, vector: torch.Tensor, where: str = "vector") -> None:
    expected = tuple(policy.activation_shape(layer))
    if tuple(vector.shape) != expected:
        raise SteerError(
            f"{where}: a vector of shape {tuple(vector.shape)} cannot be added at {layer!r}, whose activations "
            f"have shape {expected} for this checkpoint (channel scale {policy.scale}). Compute the vector "
            "with the same checkpoint and layer."
        )


Replacement = tuple[str, Callable[[torch.Tensor], torch.Tensor]]


@contextmanager
def patching(policy: ImpalaPolicy, patches: Sequence[tuple[str, torch.Tensor, float]]) -> Iterator[None]:
    """Add `coeff * vector` at each `(layer, vector, coeff)` during forward passes; several may share a layer."""
    device = next(policy.parameters()).device
    replacements: list[Replacement] = []
    for layer, vector, coeff in patches:
        check_shape(policy, layer, vector)
        delta = (coeff * vector).to(device)
        replacements.append((layer, lambda out, delta=delta: out + delta))
    with replacing(policy, replacements):
        yield


@contextmanager
def replacing(policy: ImpalaPolicy, replacements: Sequence[Replacement]) -> Iterator[None]:
    """Replace each `(hook name, f)` site's output (batch first) by `f(output)` during forward passes.

    `f` must return a tensor of the output's shape; a pass that starts at the site from a given value runs the
    hook on that value too (`ImpalaPolicy.run`), so give it values computed before the hook was set.
    """
    removers = []
    for layer, fn in replacements:

        def hook(
            out: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor] = fn, layer: str = layer
        ) -> torch.Tensor:
            new = fn(out)
            if new.shape != out.shape:
                raise SteerError(f"{layer}: a replacement returned shape {tuple(new.shape)}, not {tuple(out.shape)}.")
            return new

        removers.append(policy.add_hook(layer, hook))
    try:
        yield
    finally:
        for remove in removers:
            remove()
