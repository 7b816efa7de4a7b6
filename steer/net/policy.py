"""The Impala CNN maze policy, with every intermediate activation addressable by a string hook name.

Architecture (Espeholt et al.'s Impala CNN as used by the train-procgen-pytorch checkpoints):
`block1..3`, each conv -> maxpool(3, 2, 1) -> res1 -> res2, where res(x) = conv2(relu(conv1(relu(x)))) + x;
then relu -> flatten -> fc -> relu -> policy logits and value.

The forward pass is written as a flat list of named sites, each computed from earlier sites. That one
list gives three things: hook names (`block2.res1.resadd_out`, `block2.res1.conv1`, `block3.maxpool`,
`fc`, ...), hooks that read or replace a site's output, and a forward pass that starts at any site from
cached activations, so a coefficient sweep runs the prefix once and only the suffix per coefficient.
Names may also be written the procgen-tools way: `embedder.` in front and/or `_out` at the end.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from steer.errors import SteerError

Hook = Callable[[torch.Tensor], torch.Tensor | None]

N_ACTIONS = 15


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)


class ImpalaBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.res1 = ResidualBlock(out_channels)
        self.res2 = ResidualBlock(out_channels)


class Embedder(nn.Module):
    def __init__(self, scale: int) -> None:
        super().__init__()
        self.block1 = ImpalaBlock(3, 16 * scale)
        self.block2 = ImpalaBlock(16 * scale, 32 * scale)
        self.block3 = ImpalaBlock(32 * scale, 32 * scale)
        self.fc = nn.Linear(32 * scale * 8 * 8, 256)


@dataclass(frozen=True)
class FusedUnit:
    """A run of sites computed by one function (`steer.net.compiled`): from `input`'s value to `outputs`.

    `first` is the unit's first site; its last output is its last site. The policy runs it in place of those
    sites when nothing needs what lies between them (no hook, no kept value), and eagerly otherwise.
    """

    first: str
    outputs: tuple[str, ...]
    input: str
    in_shape: tuple[int, ...]
    fn: Callable[[torch.Tensor], tuple[torch.Tensor, ...]]


@dataclass(frozen=True)
class Site:
    """One named intermediate: `fn` maps the values of `inputs` (earlier sites) to this site's value."""

    name: str
    inputs: tuple[str, ...]
    fn: Callable[..., torch.Tensor]


class ImpalaPolicy(nn.Module):
    """Impala CNN policy; `scale` is the channel multiplier (1: 16/32/32 channels, 4: 64/128/128)."""

    def __init__(self, scale: int = 1) -> None:
        super().__init__()
        self.scale = scale
        self.embedder = Embedder(scale)
        self.fc_policy = nn.Linear(256, N_ACTIONS)
        self.fc_value = nn.Linear(256, 1)
        self.sites: tuple[Site, ...] = tuple(self._build_sites())
        self._index = {s.name: i for i, s in enumerate(self.sites)}
        self._hooks: dict[str, list[Hook]] = {}
        self._units: dict[int, tuple[int, FusedUnit]] = {}  # first site's index -> (last site's index, unit)

    def _build_sites(self) -> list[Site]:
        sites: list[Site] = []
        prev = "input"
        for b in (1, 2, 3):
            block: ImpalaBlock = getattr(self.embedder, f"block{b}")
            sites.append(Site(f"block{b}.conv", (prev,), block.conv))
            sites.append(Site(f"block{b}.maxpool", (f"block{b}.conv",), _maxpool))
            stream = f"block{b}.maxpool"
            for r in (1, 2):
                res: ResidualBlock = getattr(block, f"res{r}")
                p = f"block{b}.res{r}"
                sites += [
                    Site(f"{p}.relu1", (stream,), F.relu),
                    Site(f"{p}.conv1", (f"{p}.relu1",), res.conv1),
                    Site(f"{p}.relu2", (f"{p}.conv1",), F.relu),
                    Site(f"{p}.conv2", (f"{p}.relu2",), res.conv2),
                    Site(f"{p}.resadd", (f"{p}.conv2", stream), torch.add),
                ]
                stream = f"{p}.resadd"
            prev = stream
        sites += [
            Site("relu3", (prev,), F.relu),
            Site("flatten", ("relu3",), _flatten),
            Site("fc", ("flatten",), self.embedder.fc),
            Site("relufc", ("fc",), F.relu),
            Site("fc_policy", ("relufc",), self.fc_policy),
            Site("fc_value", ("relufc",), self.fc_value),
        ]
        return sites

    # -- names ------------------------------------------------------------------------------------

    @property
    def hook_names(self) -> list[str]:
        return [display_name(s.name) for s in self.sites]

    def resolve(self, name: str) -> str:
        """The internal site name for a user's hook name, or a SteerError listing the valid names."""
        key = name.strip()
        if key.startswith("embedder."):
            key = key[len("embedder.") :]
        if key.endswith("_out"):
            key = key[: -len("_out")]
        if key in self._index:
            return key
        raise SteerError(
            f"layer: {name!r} is not a hook point of this policy. Valid names: "
            f"{', '.join(self.hook_names)} (the 'embedder.' prefix of procgen-tools is accepted too)."
        )

    # -- hooks ------------------------------------------------------------------------------------

    def add_hook(self, name: str, hook: Hook) -> Callable[[], None]:
        """Run `hook` on the site's output; a returned tensor replaces it. Returns a remover."""
        site = self.resolve(name)
        self._hooks.setdefault(site, []).append(hook)

        def remove() -> None:
            hooks = self._hooks.get(site, [])
            if hook in hooks:
                hooks.remove(hook)

        return remove

    # -- compiled units -------------------------------------------------------------------------------

    def use_units(self, units: list[FusedUnit]) -> None:
        """Run these units in place of their sites where nothing needs their insides (an empty list: eager)."""
        self._units = {self._index[u.first]: (self._index[u.outputs[-1]], u) for u in units}

    @property
    def fused_units(self) -> list[FusedUnit]:
        return [u for _, u in self._units.values()]

    def _unit_at(
        self,
        i: int,
        last: int,
        env: Mapping[str, torch.Tensor],
        given: Mapping[str, torch.Tensor],
        keep: frozenset[str] | None,
    ) -> tuple[int, FusedUnit] | None:
        """The unit starting at site `i` if it may replace sites i..its last here: it ends within the pass, no
        site of it was given, hooked or kept (but its outputs), and its input has the shape, dtype and
        channels-last layout it was compiled for."""
        found = self._units.get(i)
        if found is None or keep is None or found[0] > last:
            return None
        end, unit = found
        inner = {s.name for s in self.sites[i : end + 1]}
        if inner & given.keys() or (inner - set(unit.outputs)) & (keep | self._hooks.keys()):
            return None
        x = env.get(unit.input)
        if (
            x is None
            or x.device.type != "cpu"
            or x.dtype != torch.float32
            or tuple(x.shape[1:]) != unit.in_shape
            or x.shape[0] == 0
            or not x.is_contiguous(memory_format=torch.channels_last)
        ):
            return None
        return found

    # -- forward ----------------------------------------------------------------------------------

    def run(
        self,
        values: Mapping[str, torch.Tensor],
        start: str | None = None,
        stop: str | None = None,
        keep: frozenset[str] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Compute sites in order from `start` (default: the first) through `stop` (default: the last).

        `values` holds the inputs the computed sites need ("input" for a full pass). Hooks run on every
        computed site, including `start`, which is recomputed from its inputs unless `values` already
        holds it, in which case the hooks run on that given value. Returns every value that is kept:
        all of them, or only `keep` plus what was passed in.
        """
        env = dict(values)
        first = self._index[start] if start is not None else 0
        last = self._index[stop] if stop is not None else len(self.sites) - 1
        i = first
        while i <= last:
            fused = self._unit_at(i, last, env, values, keep) if self._units else None
            if fused is not None:
                end, unit = fused
                for name, out in zip(unit.outputs, unit.fn(env[unit.input]), strict=True):
                    env[name] = self._hooked(name, out)
                i = end + 1
                continue
            site = self.sites[i]
            out = env[site.name] if site.name in values else site.fn(*(env[k] for k in site.inputs))
            env[site.name] = self._hooked(site.name, out)
            i += 1
        if keep is None:
            return env
        return {k: v for k, v in env.items() if k in keep or k in values}

    def _hooked(self, name: str, out: torch.Tensor) -> torch.Tensor:
        for hook in self._hooks.get(name, ()):
            replaced = hook(out)
            if replaced is not None:
                out = replaced
        return out

    def activation_shape(self, name: str) -> torch.Size:
        """One observation's activation shape at a hook point (from one probe pass, cached)."""
        if not hasattr(self, "_shapes"):
            device = next(self.parameters()).device
            with torch.inference_mode():
                values = self.run({"input": torch.zeros(1, 3, 64, 64, device=device)})
            self._shapes = {k: v.shape[1:] for k, v in values.items() if k != "input"}
        return self._shapes[self.resolve(name)]

    def site_index(self, site: str) -> int:
        return self._index[self.resolve(site)]

    def prefix_needs(self, start: str) -> frozenset[str]:
        """`start` and the sites before it whose values the suffix after `start` still reads (residual streams).

        The suffix is given `start`'s value, so `start`'s own inputs are not needed: keeping them would also make a
        compiled unit ending at `start` (a residual add) run eagerly to expose its inside.
        """
        first = self._index[start]
        later_inputs = {i for s in self.sites[first + 1 :] for i in s.inputs}
        earlier = {s.name for s in self.sites[:first]} | {"input"}
        return frozenset((later_inputs & earlier) | {start})

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (N, 15) and values (N,) for observations as float NCHW in [0, 1]."""
        env = self.run({"input": obs})
        return env["fc_policy"], env["fc_value"].squeeze(-1)


def _maxpool(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, kernel_size=3, stride=2, padding=1)


def _flatten(x: torch.Tensor) -> torch.Tensor:
    return torch.flatten(x, start_dim=1)


def display_name(site: str) -> str:
    """The name users see: residual adds and relus carry procgen-tools' `_out` suffix."""
    last = site.rsplit(".", 1)[-1]
    return f"{site}_out" if last.startswith(("relu", "resadd")) else site


def obs_to_tensor(frames: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 (N, 64, 64, 3) frames -> float32 (N, 3, 64, 64) in [0, 1], as the policy was trained."""
    t = torch.from_numpy(frames).to(device)
    return t.permute(0, 3, 1, 2).float().div_(255.0)
